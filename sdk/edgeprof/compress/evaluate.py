"""Accuracy and friends for the Keras source and for the exported TFLite model.

The TFLite model is evaluated by the device agent on the ``local`` target, in its own process with LiteRT: the
same interpreter code that runs on boards, and never LiteRT beside TensorFlow in one process (which aborted once).
"""

from __future__ import annotations

from typing import Any

from .. import metrics
from ..data import Dataset
from ..predict import predict_local


def keras_metrics(model: Any, data: Dataset, batch_size: int = 256) -> dict[str, float]:
    outputs = model.predict(data.x_test, batch_size=batch_size, verbose=0)
    return metrics.classification(data.y_test, outputs)


def tflite_metrics(tflite: bytes, data: Dataset) -> dict[str, float]:
    return metrics.classification(data.y_test, predict_local(tflite, data.x_test))
