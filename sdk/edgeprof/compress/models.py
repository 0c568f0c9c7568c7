"""Loading Keras models for TF-MOT, and copying them so the user's model is never changed.

TF-MOT wraps the layer objects of the model it is given: after ``cluster_weights`` the original model had lost
weights. Every step therefore works on :func:`clone`, a structural copy with copied weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .. import _tf
from ..errors import ModelError
from . import keras3


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path)).encode() if path.is_dir() else b"")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def check_supported(model: Any) -> None:
    """TF-MOT handles Sequential and Functional models only."""
    keras = _tf.keras()
    if isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False):
        return
    raise ModelError(
        f"{type(model).__name__} is a subclassed Keras model, which TF-MOT cannot compress",
        "rebuild it as a Sequential or Functional model",
    )


def load_model(source: Any) -> tuple[Any, dict[str, Any]]:
    """A tf_keras model and a description of where it came from (path and SHA-256)."""
    keras = _tf.keras()
    if isinstance(source, keras.Model):
        check_supported(source)
        digest = hashlib.sha256()
        for weight in source.get_weights():
            digest.update(weight.tobytes())
        return source, {"path": None, "sha256": digest.hexdigest(), "kind": "in-memory"}
    if not isinstance(source, (str, Path)) and type(source).__module__.startswith("keras"):
        raise ModelError(
            f"{type(source).__name__} is a Keras 3 model; TF-MOT needs tf_keras (Keras 2)",
            "save it as .keras and pass the file, or build it with tf_keras",
        )
    path = Path(source)
    if not path.exists():
        raise ModelError(f"model {path} does not exist", "check the path")
    if path.suffix == ".tflite":
        raise ModelError(
            f"{path} is already a TFLite model; compress needs the Keras model it came from",
            "pass the .keras, .h5 or SavedModel of the model",
        )
    if keras3.is_keras3_archive(path):
        model = keras3.load(path)
        check_supported(model)
        return model, {"path": str(path), "sha256": file_sha256(path), "kind": "keras3", **keras3.describe(path)}
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"cannot load {path} as a Keras model ({first[:200]})", "pass a Keras .keras, .h5 or SavedModel directory"
        ) from None
    check_supported(model)
    kind = "savedmodel" if path.is_dir() else path.suffix.lstrip(".")
    return model, {"path": str(path), "sha256": file_sha256(path), "kind": kind}


def clone(model: Any) -> Any:
    """A new model with the same architecture and copies of the weights."""
    keras = _tf.keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
