"""Which output channels are tied together across a Keras graph, and removing them: the surgery of ``channels``.

Removing output channel c of a Conv2D or Dense layer changes every layer that touches that channel: the
BatchNormalization after it (its four per-channel vectors), a DepthwiseConv2D that follows (its channels go with
its input), activations and pooling (nothing to change), the next Conv2D/Dense (its kernel's input rows), a Flatten
in between (the Dense rows of every spatial position of channel c), and a residual ``Add``, whose inputs must all
keep the same channels, so the layers feeding every branch are pruned as one group with one shared mask. This is the
dependency graph of NNI's ``ModelSpeedup`` and torch-pruning's ``DependencyGraph``, built here from the Keras
config: every layer output gets a channel *space*, layers that keep channels per index (BatchNormalization,
activations, pooling, padding, depthwise convolutions) pass their input's space on, element-wise merges unite
the spaces of their inputs, and Conv/Dense layers start a new space. One group = one space after the unions.

A group cannot be pruned when one of its tensors is the model's input or output (their width is fixed), or reaches
a layer that mixes channels in a way we cannot rewire (Concatenate, Reshape, Permute, a custom or Lambda layer,
LayerNormalization, a depth multiplier, a shared layer): the group is *blocked* with the reason, naming that layer.

Two operations on a plan (group id → the channel indices kept): :func:`prune` rebuilds the model without the other
channels (from its config, weights sliced), and :func:`mask` zeroes, in place, the input weights with which the
consumers read the dropped channels. Both compute the same function, which is what the tests check.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _tf
from ..errors import CompressionError
from . import graph as graph_mod

# Layers whose output channel i is a function of input channel i only: their output keeps their input's space.
PASS_THROUGH = frozenset(
    {
        "BatchNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "ThresholdedReLU",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "UpSampling1D",
        "UpSampling2D",
    }
)
MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
PRODUCERS = frozenset({"Conv1D", "Conv2D", "Dense", "SeparableConv1D", "SeparableConv2D"})


@dataclass
class Group:
    """Channels removed together: the output channels of ``producers`` and every tensor tied to them."""

    id: int
    channels: int
    producers: list[str] = field(default_factory=list)  # Conv/Dense layers whose filters these channels are
    members: list[str] = field(default_factory=list)  # layers whose output carries them (BN, activations, Add...)
    consumers: list[str] = field(default_factory=list)  # Conv/Dense layers that read them on their input axis
    blocked: str | None = None  # why these channels cannot be removed

    def label(self) -> str:
        """The group as users see it: its producer, or its producers joined by a residual merge."""
        return " + ".join(self.producers) if self.producers else (self.members[0] if self.members else f"#{self.id}")


@dataclass
class _Space:
    id: int
    channels: int
    producers: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (layer, positions: 1, or the spatial size)
    blocked: list[str] = field(default_factory=list)


class ChannelGraph:
    """The channel groups of a Keras model, with the layer facts :func:`prune` and :func:`mask` need."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._spaces: list[_Space] = []
        self._parent: list[int] = []
        self.layer_space: dict[str, int] = {}  # layer -> the space of its output
        self.positions: dict[str, int] = {}  # layer -> spatial positions its output flattens (Flatten and after)
        self._build()
        self.groups = self._groups()

    # --- building ----------------------------------------------------------------------------------------------

    def _new(self, channels: int, blocked: str | None = None) -> int:
        self._spaces.append(_Space(len(self._spaces), channels, blocked=[blocked] if blocked else []))
        self._parent.append(len(self._parent))
        return len(self._spaces) - 1

    def _find(self, space: int) -> int:
        while self._parent[space] != space:
            self._parent[space] = self._parent[self._parent[space]]
            space = self._parent[space]
        return space

    def _union(self, a: int, b: int) -> int:
        a, b = self._find(a), self._find(b)
        if a != b:
            self._parent[b] = a
        return a

    def _block(self, space: int, reason: str) -> None:
        self._spaces[self._find(space)].blocked.append(reason)

    def _build(self) -> None:
        keras = _tf.keras()
        nodes = graph_mod.nodes(self.model)
        model_input = None
        for name, node in nodes.items():
            kind = node.class_name
            if kind == "InputLayer":  # not among a Sequential's layers: its shape is the model's input shape
                self.layer_space[name] = self._new(_channels(self.model.input_shape), "it is the model's input")
                continue
            layer = self.model.get_layer(name)
            sources = [source for source in node.inputs if source in self.layer_space]
            if not sources:  # a Sequential without an InputLayer entry: the first layer reads the model's input
                if model_input is None:
                    model_input = self._new(_channels(layer.input_shape), "it is the model's input")
                ins = [model_input]
                flat = 1
            else:
                ins = [self.layer_space[s] for s in sources]
                flat = self.positions.get(sources[0], 1)
            out = layer.output_shape
            if isinstance(out, list) or isinstance(layer, keras.Model):
                why = "a nested model" if isinstance(layer, keras.Model) else "it has several outputs"
                for space in ins:
                    self._block(space, f"they reach {kind} {name!r} ({why})")
                self.layer_space[name] = self._new(1, f"{kind} {name!r} is {why}")
                continue
            channels = _channels(out)
            if node.calls > 1:
                for space in ins:
                    self._block(space, f"they reach {name!r}, a layer called more than once")
                self.layer_space[name] = self._new(channels, f"{name!r} is called more than once")
                continue
            why_not = _unsupported(layer, kind, flat)
            if why_not:
                for space in ins:
                    self._block(space, f"they reach {kind} {name!r} ({why_not})")
                self.layer_space[name] = self._new(channels, f"{kind} {name!r} ({why_not}) makes them")
                continue
            if kind in PRODUCERS:
                self._spaces[self._find(ins[0])].consumers.append((name, flat))
                space = self._new(channels)
                self._spaces[space].producers.append(name)
                self.layer_space[name] = space
                if _activation(layer) in ("softmax", "log_softmax"):
                    self._block(space, f"{name!r} ends in a softmax across its channels")
                continue
            if kind in MERGES:
                space = ins[0]
                for other in ins[1:]:
                    space = self._union(space, other)
                if len({self.positions.get(s, 1) for s in sources}) > 1:
                    self._block(space, f"{kind} {name!r} merges flattened and unflattened tensors")
                self._spaces[self._find(space)].members.append(name)
                self.layer_space[name] = space
                self.positions[name] = flat
                continue
            if kind == "Flatten":
                self._spaces[self._find(ins[0])].members.append(name)
                self.layer_space[name] = ins[0]
                shape = layer.input_shape
                self.positions[name] = int(np.prod([d or 1 for d in shape[1:-1]])) if len(shape) > 2 else 1
                continue
            # PASS_THROUGH and DepthwiseConv2D (depth_multiplier 1): the output keeps the input's channels.
            self._spaces[self._find(ins[0])].members.append(name)
            self.layer_space[name] = ins[0]
            self.positions[name] = flat
        for tensor in self.model.outputs:
            name = tensor._keras_history.layer.name
            if name in self.layer_space:
                self._block(self.layer_space[name], f"they reach the model's output through {name!r}")

    def _groups(self) -> list[Group]:
        merged: dict[int, Group] = {}
        for space in self._spaces:
            root = self._find(space.id)
            group = merged.setdefault(root, Group(root, self._spaces[root].channels))
            group.producers += space.producers
            group.members += space.members
            group.consumers += [name for name, _ in space.consumers]
            for reason in space.blocked:  # the model's output first: it is the reason users recognise
                if group.blocked is None or "model's output" in reason:
                    group.blocked = reason
        groups = [g for g in merged.values() if g.producers]
        for group in groups:
            if group.blocked is None and not group.consumers:
                group.blocked = "nothing reads them"
        return sorted(groups, key=lambda g: list(self.layer_space).index(g.producers[0]))

    # --- queries ------------------------------------------------------------------------------------------------

    def group_of(self, layer: str) -> Group | None:
        space = self.layer_space.get(layer)
        if space is None:
            return None
        root = self._find(space)
        return next((g for g in self.groups if g.id == root), None)

    def consumers(self, group: Group) -> list[tuple[str, int]]:
        found = []
        for space in self._spaces:
            if self._find(space.id) == group.id:
                found += space.consumers
        return found

    def importance(self, group: Group, criterion: str = "l1") -> np.ndarray:
        """Per channel: the L1 or L2 norm of each producer's filter, each producer's norms scaled to mean 1, summed.

        Scaling first keeps one branch of a residual Add from deciding for all of them only because its weights are
        larger.
        """
        total = np.zeros(group.channels)
        for name in group.producers:
            kernel = _output_kernel(self.model.get_layer(name))
            flat = np.abs(kernel.reshape(-1, kernel.shape[-1]))
            norms = flat.sum(axis=0) if criterion == "l1" else np.sqrt((flat**2).sum(axis=0))
            total += norms / (norms.mean() or 1.0)
        return total


