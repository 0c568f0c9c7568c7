"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display needed).

Each function returns a :class:`Plot` (PNG bytes plus the caption a reader needs), or None when the store holds
nothing to draw for it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compare import samples_of
from ..store.sql import energy_mj
from .collect import ReportData

DPI = 110
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


@dataclass
class Plot:
    name: str  # file stem for --png
    title: str
    caption: str
    png: bytes


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


def latency_distributions(data: ReportData) -> Plot | None:
    if not data.runs:
        return None
    names = labels(data)
    targets = sorted({r["target"] for r in data.runs})
    per_target = {t: [r for r in data.runs if r["target"] == t] for t in targets}
    rows = max(len(v) for v in per_target.values())
    fig = _figure(9.5, 1.2 + 0.55 * rows * len(targets) + 0.6 * len(targets))
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
        parts = ax.violinplot(shown, positions=positions, orientation="horizontal", showextrema=False, widths=0.8)
        for body, color in zip(parts["bodies"], COLORS * 10, strict=False):
            body.set_facecolor(color)
            body.set_alpha(0.45)
        for pos, run in zip(positions, runs, strict=True):
            ax.plot([run["median_ms"]] * 2, [pos - 0.3, pos + 0.3], color="black", lw=2)
            ax.plot([run["p90_ms"]] * 2, [pos - 0.3, pos + 0.3], color="black", lw=1, ls="--")
        ax.set_yticks(positions, [f"{names.get(r['model_sha256'], r['model_name'])}  #{r['id']}" for r in runs])
        if log_scale:
            ax.set_xscale("log")
            ax.set_xlim(low / 1.2, upper)
        else:
            ax.set_xlim(max(low - pad, 0), upper)
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
        ax.set_xlabel("latency per inference (ms)")
        ax.grid(axis="x", alpha=0.3)
    return Plot(
        "latency",
        "Latency distributions per target and model",
        "Every measured inference of the newest run of each model on each target (violin: the density of the "
        "samples; solid line: median; dashed line: p90). The axis ends just past the slowest p99.5; the few "
        "slower samples are counted in the corner.",
        _png(fig),
    )


