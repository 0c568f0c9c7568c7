"""Editing a Sequential or Functional model's graph: find where a layer's output goes, insert new layers there.

Steps that add layers (``pca``, ``autoencoder``) edit the model's config and rebuild it, then copy every weight by
layer name, so the result is an ordinary Keras model that TF-MOT, the converter and ``model.save`` all accept. Custom
layers rebuild through the custom-object scope that ``compress`` holds open (see :mod:`.models`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _tf
from ..errors import CompressionError


@dataclass
class Node:
    """One layer of the graph: who feeds it and who reads its output."""

    name: str
    class_name: str
    inputs: list[str]
    consumers: list[str]
    calls: int  # how many times the layer is called (shared layers: more than one)


def nodes(model: Any) -> dict[str, Node]:
    """The layer graph in the order of the model's config."""
    config = model.get_config()
    entries = config["layers"]
    found: dict[str, Node] = {}
    if "input_layers" not in config:  # Sequential: a chain, led by its InputLayer
        previous: list[str] = []
        for entry in entries:
            name = entry["config"]["name"]
            found[name] = Node(name, entry["class_name"], previous, [], 1)
            previous = [name]
    else:
        for entry in entries:
            inbound = entry.get("inbound_nodes", [])
            sources = [ref[0] for node in inbound for ref in node if isinstance(ref, list) and ref]
            found[entry["name"]] = Node(entry["name"], entry["class_name"], sources, [], max(len(inbound), 1))
    for node in found.values():
        for source in node.inputs:
            if source in found:
                found[source].consumers.append(node.name)
    return found


def insert_after(
    model: Any,
    after: str,
    entries: list[dict[str, Any]],
    weights: dict[str, list[np.ndarray]],
    changes: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """A new model with ``entries`` (layer configs, in order) between ``after`` and everything that read it.

    ``weights`` gives the new and the changed layers' weights by name; every other layer keeps its own. ``changes``
    updates existing layers' configs (e.g. ``use_bias``). Layers whose weights change lose their ``build_config`` so
    they are built for their new input.
    """
    keras = _tf.keras()
    if nodes(model)[after].calls > 1:
        raise CompressionError(
            f"layer {after!r} is shared (called more than once), so its output is not one place to insert layers",
            "choose a layer that is called once",
        )
    config = copy.deepcopy(model.get_config())
    layers = config["layers"]
    names = [e["config"]["name"] for e in layers]
    functional = "input_layers" in config
    new = [copy.deepcopy(e) for e in entries]
    for entry in layers:
        if entry["config"]["name"] in weights:
            entry.pop("build_config", None)
        entry["config"].update((changes or {}).get(entry["config"]["name"], {}))
    if not functional:
        at = names.index(after) + 1
        config["layers"] = layers[:at] + new + layers[at:]
    else:
        previous = after
        for entry in new:
            entry["name"] = entry["config"]["name"]
            entry["inbound_nodes"] = [[[previous, 0, 0, {}]]]
            previous = entry["name"]
        for entry in layers:
            for node in entry.get("inbound_nodes", []):
                for ref in node:
                    if isinstance(ref, list) and ref and ref[0] == after:
                        ref[0] = previous
        outputs = config["output_layers"]
        for ref in [outputs] if outputs and isinstance(outputs[0], str) else outputs:
            if ref[0] == after:
                ref[0] = previous
        at = names.index(after) + 1
        config["layers"] = layers[:at] + new + layers[at:]
    try:
        rebuilt = keras.Sequential.from_config(config) if not functional else keras.Model.from_config(config)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a config it cannot rebuild
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressionError(
            f"cannot rebuild the model with the new layers ({first[:200]})", "report the model"
        ) from None
    for layer in rebuilt.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def dense(name: str, units: int, *, activation: str = "linear", use_bias: bool = True) -> dict[str, Any]:
    return {
        "class_name": "Dense",
        "config": {"name": name, "units": units, "activation": activation, "use_bias": use_bias},
    }


def conv1x1(name: str, filters: int, *, activation: str = "linear", use_bias: bool = True) -> dict[str, Any]:
    return {
        "class_name": "Conv2D",
        "config": {
            "name": name,
            "filters": filters,
            "kernel_size": [1, 1],
            "activation": activation,
            "use_bias": use_bias,
        },
    }


def flatten(name: str) -> dict[str, Any]:
    return {"class_name": "Flatten", "config": {"name": name}}


def reshape(name: str, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"class_name": "Reshape", "config": {"name": name, "target_shape": list(shape)}}


def unique_name(model: Any, wanted: str) -> str:
    taken = {layer.name for layer in model.layers}
    name, i = wanted, 1
    while name in taken:
        name, i = f"{wanted}_{i}", i + 1
    return name


def outputs_of(model: Any, name: str, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """What layer ``name`` outputs for inputs ``x`` (the inputs themselves for the InputLayer)."""
    keras = _tf.keras()
    if nodes(model)[name].class_name == "InputLayer":
        return np.asarray(x, dtype=np.float32)
    probe = keras.Model(model.inputs, model.get_layer(name).output)
    return np.asarray(probe.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


@dataclass
class Reader:
    """The first layer with trainable weights that reads a layer's output, and the layer that feeds it."""

    before: str  # its input comes from here (``start`` or a weightless layer after it)
    layer: Any | None  # None: the chain ends (model output, a branch, a merge or a shared layer); see ``why``
    why: str = ""


def next_weighted(model: Any, start: str) -> Reader:
    """Follow ``start``'s output through weightless single-input layers (Flatten, Dropout, Reshape, ...)."""
    graph = nodes(model)
    before = start
    while True:
        node = graph[before]
        if not node.consumers:
            return Reader(before, None, f"{before!r} is the model's output")
        if len(node.consumers) > 1:
            return Reader(before, None, f"the output of {before!r} feeds {len(node.consumers)} layers")
        reader = graph[node.consumers[0]]
        layer = model.get_layer(reader.name)
        if reader.calls > 1 or len(reader.inputs) > 1:
            return Reader(before, None, f"{before!r} feeds {reader.class_name} {reader.name!r}, which has other inputs")
        if layer.trainable_weights:
            return Reader(before, layer)
        before = reader.name