def analyse(model: Any) -> ChannelGraph:
    return ChannelGraph(model)


def _channels(shape: Any) -> int:
    return int(shape[-1]) if shape and shape[-1] is not None else 0


def _unsupported(layer: Any, kind: str, flat: int) -> str | None:
    """Why a layer cannot be rewired when its input channels change (None: it can)."""
    if kind in PRODUCERS:
        if int(getattr(layer, "groups", 1) or 1) != 1:
            return f"grouped convolution, groups={layer.groups}"
        if kind.startswith("Separable") and int(layer.depth_multiplier) != 1:
            return f"depth_multiplier {layer.depth_multiplier}"
        if flat > 1 and kind != "Dense":
            return "reads a flattened tensor"
        return None
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return None if int(layer.depth_multiplier) == 1 else f"depth_multiplier {layer.depth_multiplier}"
    if kind in PASS_THROUGH or kind in MERGES:
        if kind == "Activation" and _activation(layer) in ("softmax", "log_softmax"):
            return "a softmax across channels"
        if kind == "BatchNormalization" and list(np.atleast_1d(layer.axis)) not in ([-1], [len(layer.input_shape) - 1]):
            return f"normalises axis {layer.axis}, not the channels"
        if kind == "PReLU" and layer.shared_axes and (len(layer.input_shape) - 1) in layer.shared_axes:
            return "its slope is shared across channels"
        return None
    if kind == "Flatten":
        return "flattens a flattened tensor" if flat > 1 else None
    return {
        "Concatenate": "concatenated channels",
        "Reshape": "reshapes the channels",
        "Permute": "moves the channel axis",
        "Lambda": "a Lambda: its code is opaque",
        "TFOpLambda": "a TensorFlow op: its code is opaque",
        "LayerNormalization": "normalises across channels",
        "Softmax": "normalises across channels",
    }.get(kind, f"{kind} layers are not rewired by channels")