def _scatter_pareto(ax: Any, points: list[tuple[float, float]], names: list[str], xlabel: str) -> None:
    front = pareto_front(points)
    xs, ys = [p[0] for p in points], [100 * p[1] for p in points]
    ax.scatter(xs, ys, s=40, color="#7f7f7f", zorder=2, label="model")
    fx = [xs[i] for i in front]
    fy = [ys[i] for i in front]
    ax.scatter(fx, fy, s=90, facecolors="none", edgecolors="#d62728", linewidths=2, zorder=3, label="Pareto front")
    ax.step(fx, fy, where="post", color="#d62728", lw=1.2, zorder=1)
    ax.margins(x=0.12, y=0.15)
    middle = (min(xs) + max(xs)) / 2
    for x, y, name in zip(xs, ys, names, strict=True):
        right = x > middle  # labels point inwards so they stay inside the axes
        ax.annotate(
            name,
            (x, y),
            textcoords="offset points",
            xytext=(-7 if right else 7, 5),
            ha="right" if right else "left",
            fontsize=7.5,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def accuracy_vs_latency(data: ReportData) -> Plot | None:
    names = labels(data)
    targets = sorted({r["target"] for r in data.runs})
    panels = []
    for target in targets:
        pts, who = [], []
        for run in data.runs:
            facts = data.models.get(run["model_sha256"])
            if run["target"] == target and facts is not None and facts.accuracy is not None:
                pts.append((run["p90_ms"], facts.accuracy))
                who.append(names[run["model_sha256"]])
        if pts:
            panels.append((target, pts, who))
    if not panels:
        return None
    fig = _figure(9.5, 4.2 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (target, pts, who) in zip(axes, panels, strict=True):
        _scatter_pareto(ax, pts, who, "p90 latency (ms)")
        ax.set_title(f"target {target}", loc="left", fontsize=10)
    return Plot(
        "accuracy_vs_p90",
        "Accuracy against p90 latency",
        "Accuracy of each TFLite model (from its compression manifest) against the p90 latency of its newest run. "
        "Circled points and the red staircase are the Pareto front: no other model is both faster and more accurate.",
        _png(fig),
    )


def accuracy_vs_size(data: ReportData) -> Plot | None:
    names = labels(data)
    shas = [sha for sha, f in data.models.items() if f.accuracy is not None]
    if not shas:
        return None
    fig = _figure(9.5, 4.2)
    ax_raw, ax_gzip = fig.subplots(1, 2)
    for ax, key, title in ((ax_raw, "size_bytes", "file size"), (ax_gzip, "gzip_bytes", "gzip size")):
        pts = [(getattr(data.models[s], key) / 1024, data.models[s].accuracy) for s in shas]
        _scatter_pareto(ax, pts, [names[s] for s in shas], f"{title} (KiB)")
        ax.set_title(title, loc="left", fontsize=10)
    return Plot(
        "accuracy_vs_size",
        "Accuracy against model size",
        "Accuracy against the .tflite file size and its gzip size (pruning and clustering shrink the latter), "
        "with the Pareto front marked.",
        _png(fig),
    )


def _weight_layers(inspection: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [layer for layer in (inspection or {}).get("layers", []) if layer.get("weight_bytes")]


def size_per_layer(data: ReportData) -> list[Plot]:
    """One figure per source model: the weight bytes of each layer of its baseline and every compressed variant."""
    names = labels(data)
    groups: dict[str, list[str]] = {}
    for sha, facts in data.models.items():
        key = facts.source_sha256 or sha
        if _weight_layers(facts.inspection):
            groups.setdefault(key, []).append(sha)
    plots = []
    for source, shas in sorted(groups.items()):
        shas.sort(key=lambda s: (not data.models[s].is_baseline, data.models[s].name, s))
        layer_lists = [_weight_layers(data.models[s].inspection) for s in shas]
        count = max(len(layers) for layers in layer_lists)
        fig = _figure(max(7.0, min(18.0, 2.0 + 0.35 * count * len(shas))), 4.4)
        ax = fig.subplots()
        width = 0.8 / len(shas)
        x = np.arange(count)
        for k, (sha, layers) in enumerate(zip(shas, layer_lists, strict=True)):
            raw = [layer["weight_bytes"] / 1024 for layer in layers] + [0] * (count - len(layers))
            packed = [layer["weight_gzip_bytes"] / 1024 for layer in layers] + [0] * (count - len(layers))
            color = COLORS[k % len(COLORS)]
            offset = x - 0.4 + width * (k + 0.5)
            ax.bar(offset, raw, width, color=color, alpha=0.3, edgecolor=color, label=f"{names[sha]}: bytes")
            ax.bar(offset, packed, width * 0.6, color=color, label=f"{names[sha]}: gzip")
        reference = max(layer_lists, key=len)
        ticks = [f"{i}: {layer['op'].replace('_', ' ').lower()}" for i, layer in enumerate(reference)]
        ax.set_xticks(x, ticks, rotation=60 if count > 6 else 0, ha="right" if count > 6 else "center", fontsize=7)
        ax.set_ylabel("weights (KiB)")
        if max((layer["weight_bytes"] for layers in layer_lists for layer in layers), default=1) > 50 * max(
            min((layer["weight_bytes"] for layers in layer_lists for layer in layers), default=1), 1
        ):
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.28 if count > 6 else -0.12), ncol=2)
        ax.set_title(f"source {source[:12]}", loc="left", fontsize=10)
        plots.append(
            Plot(
                f"size_per_layer_{source[:12]}",
                f"Size per layer: models from source {source[:12]}",
                "Weight bytes of each layer with weights, in execution order, as stored in the .tflite file (light "
                "bars) and after gzip (solid bars), for the float32 baseline and each compressed variant.",
                _png(fig),
            )
        )
    return plots


def energy_per_inference(data: ReportData) -> Plot | None:
    measured = [(r, energy_mj(r["record"])) for r in data.runs]
    measured = [(r, e) for r, e in measured if e is not None]
    if not measured:
        return None
    names = labels(data)
    fig = _figure(9.5, 1.2 + 0.45 * len(measured))
    ax = fig.subplots()
    ax.barh(
        range(len(measured)),
        [e for _, e in measured],
        color=[COLORS[i % len(COLORS)] for i in range(len(measured))],
    )
    ax.set_yticks(
        range(len(measured)), [f"{names.get(r['model_sha256'], r['model_name'])} on {r['target']}" for r, _ in measured]
    )
    ax.set_xlabel("energy per inference (mJ)")
    ax.grid(axis="x", alpha=0.3)
    return Plot(
        "energy",
        "Energy per inference",
        "Energy per inference measured by the board's power sensor during the newest run of each model.",
        _png(fig),
    )


def all_plots(data: ReportData, progress: Any = None) -> list[Plot]:
    makers = [latency_distributions, accuracy_vs_latency, accuracy_vs_size, size_per_layer, energy_per_inference]
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
