"""The report's per-operator figures, from runs profiled with ``--ops``: where the time goes, and a roofline.

* Where the time goes: one figure per run, a bar per operator (its median alone, with the p10-p90 of its invokes as a
  whisker), the ``TOP`` slowest operators in execution order, then one bar for the other operators summed and one
  for those below the timer's resolution, so that a 100-operator network stays readable and no time goes missing.
* Roofline: one figure per target, every timed operator with MACs as a point at its arithmetic intensity (MACs per
  byte moved) and its achieved rate, under the roofs the agent measured on that board with that runtime: the peak of
  each data type (flat) and the memory roof (bandwidth x intensity, diagonal). The whole model is a larger point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeprof_agent.record import Operators

from ..ops.names import layer_name
from ..views import load
from .collect import ReportData
from .plots import COLORS, Plot, _figure, _png, labels

TOP = 20
NEUTRAL = "#4c72b0"


def _available(run: dict[str, Any]) -> Operators | None:
    """The run's typed per-operator figures, if it has them."""
    if not (run.get("record") or {}).get("ops"):
        return None
    ops = load(run["record"]).ops
    return ops if ops is not None and ops.available else None


def ops_runs(data: ReportData) -> list[dict[str, Any]]:
    """The runs with per-operator figures: the newest such run of each model on each target."""
    return list(getattr(data, "ops_runs", None) or [r for r in data.runs if _available(r)])


