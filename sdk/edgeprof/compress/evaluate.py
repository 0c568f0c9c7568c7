"""The task's metrics for the Keras source and for the exported TFLite model.

The TFLite model is evaluated by the device agent on the ``local`` target, in its own process with LiteRT: the
same interpreter code that runs on boards, and never LiteRT beside TensorFlow in one process (which aborted once).
Every output of a multi-output model comes back, matched to the Keras output of the same name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics
from ..data import Dataset
from ..predict import predict_local_outputs


def keras_outputs(model: Any, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """The model's outputs on ``x``, one array an output in the model's output order (dict outputs included)."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(outputs, dict):
        return [np.asarray(outputs[name]) for name in model.output_names]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def _metrics(data: Dataset, outputs: list[np.ndarray]) -> dict[str, float]:
    if data.task is None:  # data not matched with a model: a classifier, as before tasks existed
        return metrics.classification(data.y_test, outputs[0])
    return data.task.evaluate(data, outputs)


def keras_metrics(model: Any, data: Dataset, batch_size: int = 256) -> dict[str, float]:
    return _metrics(data, keras_outputs(model, data.x_test, batch_size))


def tflite_metrics(tflite: bytes, data: Dataset, output_names: list[str] | None = None) -> dict[str, float]:
    """``output_names``: the Keras output names of the exported model, to match the TFLite outputs with."""
    return _metrics(data, predict_local_outputs(tflite, data.x_test, output_names=output_names))
