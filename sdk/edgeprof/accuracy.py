"""Accuracy on the board: the same TFLite file's predictions from the board's runtime, against the host's.

A model that is fast on the board is no use if the board's runtime computes something else (an older kernel, a
delegate's rounding, a different XNNPACK build). ``edgeprof profile model.tflite --eval data.npz`` has the board's
agent predict every evaluation sample with the interpreter settings that were timed, runs the same file through the
host's own agent, and reports both figures, their difference and how often the two agree on the predicted class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import data_checks, metrics
from .data import read_npz
from .errors import DataError
from .modelfile import sha256_bytes
from .predict import predict, predict_local
from .tasks import OutputTask


@dataclass(frozen=True)
class EvalSet:
    """Evaluation samples and their class labels (integers, or one-hot rows turned into integers)."""

    x: np.ndarray
    y: np.ndarray
    name: str
    sha256: str


def load_eval(path: str | Path, model: bytes | None = None) -> EvalSet:
    """``x_test, y_test`` (or ``x, y``) from an .npz, checked before anything is sent to a board.

    With the model's bytes, class labels are also checked against its output (0..K-1, one-hot rows K wide).
    """
    path = Path(path)
    arrays = read_npz(path, "--eval")
    for xk, yk in (("x_test", "y_test"), ("x", "y")):
        if xk in arrays and yk in arrays:
            x, y = arrays[xk], arrays[yk]
            break
    else:
        raise DataError(
            f"{path} holds {sorted(arrays)} but --eval needs x_test and y_test (or x and y)",
            "rename the arrays when saving the .npz",
        )
    data_checks.check_counts(path.name, x, y, "test" if xk == "x_test" else "")

    def locate(array: str) -> data_checks.Locate:
        return lambda i: f"{array}[{i}]"

    data_checks.check_x(x, xk, locate(xk))
    data_checks.check_y(y, yk, locate(yk))
    classes = _classes(model) if model is not None else None
    if classes is not None:
        output = OutputTask("output", "classification", (classes,), "unknown", False, False, "--eval")
        y = data_checks.check_classification(y, yk, locate(yk), output)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataError(
            f"{path}: {len(x)} samples but labels of shape {list(y.shape)}",
            "give one integer class label (or one-hot row) per sample",
        )
    if classes is None and y.dtype.kind == "f" and not np.all(y == np.round(y)):
        bad = int(np.flatnonzero(y != np.round(y))[0])
        raise DataError(f"{yk}[{bad}] = {y[bad]!r} is not a whole number", "give integer class labels")
    return EvalSet(x=np.asarray(x, dtype=np.float32), y=y.astype(np.int64), name=path.name, sha256=_sha256(path))


def _sha256(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def _classes(model: bytes) -> int | None:
    """K for a model with one output of shape (1, K), K ≥ 2: a classifier the labels can be checked against."""
    from .tflite import parse

    try:
        graph = parse(model).main
    except Exception:  # noqa: BLE001 - the profile itself reports an unreadable model
        return None
    if len(graph.outputs) != 1:
        return None
    shape = graph.tensors[graph.outputs[0]].shape
    return int(shape[-1]) if len(shape) == 2 and shape[-1] >= 2 else None


def predict_on_board(board: Any, agent: Any, remote_model: str, eval_set: EvalSet, options: Any) -> tuple:
    """The board's outputs for every sample, with the profile's runtime, threads and delegate."""
    return predict(board, agent, remote_model, eval_set.x, runtime=options.runtime, threads=options.threads,
                   delegate=options.delegate, delegate_options=options.delegate_options)  # fmt: skip


def compare(eval_set: EvalSet, board_outputs: np.ndarray, board_answer: dict, host_outputs: np.ndarray) -> dict:
    """Board and host figures, their difference, and the share of samples where both predicted the same class."""
    for label, outputs in (("board", board_outputs), ("host", host_outputs)):
        if len(outputs) != len(eval_set.y):
            raise DataError(
                f"the {label} returned {len(outputs)} predictions for {len(eval_set.y)} samples",
                "check that the model has one output per sample",
            )
    board = metrics.classification(eval_set.y, board_outputs)
    host = metrics.classification(eval_set.y, host_outputs)

    def classes(outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=-1) if outputs.ndim > 1 else outputs.astype(np.int64)

    return {
        "eval_data": eval_set.name,
        "eval_sha256": eval_set.sha256,
        "samples": len(eval_set.y),
        "board": board,
        "board_runtime": board_answer.get("runtime"),
        "board_delegation": board_answer.get("delegation"),
        "host": host,
        "host_runtime": "the host's local agent (first runtime found, default delegate)",
        "difference": metrics.difference(board, host),
        "agreement": float(np.mean(classes(board_outputs) == classes(host_outputs))),
    }


def host_outputs(model_bytes: bytes, eval_set: EvalSet) -> np.ndarray:
    return predict_local(model_bytes, eval_set.x)
