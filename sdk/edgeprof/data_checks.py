"""Data checked before anything trains: one line per defect, naming the array, the first bad sample and the fix.

Without these checks a label the model cannot output ends in a 100-line TensorFlow traceback (or, on the test split,
in an accuracy against labels the model can never produce), NaN in the training data shows up as "pruning reached
0.0 %", float labels are silently truncated and string labels raise inside NumPy. The checks run in two rounds:
:func:`check_arrays` needs only the data (dtypes, counts, NaN/Inf), :func:`check_targets` the task of each model
output (label range, integer-ness, one-hot width, 0/1 values, target shapes). ``compress()`` runs both before any
training; ``profile --eval`` runs those that apply to an evaluation file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    from .data import Dataset
    from .tasks import OutputTask

SPLITS = ("train", "test")
Locate = Callable[[int], str]  # sample index in the split -> how the user finds it in their own file


def first(mask: np.ndarray) -> int | None:
    """Index of the first sample whose row holds a True (None when none does)."""
    rows = np.asarray(mask).reshape(len(mask), -1).any(axis=1) if len(mask) else np.zeros(0, bool)
    hits = np.flatnonzero(rows)
    return int(hits[0]) if len(hits) else None


def _value(array: np.ndarray, index: int) -> str:
    value = array[index]
    if np.ndim(value) == 0:
        return repr(value.item() if hasattr(value, "item") else value)
    return f"a row of shape {list(np.shape(value))}"


def check_counts(name: str, x: Any, y: Any, split: str = "") -> None:
    """x and each target array hold the same number of samples, and the split is not empty."""
    xs, ys = (f"x_{split}", f"y_{split}") if split else ("x", "y")
    if np.ndim(x) == 0:
        raise DataError(f"{name}: {xs} is a single value, not an array of samples", f"give {xs} one row a sample")
    n = len(x)
    if n == 0:
        where = f"the {split} split" if split else "the data"
        raise DataError(f"{name}: {where} is empty ({xs} has 0 samples)", "give samples in each split")
    for label, array in targets_of(y, ys):
        if np.ndim(array) == 0:
            raise DataError(f"{name}: {label} is a single value, not one per sample", "give one target per sample")
        if len(array) != n:
            raise DataError(f"{name}: {xs} has {n} samples but {label} has {len(array)}", "give one target per sample")


def targets_of(y: Any, label: str) -> list[tuple[str, np.ndarray]]:
    """(name as the user wrote it, array) for a target that is an array, a list or a dict of arrays (or None)."""
    if y is None:
        return []
    if isinstance(y, dict):
        return [(f"{label}_{key}", np.asarray(value)) for key, value in y.items()]
    if isinstance(y, (list, tuple)):
        return [(f"{label}[output {i}]", np.asarray(value)) for i, value in enumerate(y)]
    return [(label, np.asarray(y))]


def check_x(x: np.ndarray, label: str, locate: Locate) -> None:
    if x.dtype.kind in "OSUV":
        kind = "strings" if x.dtype.kind in "SU" else f"{x.dtype} objects"
        raise DataError(
            f"{label} holds {kind}, not numbers", f"save {label} as a numeric array (e.g. x.astype('float32'))"
        )
    if x.dtype.kind == "c":
        raise DataError(f"{label} holds complex numbers", "give real-valued inputs (e.g. magnitudes)")
    bad = first(~np.isfinite(x))
    if bad is not None:
        what = "NaN" if np.isnan(np.asarray(x[bad], dtype=np.float64)).any() else "Inf"
        raise DataError(
            f"{locate(bad)} holds {what} (the first non-finite sample of {label})",
            "drop or repair those samples: numpy.isfinite(x).all(axis=tuple(range(1, x.ndim))) marks the good ones",
        )


def check_y(y: np.ndarray, label: str, locate: Locate) -> None:
    if y.dtype.kind in "SU" or (y.dtype.kind == "O" and len(y) and isinstance(y.reshape(-1)[0], (str, bytes))):
        raise DataError(
            f"{label} holds strings ({locate(0)} = {_value(y, 0)}), not numbers",
            "map the class names to integers 0..K-1, e.g. names, y = numpy.unique(y, return_inverse=True)",
        )
    if y.dtype.kind in "OV":
        raise DataError(f"{label} has dtype {y.dtype}, not numbers", f"save {label} as a numeric array")
    if y.dtype.kind == "c":
        raise DataError(f"{label} holds complex numbers", "give real-valued targets")
    if y.dtype.kind == "f":
        bad = first(~np.isfinite(y))
        if bad is not None:
            raise DataError(
                f"{locate(bad)} = {_value(y, bad)} is not a finite number", f"drop or repair that sample of {label}"
            )


def check_arrays(data: Dataset) -> None:
    """dtypes, counts and finiteness of every split, before the model is even loaded."""
    for split in SPLITS:
        x = getattr(data, f"x_{split}")
        y = getattr(data, f"y_{split}")
        check_counts(data.name, x, y, split)
        check_x(np.asarray(x), f"x_{split}", lambda i, s=split: data.locate(s, i, "x"))
        for label, array in targets_of(y, f"y_{split}"):
            check_y(array, label, lambda i, s=split, lab=label: data.locate(s, i, lab))


def check_input_shape(input_shape: tuple[int | None, ...], data: Dataset) -> None:
    expected = tuple(input_shape)
    if len(expected) != len(data.input_shape) or any(
        e is not None and e != d for e, d in zip(expected, data.input_shape, strict=True)
    ):
        raise DataError(
            f"the model takes inputs of shape {list(expected)} but the data's samples have shape "
            f"{list(data.input_shape)}",
            "pass data that matches the model's input",
        )


def _integer_labels(y: np.ndarray, label: str, locate: Locate, output: OutputTask) -> np.ndarray:
    """Labels as int64, refusing fractions (they used to be truncated silently)."""
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = first(y != np.round(y))
        if bad is not None:
            raise DataError(
                f"{locate(bad)} = {_value(y, bad)} is not a whole number, but output {output.name!r} is a "
                f"{output.task} output",
                "give integer class labels (or state --task regression if the targets are measurements)",
            )
    return y.astype(np.int64)


def _in_range(y: np.ndarray, label: str, locate: Locate, output: OutputTask, high: int, what: str, fix: str) -> None:
    bad = first((y < 0) | (y >= high))
    if bad is None:
        return
    value = y.reshape(len(y), -1)[bad]
    shown = value[(value < 0) | (value >= high)][0]
    problem = "negative" if shown < 0 else f"outside {what}"
    raise DataError(f"{locate(bad)} = {int(shown)} is {problem} of output {output.name!r}", fix)


def check_classification(y: np.ndarray, label: str, locate: Locate, output: OutputTask) -> np.ndarray:
    """Class indices (0..K-1), or one-hot / probability rows K wide; returns labels ready for the loss."""
    classes = output.shape[-1]
    if y.ndim >= 2 and y.shape[-1] > 1 and y.shape[1:] != tuple(output.shape[:-1]):
        if y.shape[-1] != classes:
            raise DataError(
                f"{label} has rows {y.shape[-1]} wide (one-hot?) but output {output.name!r} has {classes} classes",
                f"give {classes}-wide one-hot rows, or integer labels 0..{classes - 1}",
            )
        values_ok = (y >= 0) & (y <= 1)
        bad = first(~values_ok)
        if bad is not None:
            raise DataError(
                f"{locate(bad)} holds values outside 0..1, so it is neither one-hot nor probabilities",
                f"give integer labels 0..{classes - 1} or one-hot rows",
            )
        sums = y.reshape(-1, classes).sum(axis=1).reshape(len(y), -1)
        bad = first(np.abs(sums - 1.0) > 1e-3)
        if bad is not None:
            raise DataError(
                f"{locate(bad)} marks {sums[bad].max():g} classes, but output {output.name!r} gives one class a "
                "sample (softmax)",
                "for several labels a sample use one sigmoid unit per label and --task multilabel",
            )
        if np.all((y == 0) | (y == 1)):
            return y.argmax(axis=-1).astype(np.int64)  # one-hot: the same information as class indices
        return y.astype(np.float32)  # soft labels: categorical cross-entropy
    if y.ndim >= 2 and y.shape[1:] not in (tuple(output.shape[:-1]), (1,)):
        raise DataError(
            f"{label} has samples of shape {list(y.shape[1:])} but output {output.name!r} gives one class "
            f"per {list(output.shape[:-1]) or 'sample'}",
            "give one integer label per sample",
        )
    labels = _integer_labels(y, label, locate, output)
    if y.ndim >= 2 and y.shape[1:] == (1,) and output.shape[:-1] != (1,):
        labels = labels.reshape(len(labels))
    _in_range(
        labels,
        label,
        locate,
        output,
        classes,
        f"the {classes} classes (0..{classes - 1})",
        f"give labels 0..{classes - 1}, or a model whose output has one unit per class",
    )
    return labels


def check_binary(y: np.ndarray, label: str, locate: Locate, output: OutputTask) -> np.ndarray:
    """0/1 labels, one a sample (binary) or one per unit (multilabel); returns float32 shaped like the output."""
    units = int(np.prod(output.shape))
    size = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    if size != units:
        raise DataError(
            f"{label} has {size} label(s) a sample but output {output.name!r} has {units} unit(s)",
            "give one 0/1 label a sample for binary, one 0/1 column per unit for multilabel",
        )
    labels = _integer_labels(y, label, locate, output)
    bad = first((labels != 0) & (labels != 1))
    if bad is not None:
        shown = labels.reshape(len(labels), -1)[bad]
        raise DataError(
            f"{locate(bad)} = {int(shown[(shown != 0) & (shown != 1)][0])} is not 0 or 1, as the {output.task} "
            f"output {output.name!r} needs",
            "give 0/1 labels (for several classes, one a sample, use a softmax output and --task classification)",
        )
    return labels.reshape((len(labels), *output.shape)).astype(np.float32)


def check_regression(y: np.ndarray, label: str, locate: Locate, output: OutputTask) -> np.ndarray:
    units = int(np.prod(output.shape))
    size = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    if size != units:
        raise DataError(
            f"{label} has {size} value(s) a sample but output {output.name!r} gives {units} "
            f"(shape {list(output.shape)})",
            "give targets shaped like the model's output",
        )
    if y.dtype.kind == "b":
        y = y.astype(np.float32)
    return np.asarray(y, dtype=np.float32).reshape((len(y), *output.shape))


def check_anomaly_labels(y: np.ndarray, label: str, locate: Locate) -> np.ndarray:
    """0 (normal) / 1 (anomalous), one a sample, for the ROC AUC of a reconstruction model."""
    if y.ndim > 1 and int(np.prod(y.shape[1:])) != 1:
        raise DataError(
            f"{label} has samples of shape {list(y.shape[1:])}: for a reconstruction model it holds anomaly labels",
            "give one 0 (normal) / 1 (anomalous) label a sample, or leave it out",
        )
    flat = y.reshape(len(y))
    bad = first(~np.isin(flat, (0, 1)))
    if bad is not None:
        raise DataError(
            f"{locate(bad)} = {_value(flat, bad)} is not an anomaly label (0 normal, 1 anomalous)",
            "give 0/1 anomaly labels, or leave them out",
        )
    return flat.astype(np.int64)
