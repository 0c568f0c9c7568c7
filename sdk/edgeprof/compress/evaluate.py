"""Accuracy and friends for the Keras source and for the exported TFLite model.

The TFLite model is evaluated by the device agent on the ``local`` target, in its own process with LiteRT: the
same interpreter code that runs on boards, and never LiteRT beside TensorFlow in one process (which aborted once).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..data import Dataset
from ..deploy import connect
from ..modelfile import sha256_bytes
from ..targets import local_target


def keras_metrics(model: Any, data: Dataset, batch_size: int = 256) -> dict[str, float]:
    outputs = model.predict(data.x_test, batch_size=batch_size, verbose=0)
    return metrics.classification(data.y_test, outputs)


def tflite_outputs(tflite: bytes, x: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Run every sample of ``x`` through ``tflite`` in the local agent; return the (dequantised) outputs."""
    with connect(local_target()) as board, tempfile.TemporaryDirectory() as tmp:
        remote_model = board.ensure_model(tflite, sha256_bytes(tflite))
        path = Path(tmp) / "x.npy"
        np.save(path, np.asarray(x, dtype=np.float32))
        remote_data = board.ensure_data(path.read_bytes(), ".npy")
        remote_out = board.path("out", f"predict-{sha256_bytes(tflite)[:16]}.npy")
        with board.agent() as agent:
            agent.call(
                "predict",
                {"model": remote_model, "inputs": remote_data, "output": remote_out, "threads": threads},
                timeout=600,
            )
        return np.load(io.BytesIO(board.transport.get(remote_out)), allow_pickle=False)


def tflite_metrics(tflite: bytes, data: Dataset) -> dict[str, float]:
    return metrics.classification(data.y_test, tflite_outputs(tflite, data.x_test))
