"""The ``channels`` step: structured pruning that removes whole output channels, so the model does less work.

Unstructured pruning zeroes weights and leaves every multiply in place (XNNPACK's dense kernels still run them); this
step deletes the least important output channels of Conv2D, SeparableConv2D and Dense layers, and with them the
matching slices of every layer the channels reach (BatchNormalization, the DepthwiseConv2D that follows, the next
layer's input rows, the Dense rows behind a Flatten, every branch of a residual Add: :mod:`.channel_graph`). The
rebuilt model is an ordinary, smaller Keras model: fewer MACs and parameters in the exported file, then fine-tuning.

Importance is the L1 (or L2) norm of each filter, as in Li et al., "Pruning Filters for Efficient ConvNets"; with
``criterion = "sensitivity"`` a measured scan (:mod:`.sensitivity`) decides how many channels each group loses
(less-sensitive groups are pruned harder, for the same total), and the norms decide which ones.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import Dataset
from ..errors import CompressionError, RecipeError
from . import channel_graph, cost, select, training
from .recipe import Step, register_step

CRITERIA = ("l1", "l2", "sensitivity")


@register_step
@dataclass
class ChannelsStep(Step):
    """Remove ``ratio`` of the output channels of each prunable group (``ratios``: fnmatch pattern → ratio for
    layers or groups, e.g. ``{"block_1*" = 0.5}``); ``round_to`` keeps channel counts multiples of it (SIMD
    kernels favour multiples of 4 or 8); ``sensitivity`` is a scan from ``edgeprof sensitivity --json`` for
    ``criterion = "sensitivity"`` (without it the step measures one)."""

    kind: ClassVar[str] = "channels"
    ratio: float = 0.25
    ratios: dict[str, float] = field(default_factory=dict)
    criterion: str = "l1"
    round_to: int = 1
    sensitivity: str | None = None

    def describe(self) -> str:
        extra = f", {self.criterion}" if self.criterion != "l1" else ""
        return f"channels -{self.ratio:.0%}{extra}"

    def validate(self, where: str) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise RecipeError(
                f"{where}: ratio {self.ratio} would leave no channel in any layer"
                if self.ratio >= 1.0
                else f"{where}: ratio {self.ratio} is negative",
                "use a fraction of channels to remove in [0, 1), e.g. ratio = 0.25",
            )
        for pattern, value in self.ratios.items():
            if not 0.0 <= float(value) < 1.0:
                raise RecipeError(
                    f"{where}: ratios[{pattern!r}] = {value} would leave those layers without channels"
                    if float(value) >= 1.0
                    else f"{where}: ratios[{pattern!r}] = {value} is negative",
                    f'use a fraction below 1, e.g. ratios = {{"{pattern}" = 0.5}}',
                )
        if self.criterion not in CRITERIA:
            raise RecipeError(f"{where}: unknown criterion {self.criterion!r}", f"use one of: {', '.join(CRITERIA)}")
        if self.round_to < 1:
            raise RecipeError(f"{where}: round_to must be ≥ 1", "use e.g. round_to = 8, or 1 for no rounding")
        if self.sensitivity is not None and self.criterion != "sensitivity":
            raise RecipeError(f'{where}: sensitivity is read only with criterion = "sensitivity"', "set both")


def kept_count(channels: int, ratio: float, round_to: int) -> int:
    """Channels left after removing ``ratio`` of them, a multiple of ``round_to`` where the layer allows."""
    keep = channels * (1.0 - ratio)
    if round_to > 1 and channels > round_to:
        keep = round_to * max(1, round(keep / round_to))
    return int(min(channels, max(0, round(keep))))


def _ratio_for(group: channel_graph.Group, step: ChannelsStep) -> tuple[float, str | None]:
    """The group's ratio: the smallest of the ``ratios`` patterns matching one of its layers, else ``ratio``."""
    found = [
        (float(value), pattern)
        for pattern, value in step.ratios.items()
        for name in group.producers
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(group.label(), pattern)
    ]
    return min(found) if found else (step.ratio, None)


def plan(
    model: Any, step: ChannelsStep, cg: channel_graph.ChannelGraph, ratios: dict[int, float] | None = None
) -> tuple[dict[int, np.ndarray], dict[str, str], dict[int, float]]:
    """Per group to prune: the channel indices kept; plus the groups left as they are, with the reason.

    ``ratios`` (group id → ratio) overrides the step's ratios (the sensitivity allocation).
    """
    keep: dict[int, np.ndarray] = {}
    skipped: dict[str, str] = {}
    refused: dict[str, tuple[str, str]] = {}
    chosen_ratio: dict[int, float] = {}
    for group in cg.groups:
        layers = [model.get_layer(name) for name in group.producers]
        if not any(select.selected(layer, step) for layer in layers):
            continue
        chosen = any(select.explicit(layer, step) for layer in layers)
        if group.blocked:
            if chosen:
                refused[group.label()] = (type(layers[0]).__name__, f"its channels are tied: {group.blocked}")
            else:
                skipped[group.label()] = group.blocked
            continue
        ratio, pattern = _ratio_for(group, step)
        if ratios is not None and group.id in ratios and pattern is None:
            ratio = ratios[group.id]
        count = kept_count(group.channels, ratio, step.round_to)
        if count < 1:
            where = f'ratios = {{"{pattern}" = ...}}' if pattern else "ratio"
            raise CompressionError(
                f"removing {ratio:.0%} of the {group.channels} channels of {group.label()} would leave it with none",
                f"lower {where} below {1 - 1 / group.channels:.2f} for it, or exclude it with "
                f'exclude = ["{group.producers[0]}"]',
            )
        if count == group.channels:
            skipped[group.label()] = f"{ratio:.0%} of {group.channels} channels rounds to none removed"
            continue
        importance = cg.importance(group, "l2" if step.criterion == "l2" else "l1")
        keep[group.id] = np.sort(np.argsort(-importance, kind="stable")[:count])
        chosen_ratio[group.id] = ratio
    if refused:
        raise select.refuse(refused, step, "channel-pruned")
    return keep, skipped, chosen_ratio


