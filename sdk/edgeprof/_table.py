"""Aligned plain-text tables and number formatting for the terminal."""

from __future__ import annotations

from collections.abc import Sequence


def ms(value: float | None) -> str:
    """Milliseconds with three significant digits, never in scientific notation."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 10:
        return f"{value:.2f}"
    if value >= 1:
        return f"{value:.3f}"
    digits = 3
    text = f"{value:.{digits}g}"
    while "e" in text:
        digits += 1
        text = f"{value:.{digits + 3}f}".rstrip("0")
        break
    return text


def size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """Columns padded to their widest cell; ``align`` has one of ``l``/``r`` per column (numbers default right)."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if align is None:
        align = "l" + "r" * (len(headers) - 1)

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(values, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])
