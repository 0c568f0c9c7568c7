"""Per-layer sensitivity: the task's headline figure after compressing one layer at a time, nothing else changed.

For each channel group (:mod:`.channel_graph`) the scan removes a range of channel ratios (by masking: the consumers
stop reading the dropped channels, which computes what the rebuilt model would), for each layer with a kernel it
zeroes a range of its smallest weights (unstructured sparsity), and it rounds the layer's kernels alone to int8. No
fine-tuning: the drop says how much a layer's weights matter as they are, which is the prior the field uses for
per-layer ratios (Han et al. 2015; NetAdapt and AMC search from it). The quantisation column is a proxy chosen
because it costs one evaluation per layer instead of one converter run: the layer's kernels rounded to int8 per
output channel (symmetric, as LiteRT's converter stores them), activations left float. It finds layers whose
weights do not survive int8; activation ranges are what full-integer calibration adds on top.

Every figure is measured on the test split (at most ``samples`` of it): the model's own metric, before and after.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import metrics
from ..data import Dataset
from . import analysis, channel_graph, evaluate

RATIOS = (0.25, 0.5, 0.75)
SPARSITIES = (0.5, 0.75, 0.9)
QUANTIZE_PROXY = "the layer's kernels rounded to int8 per output channel (symmetric), activations float"


def _subset(data: Dataset, samples: int) -> Dataset:
    n = len(data.x_test)
    if samples <= 0 or n <= samples:
        return data
    index = np.random.default_rng(0).choice(n, samples, replace=False)

    def cut(value: Any) -> Any:
        if isinstance(value, np.ndarray) and len(value) == n:
            return value[index]
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value]
        return value

    return dataclasses.replace(data, x_test=data.x_test[index], y_test=cut(data.y_test))


def _figure(data: Dataset) -> metrics.Figure:
    if data.task is not None:
        return data.task.headline()
    return metrics.Figure("accuracy", "accuracy")


def _drop(before: float, after: float, fig: metrics.Figure) -> float:
    """How much worse ``after`` is (positive = worse), in pp for fractions, % for errors."""
    return -metrics.change(before, after, fig)[0]


def _int8(values: np.ndarray, depthwise: bool) -> np.ndarray:
    """Symmetric int8 per output channel (a depthwise kernel's channels are its last two axes)."""
    channels = values.shape[-2] * values.shape[-1] if depthwise and values.ndim >= 2 else values.shape[-1]
    flat = values.reshape(-1, channels)
    scale = np.abs(flat).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    return (np.clip(np.round(flat / scale), -127, 127) * scale).reshape(values.shape).astype(values.dtype)


def _sparse(values: np.ndarray, sparsity: float) -> np.ndarray:
    count = round(sparsity * values.size)
    if count <= 0:
        return values
    cut = np.partition(np.abs(values).ravel(), count - 1)[count - 1]
    out = values.copy()
    out[np.abs(values) <= cut] = 0
    return out


def scan(
    model: Any,
    data: Dataset,
    *,
    ratios: Sequence[float] = RATIOS,
    sparsities: Sequence[float] = SPARSITIES,
    quantize: bool = True,
    samples: int = 1000,
    criterion: str = "l1",
    cg: channel_graph.ChannelGraph | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The scan as a JSON-ready dict: ``rows`` (one per layer with a kernel), ``most_sensitive`` and the baseline."""
    say = progress or (lambda _text: None)
    part = _subset(data, samples)
    fig = _figure(part)

    def figure(m: Any) -> float:
        return float(evaluate.keras_metrics(m, part)[fig.key])

    baseline = figure(model)
    cg = cg or channel_graph.analyse(model)
    rows: dict[str, dict[str, Any]] = {}
    for layer in model.layers:
        kernels = analysis.kernel_variables(layer)
        if not kernels:
            continue
        group = cg.group_of(layer.name) if layer.name in cg.layer_space else None
        owns = group is not None and layer.name in group.producers
        rows[layer.name] = {
            "layer": layer.name,
            "type": type(layer).__name__,
            "params": int(layer.count_params()),
            "group": group.label() if owns else None,
            "channels_count": group.channels if owns else None,
            "blocked": _why_no_channels(layer.name, group, owns),
            "channels": {},
            "sparsity": {},
            "int8": None,
        }
    for group in cg.groups:
        if group.blocked or not any(name in rows for name in group.producers):
            continue
        say(f"channels of {group.label()}")
        importance = cg.importance(group, criterion)
        order = np.argsort(-importance, kind="stable")
        saved = {name: model.get_layer(name).get_weights() for name, _ in cg.consumers(group)}
        for ratio in ratios:
            count = max(1, round(group.channels * (1 - ratio)))
            channel_graph.mask(model, cg, {group.id: np.sort(order[:count])})
            drop = _drop(baseline, figure(model), fig)
            for name in group.producers:
                if name in rows:
                    rows[name]["channels"][f"{ratio:g}"] = drop
            for name, weights in saved.items():
                model.get_layer(name).set_weights(weights)
    for name, row in rows.items():
        layer = model.get_layer(name)
        kernels = analysis.kernel_variables(layer)
        original = {key: variable.numpy() for key, variable in kernels.items()}
        if sparsities:
            say(f"sparsity of {name}")
        for sparsity in sparsities:
            for key, variable in kernels.items():
                variable.assign(_sparse(original[key], sparsity))
            row["sparsity"][f"{sparsity:g}"] = _drop(baseline, figure(model), fig)
        if quantize:
            for key, variable in kernels.items():
                variable.assign(_int8(original[key], depthwise=key.endswith("depthwise_kernel")))
            row["int8"] = _drop(baseline, figure(model), fig)
        for key, variable in kernels.items():
            variable.assign(original[key])
    for row in rows.values():
        drops = list(row["channels"].values()) + list(row["sparsity"].values())
        row["score"] = float(np.mean(drops)) if drops else (row["int8"] or 0.0)
    ordered = sorted(rows.values(), key=lambda r: -r["score"])
    unit = "pp" if fig.fraction else ("%" if not fig.higher_is_better else "")
    return {
        "metric": {"key": fig.key, "label": fig.label, "higher_is_better": fig.higher_is_better, "unit": unit},
        "baseline": baseline,
        "samples": len(part.x_test),
        "ratios": [float(r) for r in ratios],
        "sparsities": [float(s) for s in sparsities],
        "quantize": QUANTIZE_PROXY if quantize else None,
        "criterion": criterion,
        "rows": list(rows.values()),
        "most_sensitive": ordered[0]["layer"] if ordered else None,
        "ranking": [r["layer"] for r in ordered],
    }


def _why_no_channels(name: str, group: channel_graph.Group | None, owns: bool) -> str | None:
    if owns:
        return group.blocked if group is not None else None
    if group is not None:
        return f"its channels go with those of {group.label()}"
    return "its output channels are not a prunable group"


def channel_curves(result: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Group label → [(ratio, drop), ...] from a scan, for :func:`allocate`."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in result.get("rows", []):
        if row.get("group") and row.get("channels"):
            curves[row["group"]] = sorted((float(r), float(d)) for r, d in row["channels"].items())
    return curves


def _ratio_at(curve: list[tuple[float, float]], threshold: float) -> float:
    """The largest ratio whose (monotone envelope of the) drop stays within ``threshold``, interpolated."""
    points = [(0.0, 0.0)]
    for ratio, drop in curve:
        points.append((ratio, max(points[-1][1], drop)))
    for (r0, d0), (r1, d1) in itertools.pairwise(points):
        if d1 > threshold:
            return r0 if d1 == d0 else r0 + (threshold - d0) / (d1 - d0) * (r1 - r0)
    return points[-1][0]


def allocate(groups: dict[str, tuple[int, list[tuple[float, float]]]], target: float) -> dict[str, float]:
    """Per-group ratios that remove ``target`` of all channels, each group pruned until one common accuracy drop.

    The threshold is found by bisection; groups that lose nothing up to their largest scanned ratio are pruned
    that far first, scaled down together if even that removes more than asked.
    """
    total = sum(channels for channels, _ in groups.values())

    def removed(threshold: float) -> tuple[float, dict[str, float]]:
        ratios = {label: _ratio_at(curve, threshold) for label, (_, curve) in groups.items()}
        return sum(groups[k][0] * r for k, r in ratios.items()) / total, ratios

    drops = [d for _, curve in groups.values() for _, d in curve]
    low, high = 0.0, max([0.0, *drops]) + 1e-9
    fraction, ratios = removed(low)
    if fraction >= target:
        return {k: r * target / fraction for k, r in ratios.items()} if fraction else ratios
    if removed(high)[0] < target:  # the scan's largest ratios are not enough: take them all
        return removed(high)[1]
    for _ in range(60):
        middle = (low + high) / 2
        if removed(middle)[0] < target:
            low = middle
        else:
            high = middle
    return removed(high)[1]


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the CLI table: drops in the metric's unit, most sensitive first."""
    unit = result["metric"]["unit"]
    head = ["layer", "type", "params"]
    head += [f"-{float(r):.0%} ch" for r in result["ratios"]]
    head += [f"{float(s):.0%} sparse" for s in result["sparsities"]]
    if result.get("quantize"):
        head.append("int8 w")
    rows = []
    order = {name: i for i, name in enumerate(result["ranking"])}
    for row in sorted(result["rows"], key=lambda r: order.get(r["layer"], 0)):
        cells = [row["layer"], row["type"], f"{row['params']:,}"]
        cells += [_cell(row["channels"].get(f"{float(r):g}"), unit) for r in result["ratios"]]
        cells += [_cell(row["sparsity"].get(f"{float(s):g}"), unit) for s in result["sparsities"]]
        if result.get("quantize"):
            cells.append(_cell(row["int8"], unit))
        rows.append(cells)
    return head, rows


def _cell(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:+.1f}{(' ' + unit) if unit else ''}"


def analyse(
    model: Any,
    data: Any,
    *,
    task: str | dict[str, str] | None = None,
    custom_objects: Any = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Load ``model`` (a Keras file or object) and ``data`` as ``compress`` does and :func:`scan` it.

    ``options`` are :func:`scan`'s (``ratios``, ``sparsities``, ``quantize``, ``samples``, ``criterion``). The
    model object you pass is not changed (the scan works on a copy).
    """
    from .. import _tf, data_checks, tasks
    from ..data import load_data
    from ..errors import DataError
    from . import models

    if data is None:
        raise DataError("sensitivity needs data to measure the metric on", "pass --data data.npz or builtin:digits")
    with _tf.quiet_native(), models.custom_object_scope(model, custom_objects):
        dataset = load_data(data, seed=seed)
        data_checks.check_arrays(dataset)
        source, info = models.load_model(model)
        if len(source.inputs) != 1:
            raise DataError(f"the model takes {len(source.inputs)} inputs; sensitivity feeds one", "use one input")
        data_checks.check_input_shape(tuple(source.input_shape[1:]), dataset)
        resolved, dataset = tasks.resolve(source, dataclasses.replace(dataset, task=None), task)
        if progress is not None:
            progress(f"task: {resolved.describe()}")
        copy = models.clone(source)
        found = scan(copy, dataset, progress=progress, **options)
    return {"model": {k: info.get(k) for k in ("path", "sha256")}, "data": dataset.describe(), **found}