def apply(model: Any, step: ChannelsStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    cg = channel_graph.analyse(model)
    ratios = None
    allocation = None
    if step.criterion == "sensitivity":
        ratios, allocation = _sensitivity_ratios(model, step, data, cg)
    keep, skipped, chosen_ratio = plan(model, step, cg, ratios)
    if not keep:
        raise CompressionError(
            "no channel was removed: "
            + (
                select.skipped_text(skipped) if skipped else "the step's layers/exclude patterns match no Conv or Dense"
            ),
            "raise ratio, or choose layers whose channels are not tied to the model's output or a Concatenate",
        )
    before = cost.snapshot(model, data)
    layer_before = {layer.name: (cost.layer_macs(layer), layer.count_params()) for layer in model.layers}
    pruned = channel_graph.prune(model, cg, keep)
    training.compile_for(pruned, step.training)
    training.fit(pruned, data, step.training, seed=seed)
    after = cost.snapshot(pruned, data)
    by_id = {g.id: g for g in cg.groups}
    groups = []
    for gid, idx in keep.items():
        group = by_id[gid]
        groups.append(
            {
                "group": group.label(),
                "producers": group.producers,
                "channels_before": group.channels,
                "channels_after": len(idx),
                "ratio": chosen_ratio[gid],
                "kept": [int(i) for i in idx],
            }
        )
    layers = {}
    for layer in pruned.layers:
        macs_before, params_before = layer_before.get(layer.name, (0, 0))
        macs_after, params_after = cost.layer_macs(layer), layer.count_params()
        if (macs_before, params_before) != (macs_after, params_after):
            layers[layer.name] = {
                "type": type(layer).__name__,
                "macs_before": int(macs_before),
                "macs_after": int(macs_after),
                "params_before": int(params_before),
                "params_after": int(params_after),
            }
            group = cg.group_of(layer.name)
            if group is not None and group.id in keep and layer.name in group.producers:
                layers[layer.name]["channels"] = f"{len(keep[group.id])}/{group.channels}"
    removed = sum(g["channels_before"] - g["channels_after"] for g in groups)
    total = sum(g["channels_before"] for g in groups)
    text = (
        f"{removed:,} of {total:,} channels removed in {len(groups)} group(s) ({step.criterion}"
        + (f", multiples of {step.round_to}" if step.round_to > 1 else "")
        + f"); {cost.change_text(before, after)}"
    )
    if skipped:
        text += "; " + select.skipped_text(skipped)
    return pruned, {
        "criterion": step.criterion,
        "ratio": step.ratio,
        "round_to": step.round_to,
        "groups": groups,
        "layers": layers,
        "skipped": skipped,
        "params_before": before["params"],
        "params_after": after["params"],
        "macs_before": before["macs"],
        "macs_after": after["macs"],
        **({"sensitivity_allocation": allocation} if allocation else {}),
        "text": text,
    }


def _sensitivity_ratios(
    model: Any, step: ChannelsStep, data: Dataset, cg: channel_graph.ChannelGraph
) -> tuple[dict[int, float], dict[str, Any]]:
    """Per group, a ratio from a sensitivity scan: every group is pruned until its measured drop reaches one common
    threshold, the threshold chosen (by bisection) so that ``ratio`` of the channels go in total."""
    from . import sensitivity

    if step.sensitivity:
        path = Path(step.sensitivity)
        try:
            scan = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RecipeError(
                f"cannot read the sensitivity scan {path}: {exc}",
                "pass a file written by 'edgeprof sensitivity --json'",
            ) from None
    else:
        # On the training split: the test split stays unseen until the exported model is judged on it.
        train = dataclasses.replace(data, x_test=data.x_train, y_test=data.y_train)
        scan = sensitivity.scan(model, train, quantize=False, sparsities=(), cg=cg)
    curves = sensitivity.channel_curves(scan)
    groups = [g for g in cg.groups if not g.blocked and g.label() in curves]
    if not groups:
        raise CompressionError(
            "the sensitivity scan names none of this model's prunable channel groups",
            "scan this model: edgeprof sensitivity MODEL --data D --json > scan.json",
        )
    ratios = sensitivity.allocate({g.label(): (g.channels, curves[g.label()]) for g in groups}, step.ratio)
    by_label = {g.label(): g.id for g in groups}
    return {by_label[label]: r for label, r in ratios.items()}, {
        "ratios": ratios,
        "from": str(step.sensitivity) if step.sensitivity else "measured by this step (no fine-tuning, training split)",
    }