def _activation(layer: Any) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation)) if activation is not None else ""


def _output_kernel(layer: Any) -> np.ndarray:
    return (layer.pointwise_kernel if hasattr(layer, "pointwise_kernel") else layer.kernel).numpy()


def _flat_index(keep: np.ndarray, channels: int, positions: int) -> np.ndarray:
    """Rows of a Dense after Flatten that belong to the kept channels (channels-last: row = position·C + c)."""
    return (np.arange(positions)[:, None] * channels + keep[None, :]).ravel()


def _sliced(
    layer: Any,
    keep_in: tuple[np.ndarray, int, int] | None,
    keep_out: tuple[np.ndarray, int, int] | None,
) -> list[np.ndarray]:
    """The layer's weights with its input and/or output channels sliced; each side is ``(keep, channels,
    positions)``, positions > 1 for a tensor flattened from a feature map (a member after Flatten has a vector entry
    per position and channel)."""
    kind = type(layer).__name__
    out = []
    for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
        name = variable.name.split("/")[-1].split(":")[0]
        value = np.asarray(value)
        if kind in PRODUCERS:
            if name in ("kernel", "pointwise_kernel"):
                if keep_in is not None:
                    keep, channels, positions = keep_in
                    rows = _flat_index(keep, channels, positions) if positions > 1 else keep
                    value = np.take(value, rows, axis=value.ndim - 2)
                if keep_out is not None:
                    value = np.take(value, keep_out[0], axis=-1)
            elif name == "depthwise_kernel" and keep_in is not None:
                value = np.take(value, keep_in[0], axis=value.ndim - 2)
            elif name == "bias" and keep_out is not None:
                value = value[keep_out[0]]
        elif keep_out is not None:  # a member: its per-channel vectors, or a depthwise kernel's channel axis
            keep, channels, positions = keep_out
            if name == "depthwise_kernel":
                value = np.take(value, keep, axis=value.ndim - 2)
            elif value.ndim >= 1 and value.shape[-1] == channels * positions:
                value = np.take(value, _flat_index(keep, channels, positions) if positions > 1 else keep, axis=-1)
        out.append(value)
    return out


