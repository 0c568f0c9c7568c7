"""A TFLite file as edgeprof sees it: checked, hashed and sized, before anything is sent anywhere."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"
EXPORT_HINT = "export one with 'edgeprof compress' or tf.lite.TFLiteConverter"


def gzip_size(data: bytes) -> int:
    """Size after ``gzip -9``: the figure that shows what pruning and clustering save."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelFile:
    path: str
    name: str
    sha256: str
    size_bytes: int
    gzip_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def open_tflite(path: str | Path) -> tuple[ModelFile, bytes]:
    """Check that ``path`` is a readable TFLite model; return its description and bytes."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist", "check the path")
    if not path.is_file():
        raise ModelError(f"{path} is not a file", "pass a .tflite file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        kind = "an empty file" if not data else "not a TFLite model (no 'TFL3' identifier)"
        if data[:4] == b"\x89HDF":
            kind = "a Keras .h5 model, not a TFLite model"
        elif data[:2] == b"PK":
            kind = "a zip archive (a Keras .keras model?), not a TFLite model"
        raise ModelError(f"{path} is {kind}", EXPORT_HINT)
    from .tflite import parse

    parse(data, name=str(path))  # walks every table a runtime reads first; a damaged file fails here
    return ModelFile(str(path), path.name, sha256_bytes(data), len(data), gzip_size(data)), data
