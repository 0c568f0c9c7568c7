"""Parameters and multiply-accumulates of a Keras model, counted from its layer shapes.

Steps that change a model's structure (``pca``, ``autoencoder``) report both before and after. MACs are counted
the way :mod:`edgeprof.tflite.macs` counts the exported operators (one MAC per weight per output position, batch
1), for Dense, convolution, depthwise, separable and transposed convolution layers; other layers count 0, so on a
float32 export of a Dense/Conv model the two figures agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _tf


def _shape(value: Any) -> tuple[int, ...]:
    """One tensor's shape without the batch axis (unknown sizes count 1)."""
    if isinstance(value, list):
        value = value[0]
    return tuple(int(d) if d is not None else 1 for d in tuple(value)[1:])


def _prod(values: Any) -> int:
    return int(np.prod([int(v) for v in values])) if len(values) else 1


def layer_macs(layer: Any) -> int:
    keras = _tf.keras()
    layers = keras.layers
    if isinstance(layer, keras.Model):
        return macs(layer)
    if not layer.weights:
        return 0
    try:
        inputs, outputs = _shape(layer.input_shape), _shape(layer.output_shape)
    except (AttributeError, RuntimeError):  # a layer used at several shapes: not counted
        return 0
    if isinstance(layer, layers.Dense):
        return _prod(outputs[:-1]) * inputs[-1] * int(layer.units)
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        channels = inputs[-1] * int(layer.depth_multiplier)
        return _prod(outputs[:-1]) * (_prod(layer.kernel_size) * channels + channels * int(layer.filters))
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return _prod(outputs[:-1]) * _prod(layer.kernel_size) * inputs[-1] * int(layer.depth_multiplier)
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        return _prod(inputs[:-1]) * _prod(layer.kernel_size) * inputs[-1] * int(layer.filters)
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        groups = int(getattr(layer, "groups", 1) or 1)
        return _prod(outputs[:-1]) * _prod(layer.kernel_size) * (inputs[-1] // groups) * int(layer.filters)
    return 0


def macs(model: Any) -> int:
    return sum(layer_macs(layer) for layer in model.layers)


def params(model: Any) -> int:
    return int(model.count_params())


def snapshot(model: Any, data: Any) -> dict[str, Any]:
    """Parameters, MACs and the evaluation metrics of a model, for a step's before/after figures."""
    from . import evaluate

    task = getattr(data, "task", None)
    return {
        "params": params(model),
        "macs": macs(model),
        "metrics": evaluate.keras_metrics(model, data),
        "headline": task.headline() if task is not None else None,
    }


def headline(snap: dict[str, Any]) -> tuple[str, float, bool] | None:
    """The figure a one-line effect quotes: the task's headline figure (accuracy for classifiers), else the first."""
    numbers = {k: v for k, v in snap["metrics"].items() if isinstance(v, float)}
    figure = snap.get("headline")
    if figure is not None and figure.key in numbers:
        return figure.label, numbers[figure.key], figure.fraction
    if "accuracy" in numbers:
        return "accuracy", numbers["accuracy"], True
    return next(((k, v, False) for k, v in numbers.items()), None)


def change_text(before: dict[str, Any], after: dict[str, Any]) -> str:
    text = f"params {before['params']:,} → {after['params']:,}, MACs {before['macs']:,} → {after['macs']:,}"
    first, last = headline(before), headline(after)
    if first and last and first[0] == last[0]:
        if first[2]:
            text += f", {first[0]} {first[1]:.1%} → {last[1]:.1%}"
        else:
            text += f", {first[0]} {first[1]:.4g} → {last[1]:.4g}"
    return text
