"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display needed).

Each function returns a :class:`Plot` (PNG bytes plus the caption a reader needs), or None when the store holds
nothing to draw for it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compare import samples_of
from .collect import ReportData

DPI = 110
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


@dataclass
class Plot:
    name: str  # file stem for --png
    title: str
    caption: str
    png: bytes
    figure: Any = field(default=None, repr=False, compare=False)  # the matplotlib Figure drawn (tests read its data)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower x (cost) and higher y (accuracy)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def labels(data: ReportData) -> dict[str, str]:
    """sha256 -> a label unique within the report."""
    from .collect import label

    names = {sha: label(facts, facts.name) for sha, facts in data.models.items()}
    for run in data.runs:
        names.setdefault(run["model_sha256"], run["model_name"])
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {sha: (f"{name} [{sha[:6]}]" if counts[name] > 1 else name) for sha, name in names.items()}


def _log_ticks(ax: Any, low: float, high: float) -> None:
    """A linear axis holding log10(ms), labelled in ms at 1-2-5 steps."""
    lo, hi = math.log10(low), math.log10(high)
    ticks = [
        m * 10.0**k
        for k in range(math.floor(lo) - 1, math.ceil(hi) + 1)
        for m in (1, 2, 5)
        if lo <= math.log10(m * 10.0**k) <= hi
    ]
    ax.set_xlim(lo, hi)
    ax.set_xticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])


def latency_distributions(data: ReportData) -> Plot | None:
    if not data.runs:
        return None
    names = labels(data)
    targets = sorted({r["target"] for r in data.runs})
    per_target = {t: [r for r in data.runs if r["target"] == t] for t in targets}
    rows = max(len(v) for v in per_target.values())
    fig = _figure(9.5, 1.0 + 0.75 * rows * len(targets) + 0.6 * len(targets))
    axes = fig.subplots(len(targets), 1, squeeze=False)[:, 0]
    for ax, target in zip(axes, targets, strict=True):
        runs = per_target[target]
        samples = [samples_of(r["record"]) for r in runs]
        positions = list(range(1, len(runs) + 1))
        low = min(float(s.min()) for s in samples)
        high = max(float(np.percentile(s, 99.5)) for s in samples)
        log_scale = high / max(low, 1e-9) > 20
        pad = 0.05 * (high - low) or 0.05 * high
        upper = high * 1.2 if log_scale else high + pad
        # The density is drawn from the samples inside the axis: a few stalls 100x slower than the rest would
        # otherwise widen the kernel until the bulk of the distribution is a smear.
        shown = [s[s <= upper] if (s <= upper).sum() >= 2 else s for s in samples]
        # On a log axis the density is estimated on log10(latency): a kernel sized for the linear spread of a tail
        # would smear the bulk into a wedge.
        scale = (lambda v: np.log10(np.maximum(v, 1e-9))) if log_scale else (lambda v: np.asarray(v, dtype=float))
        parts = ax.violinplot(
            [scale(x) for x in shown], positions=positions, orientation="horizontal", showextrema=False, widths=0.6
        )
        for body, color in zip(parts["bodies"], COLORS * 10, strict=False):
            body.set_facecolor(color)
            body.set_alpha(0.45)
        for pos, run in zip(positions, runs, strict=True):
            ax.plot([scale(run["median_ms"])] * 2, [pos - 0.25, pos + 0.25], color="black", lw=2)
            ax.plot([scale(run["p90_ms"])] * 2, [pos - 0.25, pos + 0.25], color="black", lw=1, ls="--")
            # The model's name above its violin, not as a tick label: long recipe names would eat the plot's width.
            ax.text(
                0.005,
                pos + 0.3,
                names.get(run["model_sha256"], run["model_name"]),
                transform=ax.get_yaxis_transform(),
                fontsize=8,
                va="bottom",
            )
        ax.set_yticks(positions, [f"#{r['id']}" for r in runs])
        ax.set_ylim(0.5, len(runs) + 0.75)
        if log_scale:
            _log_ticks(ax, low / 1.2, upper)
        else:  # from zero: two runs 1 % apart must look 1 % apart, not like two separate worlds
            ax.set_xlim(0, upper)
        beyond = sum(int((s > upper).sum()) for s in samples)
        if beyond:  # rare stalls (page faults, preemption) would squash the violins: say they exist instead
            slowest = max(float(s.max()) for s in samples)
            ax.text(
                0.995,
                0.02,
                f"{beyond} slower samples beyond the axis (up to {slowest:.3g} ms)",
                transform=ax.transAxes,
                ha="right",
                fontsize=7.5,
                color="#555",
            )
        ax.set_title(f"target {target}", loc="left", fontsize=10)
        ax.set_xlabel("latency per inference (ms" + (", logarithmic)" if log_scale else ")"))
        ax.grid(axis="x", alpha=0.3)
    return Plot(
        "latency",
        "Latency distributions per target and model",
        "Every measured inference of the newest run of each model on each target (violin: the density of the "
        "samples; solid line: median; dashed line: p90). The axis starts at zero (or is logarithmic when the runs "
        "differ more than 20x) and ends just past the slowest p99.5; the few slower samples are counted in the "
        "corner.",
        _png(fig),
        fig,
    )