def time_bars(data: ReportData) -> list[Plot]:
    names = labels(data)
    plots = []
    for run in ops_runs(data):
        ops = _available(run)
        if ops is None:
            continue
        rows = ops.timed()
        if not rows:
            continue
        ms = {r.index: r.ms for r in rows if r.ms is not None}
        slowest = sorted(rows, key=lambda r: -(ms[r.index].median or 0.0))[:TOP]
        kept = sorted(slowest, key=lambda r: r.index or 0)
        rest = [r for r in rows if r not in slowest]
        below = ops.rows("below_resolution")
        bar_labels = [f"{r.index}: {(r.op or '?').lower()} {layer_name(r.name or '')}"[:48] for r in kept]
        values = [ms[r.index].median or 0.0 for r in kept]
        low = [(ms[r.index].median or 0.0) - max(ms[r.index].p10 or 0.0, 0.0) for r in kept]
        high = [(ms[r.index].p90 or 0.0) - (ms[r.index].median or 0.0) for r in kept]
        if rest:
            bar_labels.append(f"other {len(rest)} operators (summed)")
            values.append(sum(ms[r.index].median or 0.0 for r in rest))
            low.append(0.0)
            high.append(0.0)
        if below:
            bar_labels.append(f"{len(below)} below resolution (summed)")
            values.append(max(0.0, sum((r.ms.median or 0.0) for r in below if r.ms)))
            low.append(0.0)
            high.append(0.0)
        fig = _figure(9.5, 1.4 + 0.24 * len(bar_labels))
        ax = fig.subplots()
        y = np.arange(len(bar_labels))
        ax.barh(y, values, 0.7, color=NEUTRAL, xerr=[low, high], error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.set_yticks(y, bar_labels, fontsize=7.5)
        ax.invert_yaxis()
        ax.set_xlim(left=0)
        ax.set_xlabel("ms per inference, each operator alone (whisker: p10-p90 of its invokes)")
        ax.grid(axis="x", alpha=0.3)
        name = names.get(run["model_sha256"], run["model_name"])
        whole = ops.whole_ms.median if ops.whole_ms else None
        plots.append(
            Plot(
                f"ops_{run['id']}",
                f"Where the time goes: {name} on {run['target']}",
                f"Run #{run['id']}: the {len(kept)} slowest of {len(rows)} timed operators in execution order, each "
                "cut out of the model and run alone through the same runtime, delegate and threads"
                + (f"; the other {len(rest)} summed in one bar" if rest else "")
                + (f"; {len(below)} below the timer's resolution summed in the last" if below else "")
                + (
                    f". Operators and one invoke add up to {ops.sum_ratio:.2f}x the whole model "
                    f"({whole:.4g} ms in the same rounds)."
                    if whole and ops.sum_ratio
                    else "."
                )
                + _peak_sentence(ops),
                _png(fig),
                fig,
            )
        )
    return plots


def _peak_sentence(ops: Operators) -> str:
    costs, peak = ops.costs, ops.peak
    if costs is None or peak is None or costs.peak_fraction is None or not costs.main_type:
        return ""
    kind, rate = costs.main_type, (peak.gmacs_per_s or {}).get(costs.main_type or "")
    if rate is None or costs.gmacs_per_s is None:
        return ""
    return (
        f" The model reaches {costs.peak_fraction:.0%} of what this board's CPU does with this runtime and delegate "
        f"({costs.gmacs_per_s:.3g} GMAC/s against a {kind} peak of {rate:.3g} GMAC/s)."
    )


def roofline(data: ReportData) -> list[Plot]:
    names = labels(data)
    by_target: dict[str, list[tuple[dict[str, Any], Operators]]] = {}
    for run in ops_runs(data):
        ops = _available(run)
        if ops is not None and ops.peak is not None and ops.peak.gmacs_per_s:
            by_target.setdefault(run["target"], []).append((run, ops))
    plots = []
    for target, runs in sorted(by_target.items()):
        fig = _figure(9.5, 5.5)
        ax = fig.subplots()
        xs_all, ys_all = [], []
        for k, (run, ops) in enumerate(runs):
            color = COLORS[k % len(COLORS)]
            points = [(r.macs_per_byte, r.gmacs_per_s) for r in ops.rows() if r.gmacs_per_s and r.macs_per_byte]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.scatter(
                    xs, ys, s=14, color=color, alpha=0.6, label=names.get(run["model_sha256"], run["model_name"])
                )
                xs_all += xs
                ys_all += ys
            costs = ops.costs
            total_bytes = sum((r.weight_bytes or 0) + (r.activation_bytes or 0) for r in ops.rows())
            if costs is not None and costs.gmacs_per_s and costs.macs and total_bytes:
                x = costs.macs / total_bytes
                ax.scatter([x], [costs.gmacs_per_s], s=90, marker="*", color=color, edgecolor="black", zorder=3)
                xs_all.append(x)
                ys_all.append(costs.gmacs_per_s)
        if not xs_all:
            continue
        peak = runs[-1][1].peak
        if peak is None or not peak.gmacs_per_s:  # never: runs without a measured peak were left out above
            continue
        low_x, high_x = min(xs_all) / 2, max(xs_all) * 2
        grid = np.geomspace(low_x, high_x, 100)
        bandwidth = peak.gbytes_per_s
        for (dtype, rate), style in zip(sorted(peak.gmacs_per_s.items()), ("-", "--", ":"), strict=False):
            roof = np.minimum(rate, bandwidth * grid) if bandwidth else np.full_like(grid, rate)
            ax.plot(grid, roof, color="black", lw=1, ls=style, label=f"{dtype} peak {rate:.3g} GMAC/s")
        if bandwidth:
            ax.plot(grid, bandwidth * grid, color="grey", lw=0.8, alpha=0.5, label=f"memory {bandwidth:.3g} GB/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low_x, high_x)
        top = max(max(peak.gmacs_per_s.values()), max(ys_all)) * 2
        ax.set_ylim(min(ys_all) / 2, top)
        ax.set_xlabel("arithmetic intensity (MACs per byte read and written)")
        ax.set_ylabel("achieved GMAC/s")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7.5, loc="lower right")
        plots.append(
            Plot(
                f"roofline_{target}",
                f"Roofline: operators on {target}",
                "Each timed operator with MACs at its arithmetic intensity and the rate it achieved alone; stars: "
                "the whole models at their median latency. Roofs measured on the board through the same runtime, "
                f"delegate and threads ({peak.delegate}, threads {peak.threads or 'default'}): the "
                "fastest large convolution of each data type, and an element-wise ADD of 48 MiB for the memory "
                "roof. Bytes are each tensor read or written once (compulsory traffic), not what caches fetched: an "
                "operator above the memory roof runs from cache.",
                _png(fig),
                fig,
            )
        )
    return plots


def operator_plots(data: ReportData) -> list[Plot]:
    return time_bars(data) + roofline(data)
