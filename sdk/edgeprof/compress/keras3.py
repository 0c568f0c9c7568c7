"""Loading Keras 3 ``.keras`` files into tf_keras, which TF-MOT needs.

TF-MOT only works with Keras 2 (tf_keras), and tf_keras cannot read the archives Keras 3 writes. We read the archive
ourselves: ``config.json`` gives the architecture, which we rebuild layer by layer with the tf_keras classes of the
same names, and ``model.weights.h5`` gives each layer's variables in order, which we copy where the shapes match.
A layer with no tf_keras counterpart, or whose weights do not map, stops the load with one line naming it.
Keras 3 need not be installed.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..errors import ModelError

# Keras 3 options that tf_keras lacks; harmless to drop at these values.
_DROPPABLE = (None, False, {}, [], "float32")


def is_keras3_archive(path: Path) -> bool:
    if path.is_dir() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
    except (KeyError, ValueError):
        return False
    return str(metadata.get("keras_version", "")).startswith("3")


def describe(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    return {"keras_version": metadata.get("keras_version"), "loaded_as": "rebuilt in tf_keras from the Keras 3 config"}


def _modules() -> dict[str, Any]:
    keras = _tf.keras()
    return {
        "keras.layers": keras.layers,
        "keras.initializers": keras.initializers,
        "keras.regularizers": keras.regularizers,
        "keras.constraints": keras.constraints,
    }


def _convert(value: Any, where: str) -> Any:
    """Keras 3 serialised objects → tf_keras objects (initializers, regularizers, constraints) or plain values."""
    if isinstance(value, list):
        return [_convert(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "class_name" in value and "config" in value:
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            return value["config"].get("name", "float32")
        if value["class_name"] == "__keras_tensor__":
            return value
        module = _modules().get(str(value.get("module", "")).removesuffix(".src"))
        cls = getattr(module, value["class_name"], None) if module is not None else None
        if cls is None:
            raise ModelError(
                f"{where}: {value.get('module')}.{value['class_name']} has no tf_keras equivalent",
                "replace it with a standard one, or build the model with tf_keras",
            )
        return _instantiate(cls, value["config"], where, layer=False)
    return {k: _convert(v, where) for k, v in value.items()}


def _instantiate(cls: type, config: dict[str, Any], where: str, *, layer: bool) -> Any:
    kwargs = {key: _convert(value, where) for key, value in config.items()}
    accepted = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        for key in [k for k in kwargs if k not in accepted]:
            _drop(kwargs, key, where)
    for _ in range(len(kwargs) + 1):
        try:
            return cls(**kwargs)
        except TypeError as exc:
            match = re.search(r"(?:unexpected keyword argument|argument not understood:?)\W+(\w+)", str(exc))
            if match is None or match.group(1) not in kwargs:
                raise ModelError(
                    f"{where}: tf_keras cannot build it ({exc})", "build the model with tf_keras"
                ) from None
            _drop(kwargs, match.group(1), where)
        except ValueError as exc:
            raise ModelError(f"{where}: tf_keras cannot build it ({exc})", "build the model with tf_keras") from None
    raise ModelError(f"{where}: tf_keras cannot build it", "build the model with tf_keras")


def _drop(kwargs: dict[str, Any], key: str, where: str) -> None:
    """Leave out a Keras 3 option tf_keras lacks, but only at a value that changes nothing."""
    value = kwargs.pop(key)
    if value not in _DROPPABLE:
        raise ModelError(
            f"{where}: the Keras 3 option {key}={value!r} has no tf_keras equivalent",
            "save the model without it, or build it with tf_keras",
        )


def _layer(entry: dict[str, Any]) -> Any:
    keras = _tf.keras()
    name = entry["config"].get("name", "?")
    where = f"layer {name!r} ({entry['class_name']})"
    if entry["class_name"] == "InputLayer":
        config = entry["config"]
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        return keras.Input(shape=tuple(shape[1:]), name=name, dtype=config.get("dtype") or "float32")
    cls = getattr(keras.layers, entry["class_name"], None)
    if cls is None or str(entry.get("module", "keras.layers")).split(".")[0] != "keras":
        raise ModelError(
            f"{where} of the Keras 3 model has no tf_keras equivalent",
            "replace it with a standard Keras layer, or build the model with tf_keras",
        )
    return _instantiate(cls, entry["config"], where, layer=True)


def _resolve(value: Any, tensors: dict[tuple[str, int, int], Any]) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return tensors[(history[0], int(history[1]), int(history[2]))]
    if isinstance(value, list):
        return [_resolve(v, tensors) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, tensors) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, tensors) for k, v in value.items()}
    return value


def _refs(spec: Any) -> list[tuple[str, int, int]]:
    """input_layers / output_layers: one [name, node, index] or a list of them."""
    if spec and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]), int(spec[2]))]
    return [(s[0], int(s[1]), int(s[2])) for s in spec]


def _functional(config: dict[str, Any]) -> Any:
    keras = _tf.keras()
    tensors: dict[tuple[str, int, int], Any] = {}
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            tensors[(name, 0, 0)] = _layer(entry)
            continue
        layer = _layer(entry)
        for node_index, node in enumerate(entry.get("inbound_nodes", [])):
            args = _resolve(node.get("args", []), tensors)
            kwargs = _resolve(node.get("kwargs", {}), tensors)
            outputs = layer(*args, **kwargs)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for i, output in enumerate(outputs):
                tensors[(name, node_index, i)] = output
    inputs = [tensors[r] for r in _refs(config["input_layers"])]
    outputs = [tensors[r] for r in _refs(config["output_layers"])]
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs, name=config["name"]
    )


def _sequential(config: dict[str, Any]) -> Any:
    keras = _tf.keras()
    entries = config["layers"]
    layers = []
    if entries and entries[0]["class_name"] == "InputLayer":
        layers.append(_layer(entries[0]))
        entries = entries[1:]
    elif entries and entries[0].get("build_config", {}).get("input_shape"):
        layers.append(keras.Input(shape=tuple(entries[0]["build_config"]["input_shape"][1:])))
    layers += [_layer(entry) for entry in entries]
    return keras.Sequential(layers, name=config.get("name"))


def _weights(archive: zipfile.ZipFile) -> dict[str, list[np.ndarray]]:
    import h5py

    found: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
        layers = h5.get("layers") or h5.get("_layer_checkpoint_dependencies")
        if layers is None:
            return found
        for name, group in layers.items():
            variables = group.get("vars")
            if variables is not None:
                found[name] = [np.asarray(variables[k]) for k in sorted(variables.keys(), key=int)]
    return found


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _group_names(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Layer name → its group in model.weights.h5: Keras 3 names groups by class, counted in layer order."""
    used: dict[str, int] = {}
    groups = {}
    for entry in entries:
        base = _snake_case(entry["class_name"])
        if base in used:
            used[base] += 1
            groups[entry["config"]["name"]] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            groups[entry["config"]["name"]] = base
    return groups


def load(path: Path) -> Any:
    """A tf_keras model rebuilt from a Keras 3 ``.keras`` archive, with its weights."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = _weights(archive)
    kind = config.get("class_name")
    if kind == "Sequential":
        model = _sequential(config["config"])
    elif kind in ("Functional", "Model") and "layers" in config.get("config", {}):
        model = _functional(config["config"])
    else:
        raise ModelError(
            f"{path} holds a subclassed Keras 3 model ({kind}), which TF-MOT cannot compress",
            "rebuild it as a Sequential or Functional model",
        )
    groups = _group_names(config["config"]["layers"])
    for layer in model.layers:
        expected = layer.get_weights()
        if not expected:
            continue
        stored = weights.get(groups.get(layer.name, layer.name))
        shapes_ok = stored is not None and [w.shape for w in stored] == [w.shape for w in expected]
        if not shapes_ok:
            have = [list(w.shape) for w in stored] if stored is not None else "none"
            raise ModelError(
                f"the weights of layer {layer.name!r} ({type(layer).__name__}) do not map from the Keras 3 file "
                f"(stored {have}, tf_keras expects {[list(w.shape) for w in expected]})",
                "save the model with tf_keras, or report the layer type",
            )
        layer.set_weights(stored)
    return model
