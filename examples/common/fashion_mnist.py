"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package: 60,000 + 10,000 real 28x28 grey images.

The package installs Zalando's original idx files under ``/usr/share/datasets/fashion-mnist/``; the examples'
``run.sh`` installs it as root. Nothing is downloaded here.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(root: Path = ROOT) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train (60000, 28, 28), y_train, x_test (10000, 28, 28), y_test`` as uint8 images and int64 labels."""
    if not (root / "train-images-idx3-ubyte.gz").exists():
        raise FileNotFoundError(
            f"Fashion-MNIST is not in {root}: apt-get install dataset-fashion-mnist (run.sh does it as root)"
        )
    return (
        _idx(root / "train-images-idx3-ubyte.gz"),
        _idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64),
        _idx(root / "t10k-images-idx3-ubyte.gz"),
        _idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    )


def balanced(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` samples of every class, in a seeded random order."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(picks))
