"""Which layers a step acts on, and wrapping exactly those.

``layers`` and ``exclude`` are fnmatch patterns matched against a layer's name and its class name, so
``layers = ["Dense"]`` takes every Dense layer and ``exclude = ["conv2d_1"]`` leaves one layer out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from .. import _tf
from ..errors import CompressionError
from .recipe import Step


def matches(layer: Any, patterns: list[str]) -> bool:
    keys = (layer.name, type(layer).__name__)
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns for key in keys)


def selected(layer: Any, step: Step) -> bool:
    if step.exclude and matches(layer, step.exclude):
        return False
    return step.layers is None or matches(layer, step.layers)


def wrap_layers(
    model: Any, step: Step, *, supports: Callable[[Any], bool], wrap: Callable[[Any], Any], what: str
) -> tuple[Any, list[str]]:
    """Clone ``model`` (which must already be our own copy) wrapping the selected layers that have weights.

    A selected layer the technique cannot handle is an error naming the layer, with the ``exclude`` fix.
    """
    keras = _tf.keras()
    wrapped: list[str] = []

    def clone_function(layer: Any) -> Any:
        if isinstance(layer, keras.layers.InputLayer) or not layer.weights or not selected(layer, step):
            return layer
        if not supports(layer):
            raise CompressionError(
                f"layer {layer.name!r} ({type(layer).__name__}) cannot be {what} by TF-MOT",
                f'leave it out with exclude = ["{layer.name}"] in the step',
            )
        wrapped.append(layer.name)
        return wrap(layer)

    result = keras.models.clone_model(model, clone_function=clone_function)
    if not wrapped:
        raise CompressionError(
            f"no layer was {what}: the step's layers/exclude patterns match nothing with weights",
            "check the layer names with 'edgeprof inspect' or model.summary()",
        )
    return result, wrapped
