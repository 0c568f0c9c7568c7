"""The sensitivity heat map: layers × compression (channel ratio, sparsity, int8), coloured by the metric's drop.

The colour is a magnitude scale of measured drops, annotated with the figure in each cell; it says nothing good or
bad by itself (that stays with ``compare``'s verdicts and the budget), it only shows where the metric is fragile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .plots import Plot, _figure, _png

TOP = 40  # layers shown: the most sensitive ones, so a deep network stays readable


def load(scan: str | Path | dict[str, Any]) -> dict[str, Any]:
    return scan if isinstance(scan, dict) else json.loads(Path(scan).read_text())


def heatmap(scan: dict[str, Any], name: str = "sensitivity") -> Plot:
    columns = [f"-{r:.0%} ch" for r in scan["ratios"]] + [f"{s:.0%} sparse" for s in scan["sparsities"]]
    keys = [("channels", f"{r:g}") for r in scan["ratios"]] + [("sparsity", f"{s:g}") for s in scan["sparsities"]]
    if scan.get("quantize"):
        columns.append("int8 w")
        keys.append(("int8", None))
    order = {layer: i for i, layer in enumerate(scan.get("ranking", []))}
    rows = sorted(scan["rows"], key=lambda r: order.get(r["layer"], 0))[:TOP]
    values = np.full((len(rows), len(keys)), np.nan)
    for i, row in enumerate(rows):
        for j, (kind, key) in enumerate(keys):
            value = row.get(kind) if key is None else (row.get(kind) or {}).get(key)
            if value is not None:
                values[i, j] = value
    fig = _figure(1.6 + 0.95 * len(columns), 1.3 + 0.28 * len(rows))
    ax = fig.subplots()
    shown = np.nan_to_num(values, nan=0.0)
    top = max(1e-9, float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0)
    image = ax.imshow(np.clip(shown, 0, None), cmap="Reds", vmin=0, vmax=top, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(keys)):
            text = "-" if np.isnan(values[i, j]) else f"{values[i, j]:+.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), [r["layer"] for r in rows], fontsize=7)
    unit = scan["metric"]["unit"]
    fig.colorbar(image, ax=ax, label=f"{scan['metric']['label']} drop ({unit})" if unit else "drop")
    model = (scan.get("model") or {}).get("path") or "model"
    return Plot(
        name,
        f"Sensitivity of {Path(str(model)).name}",
        f"{scan['metric']['label']} drop after compressing one layer alone, no fine-tuning "
        f"({_number(scan['baseline'], unit)} unchanged, {scan['samples']} test samples); most sensitive first"
        + (f", top {TOP} of {len(scan['rows'])} layers" if len(scan["rows"]) > TOP else "")
        + (f". int8 w: {scan['quantize']}" if scan.get("quantize") else ""),
        _png(fig),
        fig,
    )


def _number(value: float, unit: str) -> str:
    return f"{100 * value:.1f} %" if unit == "pp" else f"{value:.4g}"