def wilson_interval(accuracy: float, samples: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of an accuracy measured on ``samples`` test samples (good near 0 and 1 too)."""
    centre = (accuracy + z * z / (2 * samples)) / (1 + z * z / samples)
    half = z * math.sqrt(accuracy * (1 - accuracy) / samples + z * z / (4 * samples * samples)) / (1 + z * z / samples)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Point:
    """One model on an accuracy plot, with the uncertainty of both coordinates."""

    name: str
    x: float
    x_low: float  # the interval drawn around x (for latency: the run's p10; for sizes: x itself, they are exact)
    x_high: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float


def _accuracy_point(name: str, x: float, x_low: float, x_high: float, accuracy: float, samples: int | None) -> Point:
    low, high = wilson_interval(accuracy, samples) if samples else (accuracy, accuracy)
    return Point(name, x, x_low, x_high, accuracy, low, high)


def _zero_based(ax: Any, values: Sequence[float], lows: Sequence[float]) -> None:
    """An axis from zero, so that sub-microsecond differences are not blown up into a slope; a log axis only when
    the values span more than 20x (then equal ratios look equal, which is also honest)."""
    smallest, largest = min(lows), max(values)
    if smallest > 0 and largest / smallest > 20:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.set_xlim(smallest / 1.5, largest * 1.5)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    else:
        ax.set_xlim(0, largest * 1.18 if largest > 0 else 1)


def _accuracy_span(ax: Any, points: Sequence[Point]) -> None:
    """The accuracy axis holds every interval, and spans at least twice the widest one, so that differences the
    test set cannot resolve never fill the plot."""
    low = min(100 * p.accuracy_low for p in points)
    high = max(100 * p.accuracy_high for p in points)
    widest = max(100 * (p.accuracy_high - p.accuracy_low) for p in points)
    span = max(high - low, 2 * widest, 1.0)
    middle = (low + high) / 2
    bottom, top = middle - 0.55 * span, middle + 0.55 * span
    if top > 100:
        bottom, top = bottom - (top - 100), 100.0
    ax.set_ylim(max(0.0, bottom), top)


def _scatter_pareto(ax: Any, points: list[Point], xlabel: str) -> None:
    front = pareto_front([(p.x, p.accuracy) for p in points])
    xs, ys = [p.x for p in points], [100 * p.accuracy for p in points]
    ax.errorbar(
        xs,
        ys,
        xerr=[[p.x - p.x_low for p in points], [p.x_high - p.x for p in points]],
        yerr=[
            [100 * (p.accuracy - p.accuracy_low) for p in points],
            [100 * (p.accuracy_high - p.accuracy) for p in points],
        ],
        fmt="o",
        ms=6,
        color="#7f7f7f",
        ecolor="#b0b0b0",
        elinewidth=1.2,
        capsize=2,
        zorder=2,
        label="model (95 % interval of the accuracy)",
    )
    fx = [xs[i] for i in front]
    fy = [ys[i] for i in front]
    ax.scatter(fx, fy, s=90, facecolors="none", edgecolors="#d62728", linewidths=2, zorder=3, label="Pareto front")
    ax.step(fx, fy, where="post", color="#d62728", lw=1.2, zorder=1)
    _zero_based(ax, [p.x_high for p in points], [p.x_low for p in points])
    _accuracy_span(ax, points)
    log = ax.get_xscale() == "log"
    x_of = (lambda v: math.log10(v) if v > 0 else 0.0) if log else (lambda v: v)
    left, right_edge = (x_of(v) for v in ax.get_xlim())
    bottom, top = ax.get_ylim()
    placed: list[tuple[float, float, bool]] = []
    for point, y in sorted(zip(points, ys, strict=True), key=lambda py: (py[1], py[0].x)):
        x = x_of(point.x)
        right = x > (left + right_edge) / 2  # labels point inwards so they stay inside the axes
        # Labels of neighbouring points are stacked instead of printed over each other.
        level = sum(
            1
            for px, py, pr in placed
            if pr == right and abs(px - x) < 0.35 * (right_edge - left) and abs(py - y) < 0.06 * (top - bottom)
        )
        placed.append((x, y, right))
        ax.annotate(
            point.name,
            (point.x, y),
            textcoords="offset points",
            xytext=(-7 if right else 7, 5 + 11 * level),
            ha="right" if right else "left",
            fontsize=7.5,
            arrowprops={"arrowstyle": "-", "color": "#bbb", "lw": 0.6} if level else None,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def _p10(record: dict[str, Any], fallback: float) -> float:
    try:
        return float(np.percentile(samples_of(record), 10))
    except Exception:  # noqa: BLE001 - a run stored without samples still has its p90
        return fallback


def accuracy_vs_latency(data: ReportData) -> Plot | None:
    names = labels(data)
    targets = sorted({r["target"] for r in data.runs})
    panels = []
    for target in targets:
        points = []
        for run in data.runs:
            facts = data.models.get(run["model_sha256"])
            if run["target"] == target and facts is not None and facts.plotted_accuracy is not None:
                p90 = run["p90_ms"]
                points.append(
                    _accuracy_point(
                        names[run["model_sha256"]],
                        p90,
                        _p10(run["record"], p90),
                        p90,
                        facts.plotted_accuracy,
                        facts.test_samples,
                    )
                )
        if points:
            panels.append((target, points))
    if not panels:
        return None
    fig = _figure(9.5, 4.2 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (target, points) in zip(axes, panels, strict=True):
        _scatter_pareto(ax, points, "p90 latency (ms); bar: the run's p10 to p90")
        ax.set_title(f"target {target}", loc="left", fontsize=10)
    return Plot(
        "accuracy_vs_p90",
        "Accuracy against p90 latency",
        "Accuracy of each TFLite model (from its compression manifest, with its 95 % Wilson interval on the test "
        "samples) against the p90 latency of its newest run (the horizontal bar runs from the run's p10 to its p90). "
        "The latency axis starts at zero: models whose bars overlap are not told apart by this plot; "
        "`edgeprof results compare` says whether a difference is beyond run-to-run noise. Circled points and the red "
        "staircase are the Pareto front: no other model is both faster and more accurate.",
        _png(fig),
        fig,
    )


def accuracy_vs_size(data: ReportData) -> Plot | None:
    names = labels(data)
    shas = [sha for sha, f in data.models.items() if f.plotted_accuracy is not None]
    if not shas:
        return None
    fig = _figure(9.5, 7.6)
    ax_raw, ax_gzip = fig.subplots(2, 1)  # stacked: each panel gets the page's width for its labels
    for ax, key, title in ((ax_raw, "size_bytes", "file size"), (ax_gzip, "gzip_bytes", "gzip size")):
        points = []
        for sha in shas:
            facts = data.models[sha]
            kib = getattr(facts, key) / 1024
            points.append(_accuracy_point(names[sha], kib, kib, kib, facts.plotted_accuracy or 0.0, facts.test_samples))
        _scatter_pareto(ax, points, f"{title} (KiB)")
        ax.set_title(title, loc="left", fontsize=10)
    return Plot(
        "accuracy_vs_size",
        "Accuracy against model size",
        "Accuracy (with its 95 % Wilson interval on the test samples) against the .tflite file size and its gzip "
        "size (pruning and clustering shrink the latter), with the Pareto front marked. Sizes are exact; the size "
        "axes start at zero.",
        _png(fig),
        fig,
    )


def _weight_layers(inspection: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [layer for layer in (inspection or {}).get("layers", []) if layer.get("weight_bytes")]


TOP_LAYERS = 24  # rows of a per-layer plot: the largest layers, then one "other" row for the rest


@dataclass
class LayerRows:
    """What a per-layer plot draws: one row per layer kept (execution order), then one for the rest summed."""

    labels: list[str]
    raw_kib: dict[str, list[float]]  # model sha256 -> KiB per row
    gzip_kib: dict[str, list[float]]
    hidden: int  # layers summed into the "other" row


def layer_rows(shas: Sequence[str], layer_lists: Sequence[list[dict[str, Any]]], top: int = TOP_LAYERS) -> LayerRows:
    """The ``top`` layers with the most weight bytes in any model keep their own row, in execution order; the rest
    are summed into a last row, so that a 100-layer network stays readable and no byte goes missing."""
    count = max(len(layers) for layers in layer_lists)
    reference = max(layer_lists, key=len)

    def raw(layers: list[dict[str, Any]], i: int) -> float:
        return layers[i]["weight_bytes"] / 1024 if i < len(layers) else 0.0

    def packed(layers: list[dict[str, Any]], i: int) -> float:
        return layers[i]["weight_gzip_bytes"] / 1024 if i < len(layers) else 0.0

    largest = sorted(range(count), key=lambda i: max(raw(layers, i) for layers in layer_lists), reverse=True)
    kept = sorted(largest[:top]) if count > top + 1 else list(range(count))
    rest = [i for i in range(count) if i not in set(kept)]
    names = []
    for i in kept:
        layer = reference[i]
        shape = "×".join(str(d) for d in (layer.get("output_shape") or [])[1:])
        names.append(f"{i}: {layer['op'].replace('_', ' ').lower()}" + (f" → {shape}" if shape else ""))
    rows = LayerRows(names, {}, {}, len(rest))
    for sha, layers in zip(shas, layer_lists, strict=True):
        rows.raw_kib[sha] = [raw(layers, i) for i in kept]
        rows.gzip_kib[sha] = [packed(layers, i) for i in kept]
        if rest:
            rows.raw_kib[sha].append(sum(raw(layers, i) for i in rest))
            rows.gzip_kib[sha].append(sum(packed(layers, i) for i in rest))
    if rest:
        rows.labels.append(f"other {len(rest)} layers (summed)")
    return rows


def size_per_layer(data: ReportData) -> list[Plot]:
    """One figure per source model: the weight bytes of each layer of its baseline and every compressed variant.

    Layers are rows (a horizontal layout grows downwards with the network instead of squeezing 100 labels into
    one width); past ``TOP_LAYERS`` the smaller layers are summed into one row."""
    names = labels(data)
    groups: dict[str, list[str]] = {}
    for sha, facts in data.models.items():
        key = facts.source_sha256 or sha
        if _weight_layers(facts.inspection):
            groups.setdefault(key, []).append(sha)
    plots = []
    for source, shas in sorted(groups.items()):
        shas.sort(key=lambda s: (not data.models[s].is_baseline, data.models[s].name, s))
        rows = layer_rows(shas, [_weight_layers(data.models[s].inspection) for s in shas])
        band = 0.8 / len(shas)
        row_height = max(0.26, 0.13 * len(shas) + 0.08)
        fig = _figure(9.5, 1.6 + row_height * len(rows.labels) + 0.22 * len(shas))
        ax = fig.subplots()
        y = np.arange(len(rows.labels))
        for k, sha in enumerate(shas):
            color = COLORS[k % len(COLORS)]
            offset = y - 0.4 + band * (k + 0.5)
            ax.barh(
                offset, rows.raw_kib[sha], band, color=color, alpha=0.3, edgecolor=color, label=f"{names[sha]}: bytes"
            )
            ax.barh(offset, rows.gzip_kib[sha], band * 0.6, color=color, label=f"{names[sha]}: gzip")
        ax.set_yticks(y, rows.labels, fontsize=8)
        ax.invert_yaxis()  # execution order, top to bottom
        ax.set_xlabel("weights (KiB); light: in the .tflite file, solid: after gzip")
        values = [v for sha in shas for v in rows.raw_kib[sha] + rows.gzip_kib[sha] if v > 0]
        if values and max(values) > 50 * min(values):
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7.5, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        more = f"; the {rows.hidden} smallest layers are summed in the last row" if rows.hidden else ""
        plots.append(
            Plot(
                f"size_per_layer_{source[:12]}",
                f"Size per layer: models from source {source[:12]}",
                "Weight bytes of each layer with weights, in execution order, as stored in the .tflite file (light "
                "bars) and after gzip (solid bars), for the float32 baseline and each compressed variant"
                f"{more}.",
                _png(fig),
                fig,
            )
        )
    return plots


def energy_per_inference(data: ReportData) -> Plot | None:
    from ..energy import figure_of

    measured = [(r, figure_of(r["record"])) for r in data.runs]
    measured = [(r, f) for r, f in measured if f is not None]
    if not measured:
        return None
    names = labels(data)
    fig = _figure(9.5, 1.2 + 0.45 * len(measured))
    ax = fig.subplots()
    errors = [f.u95 if f.u95 is not None else 0.0 for _, f in measured]
    ax.barh(
        range(len(measured)),
        [f.mj for _, f in measured],
        xerr=errors if any(errors) else None,
        capsize=4,
        color=[COLORS[i % len(COLORS)] for i in range(len(measured))],
    )
    ax.set_yticks(
        range(len(measured)),
        [f"{names.get(r['model_sha256'], r['model_name'])} on {r['target']} ({f.basis})" for r, f in measured],
    )
    ax.set_xlabel("energy per inference (mJ)")
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    sources = [
        "a power meter on the host (above idle)" if s == "meter" else f"the board's {s} sensor"
        for s in sorted({f.source for _, f in measured})
    ]
    return Plot(
        "energy",
        "Energy per inference",
        "Energy per inference during the newest run of each model, from "
        + ", ".join(sources)
        + ("; whiskers: the 95 % interval of a metered figure" if any(errors) else "")
        + ".",
        _png(fig),
        fig,
    )


def all_plots(data: ReportData, progress: Any = None) -> list[Plot]:
    from .operators import operator_plots

    makers = [latency_distributions, accuracy_vs_latency, accuracy_vs_size, size_per_layer, energy_per_inference]
    makers.append(operator_plots)
    plots: list[Plot] = []
    for done, make in enumerate(makers, 1):
        made = make(data)
        if isinstance(made, list):
            plots.extend(made)
        elif made is not None:
            plots.append(made)
        if progress is not None:
            progress(done, len(makers))
    return plots
