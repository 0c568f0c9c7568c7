"""What a search minimises: each objective, where its figure comes from, and whether every board can measure it.

Every objective is minimised and measured, never estimated: the accuracy drop is the compression manifest's
headline figure against the float32 export of the same source on the same test set (``store.lineage``), the sizes
and MACs come from the exported file, and latency, peak memory and energy from the trial's ``profile --repeat``
group on each board. A figure measured on boards is one objective per board when the search names several
(``median_ms@pi5``, ``median_ms@orin``): the answer depends on the board, so the front keeps both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import EdgeprofError


class ObjectiveError(EdgeprofError):
    """An objective is unknown, or a board cannot measure it."""


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    unit: str
    on_board: bool  # measured by the agent on each target
    noisy: bool  # a difference counts only where a test says it is beyond the noise (front.py)


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind("accuracy_drop", "accuracy drop", "pp", False, False),
        Kind("median_ms", "median latency", "ms", True, True),
        Kind("p90_ms", "p90 latency", "ms", True, True),
        Kind("peak_memory_mib", "peak memory", "MiB", True, True),
        Kind("energy_mj", "energy per inference", "mJ", True, True),
        Kind("gzip_kib", "gzip size", "KiB", False, False),
        Kind("macs", "MACs", "", False, False),
    )
}

ALIASES = {
    "accuracy": "accuracy_drop",
    "drop": "accuracy_drop",
    "latency": "median_ms",
    "median": "median_ms",
    "p90": "p90_ms",
    "memory": "peak_memory_mib",
    "energy": "energy_mj",
    "size": "gzip_kib",
    "gzip": "gzip_kib",
}

DEFAULT = ("accuracy_drop", "median_ms")


@dataclass(frozen=True)
class Objective:
    """One minimised figure; ``target`` for a figure measured on a board."""

    kind: Kind
    target: str | None = None
    several_targets: bool = False

    @property
    def name(self) -> str:
        """``median_ms``, or ``median_ms@pi5`` when the search measures on several boards."""
        return f"{self.kind.key}@{self.target}" if self.target and self.several_targets else self.kind.key

    @property
    def label(self) -> str:
        where = f" on {self.target}" if self.target and self.several_targets else ""
        unit = f" ({self.kind.unit})" if self.kind.unit else ""
        return f"{self.kind.label}{where}{unit}"

    @property
    def efficiency(self) -> bool:
        """Everything but the accuracy drop: what the λ-weighted optimum trades accuracy against."""
        return self.kind.key != "accuracy_drop"

    def value(self, figures: dict[str, Any]) -> float | None:
        """This objective's figure from a trial's figures (:func:`edgeprof.search.trial.figures`)."""
        if not self.kind.on_board:
            return figures.get(self.kind.key)
        return ((figures.get("boards") or {}).get(self.target) or {}).get(self.kind.key)

    def baseline(self, figures: dict[str, Any]) -> float | None:
        """The float32 model's figure, for the ratio (the accuracy drop has none)."""
        if self.kind.key == "accuracy_drop":
            return None
        if not self.kind.on_board:
            return figures.get(f"baseline_{self.kind.key}")
        return ((figures.get("boards") or {}).get(self.target) or {}).get(f"baseline_{self.kind.key}")


def parse(names: Sequence[str] | str | None, targets: Sequence[str]) -> list[Objective]:
    """``accuracy_drop,median_ms`` (or aliases: accuracy, latency, p90, memory, energy, size) → objectives, the
    figures measured on boards once per target."""
    if names is None or names == "" or names == ():
        names = DEFAULT
    if isinstance(names, str):
        names = [names]
    keys: list[str] = []
    for chunk in names:
        for raw in str(chunk).split(","):
            name = raw.strip().lower()
            if not name:
                continue
            key = ALIASES.get(name, name)
            if key not in KINDS:
                raise ObjectiveError(
                    f"unknown objective {raw.strip()!r}",
                    f"use some of: {', '.join(KINDS)} (or accuracy, latency, p90, memory, energy, size)",
                )
            if key in keys:
                raise ObjectiveError(f"objective {key} is named twice", "name each objective once")
            keys.append(key)
    if not keys:
        raise ObjectiveError("no objective given", f"use e.g. --objectives {','.join(DEFAULT)}")
    several = len(targets) > 1
    found: list[Objective] = []
    for key in keys:
        kind = KINDS[key]
        if kind.on_board:
            found += [Objective(kind, t, several) for t in targets]
        else:
            found.append(Objective(kind))
    if not any(o.efficiency for o in found):
        raise ObjectiveError(
            "the accuracy drop alone is no trade-off: the float32 model already minimises it",
            "add an efficiency objective, e.g. --objectives accuracy_drop,median_ms",
        )
    return found


def check_measurable(
    objectives: Sequence[Objective], targets: Sequence[Any], options: Any, energy: bool = False
) -> None:
    """Before any trial: every objective (and ``energy``: a budget's energy limit) can be measured on every board.

    Latency and memory always can. Energy needs a power sensor: each board's agent is asked which one it would use
    (the board's sensor settings and ``--energy`` apply) and a board without one stops the search with its name and
    the agent's reasons, before anything trains.
    """
    wants_energy = energy or any(o.kind.key == "energy_mj" for o in objectives)
    if not wants_energy:
        return
    if options.energy == "off":
        raise ObjectiveError("energy per inference is an objective (or a budget limit), but --energy is off",
                             "drop --energy off, or the energy objective")  # fmt: skip
    for target in targets:
        reason = _no_sensor(target, options)
        if reason is not None:
            raise ObjectiveError(
                f"cannot measure energy per inference on {target.name}: {reason}",
                "give that board a power sensor ([targets.NAME.sensors] energy = ..., or --energy-command) or a "
                "power meter on the host ([targets.NAME.meter]), or drop the energy objective / limit",
            )


def _no_sensor(target: Any, options: Any) -> str | None:
    """None if a power meter on the host answers for the board ([targets.NAME.meter]) or the board's agent finds a
    power sensor with these options; else why not (the meter's error, the agent's plugins' reasons)."""
    from ..deploy import connect
    from ..targets import apply_sensor_defaults

    meter_problem = ""
    if getattr(target, "meter", None) is not None and getattr(options, "use_meter", True):
        from ..meters import open_driver

        try:
            open_driver(target.meter).read()
            return None
        except EdgeprofError as exc:  # MeterError: the board's own sensor may still measure
            meter_problem = f"its power meter does not answer ({exc}); "

    chosen = apply_sensor_defaults(target, options)
    args = {
        "probe": False,
        "energy": chosen.energy,
        "energy_command": list(chosen.energy_command) if chosen.energy_command else None,
    }
    with connect(target, exclusive=False) as board, board.agent(probe=False) as agent:
        found = (agent.call("hello", args).get("sensors") or {}).get("energy") or {}
    if found.get("found"):
        return None
    checked = found.get("unavailable") or {}
    if not checked:
        return meter_problem + "the agent found no power sensor"
    reasons = "; ".join(f"{name}: {why}" for name, why in sorted(checked.items()))
    return (
        f"{meter_problem}no power sensor ({reasons}), and no [targets.{target.name}.meter]"
        if not meter_problem
        else f"{meter_problem}no power sensor on the board ({reasons})"
    )


__all__ = ["ALIASES", "DEFAULT", "KINDS", "Objective", "ObjectiveError", "check_measurable", "parse"]