def prune(model: Any, cg: ChannelGraph, keep: dict[int, np.ndarray]) -> Any:
    """A new model without the channels of each planned group that are not in ``keep[group.id]`` (sorted)."""
    keras = _tf.keras()
    by_id = {g.id: g for g in cg.groups}
    keep = {gid: np.sort(np.asarray(idx, dtype=int)) for gid, idx in keep.items()}
    outputs: dict[str, tuple[np.ndarray, int, int]] = {}  # producer or member -> (kept, channels, positions)
    inputs: dict[str, tuple[np.ndarray, int, int]] = {}  # consumer -> (input channels kept, channels, positions)
    for gid, idx in keep.items():
        group = by_id[gid]
        if group.blocked:
            raise CompressionError(f"channels of {group.label()} cannot be removed: {group.blocked}", "exclude it")
        for name in group.producers + group.members:
            outputs[name] = (idx, group.channels, cg.positions.get(name, 1))
        for name, positions in cg.consumers(group):
            inputs[name] = (idx, group.channels, positions)
    config = copy.deepcopy(model.get_config())
    changed = set(outputs) | set(inputs)
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name not in changed:
            continue
        entry.pop("build_config", None)
        if name in outputs and entry["class_name"] in PRODUCERS:
            key = "units" if entry["class_name"] == "Dense" else "filters"
            entry["config"][key] = len(outputs[name][0])
    functional = "input_layers" in config
    try:
        rebuilt = keras.Model.from_config(config) if functional else keras.Sequential.from_config(config)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a config it cannot rebuild
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressionError(f"cannot rebuild the model without the channels ({first[:200]})", "report it") from None
    for layer in rebuilt.layers:
        old = model.get_layer(layer.name)
        if not old.weights:
            continue
        if layer.name in changed:
            layer.set_weights(_sliced(old, inputs.get(layer.name), outputs.get(layer.name)))
        else:
            layer.set_weights(old.get_weights())
    return rebuilt


def mask(model: Any, cg: ChannelGraph, keep: dict[int, np.ndarray]) -> None:
    """Zero, in place, the consumer weights that read the channels ``keep`` drops: the model then computes what the
    pruned one does (a dropped channel may still be computed, but nothing reads it)."""
    by_id = {g.id: g for g in cg.groups}
    for gid, idx in keep.items():
        group = by_id[gid]
        dropped = np.setdiff1d(np.arange(group.channels), idx)
        for name, positions in cg.consumers(group):
            layer = model.get_layer(name)
            weights = layer.get_weights()
            names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
            for i, weight_name in enumerate(names):
                if weight_name in ("kernel", "pointwise_kernel") and weight_name == _input_kernel(layer):
                    rows = _flat_index(dropped, group.channels, positions) if positions > 1 else dropped
                    index = [slice(None)] * weights[i].ndim
                    index[weights[i].ndim - 2] = rows
                    weights[i][tuple(index)] = 0.0
                elif weight_name == "depthwise_kernel" and hasattr(layer, "pointwise_kernel"):
                    weights[i][..., dropped, :] = 0.0
            layer.set_weights(weights)


def _input_kernel(layer: Any) -> str:
    """The kernel that reads a layer's input channels (a separable convolution's depthwise one reads them first)."""
    return "pointwise_kernel" if hasattr(layer, "pointwise_kernel") else "kernel"
