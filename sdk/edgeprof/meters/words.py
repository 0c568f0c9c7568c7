"""A metered energy record in a reader's words: the lines every view prints (profile, results show)."""

from __future__ import annotations

from typing import Any


def _g(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "?"
    return "0" if abs(value) < 1e-12 else f"{value:.{digits}g}"


def headline(energy: dict[str, Any]) -> str:
    """``1.23 ± 0.05 mJ/inference above idle (95 %)`` or ``unavailable (reason; fix)``."""
    if not energy.get("available"):
        fix = energy.get("fix")
        return f"unavailable ({energy.get('reason', 'no reading')}" + (f"; {fix})" if fix else ")")
    u95 = energy.get("mj_per_inference_u95")
    return (
        f"{_g(energy.get('mj_per_inference'), 4)}"
        + (f" ± {_g(u95, 2)}" if u95 is not None else "")
        + f" mJ/inference {energy.get('basis', 'above idle')}"
        + (" (95 %)" if u95 is not None else "")
    )


def lines(energy: dict[str, Any]) -> list[str]:
    """The energy lines of a summary for a record whose ``source`` is ``meter``."""
    if not energy.get("available"):
        return [f"energy: {headline(energy)}"]
    rel = energy.get("relative_u95")
    alignment = energy.get("alignment") or {}
    out = [
        f"energy: {headline(energy)}"
        + (f", ±{rel:.1%}" if rel is not None else "")
        + f"; {_g(energy.get('above_idle_w'))} ± {_g(energy.get('above_idle_w_u95'), 2)} W above idle "
        f"{_g(energy.get('idle_w'))} W (gross {_g(energy.get('mj_per_inference_gross'), 4)} mJ/inference)",
        f"  meter: {energy.get('label')} at {_g(energy.get('target_rate_hz'))} Hz"
        + (f", {energy['resolution_w']:g} W steps" if energy.get("resolution_w") else "")
        + f"; {energy.get('samples')} readings in the loop, {energy.get('idle_samples')} idle before"
        + (
            f", {(energy.get('windows') or {}).get('idle_after', {}).get('readings')} after"
            if (energy.get("windows") or {}).get("idle_after")
            else ""
        )
        + (f"; clocks aligned to ±{alignment['error_s'] * 1000:.2g} ms" if alignment.get("error_s") is not None else "")
        + (f"; duty {energy['duty']:.0%}" if energy.get("duty") is not None else ""),
    ]
    out += [f"  ! {note}" for note in energy.get("notes") or []]
    board = energy.get("board_sensor")
    if board and board.get("available"):
        out.append(f"  board sensor ({board.get('label')}): {_g(board.get('mj_per_inference'), 4)} mJ/inference gross")
    return out
