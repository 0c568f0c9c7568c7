"""The figures each task is judged by, computed with scikit-learn from the model's outputs.

classification: accuracy and macro precision / recall / F1; binary: accuracy, precision, recall, F1 at 0.5 and ROC
AUC; multilabel: subset accuracy, per-label accuracy, micro and macro precision / recall / F1 at 0.5; regression:
MAE, RMSE, R²; reconstruction: the mean squared reconstruction error and, with normal (0) / anomalous (1) labels,
the ROC AUC and pAUC (FPR ≤ 0.1) of the per-sample error, which is how MLPerf Tiny's anomaly-detection benchmark
(after the DCASE 2020 task 2 baseline) scores its autoencoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Figure:
    """How to name a metric and read its change: which way is better, and whether it is a fraction (0..1)."""

    key: str
    label: str
    higher_is_better: bool = True
    fraction: bool = True


FIGURES = {
    f.key: f
    for f in (
        Figure("accuracy", "accuracy"),
        Figure("precision_macro", "precision"),
        Figure("recall_macro", "recall"),
        Figure("f1_macro", "F1"),
        Figure("precision", "precision"),
        Figure("recall", "recall"),
        Figure("f1", "F1"),
        Figure("precision_micro", "precision (micro)"),
        Figure("recall_micro", "recall (micro)"),
        Figure("f1_micro", "F1 (micro)"),
        Figure("label_accuracy", "label accuracy"),
        Figure("roc_auc", "ROC AUC"),
        Figure("pauc", "pAUC (FPR ≤ 0.1)"),
        Figure("r2", "R²"),
        Figure("mae", "MAE", higher_is_better=False, fraction=False),
        Figure("rmse", "RMSE", higher_is_better=False, fraction=False),
        Figure("mse", "reconstruction MSE", higher_is_better=False, fraction=False),
        Figure("mse_normal", "MSE (normal)", higher_is_better=False, fraction=False),
        Figure("mse_anomalous", "MSE (anomalous)", higher_is_better=False, fraction=False),
    )
}

THRESHOLD = 0.5  # on probabilities, for binary and multilabel outputs


def figure(key: str) -> Figure:
    """The figure for a metrics key; ``output/key`` for multi-output models; a user's metric reads as raw numbers."""
    output, _, base = key.rpartition("/")
    known = FIGURES.get(base)
    if known is None:
        return Figure(key, key, higher_is_better=True, fraction=False)
    return Figure(key, f"{output} {known.label}" if output else known.label, known.higher_is_better, known.fraction)


def change(before: float, after: float, fig: Figure) -> tuple[float, str]:
    """How much better (positive) or worse (negative) ``after`` is than ``before``, and the unit of that number.

    Fractions change in percentage points; error figures (MAE, MSE, ...) in percent of ``before``, since their
    scale is the data's; anything else (a user's metric) in its own units.
    """
    sign = 1.0 if fig.higher_is_better else -1.0
    if fig.fraction:
        return sign * 100.0 * (after - before), "pp"
    if not fig.higher_is_better and before > 0:
        return 100.0 * (before - after) / before, "%"
    return sign * (after - before), ""


def classification(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """From outputs (logits or probabilities, class axis last) or predicted labels; labels may be probability rows."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    outputs = np.asarray(outputs)
    y_true = np.asarray(y_true)
    if y_true.ndim > 1 and y_true.shape[-1] > 1 and y_true.shape == outputs.shape:
        y_true = y_true.argmax(axis=-1)  # one-hot or soft labels
    predicted = outputs.argmax(axis=-1) if outputs.ndim > 1 else outputs.astype(np.int64)
    y_true = y_true.reshape(-1).astype(np.int64)
    predicted = predicted.reshape(-1)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, predicted, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "samples": len(y_true),
    }


def _probabilities(outputs: np.ndarray, from_logits: bool) -> np.ndarray:
    outputs = np.asarray(outputs, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-outputs)) if from_logits else outputs


def binary(y_true: np.ndarray, outputs: np.ndarray, *, from_logits: bool = False) -> dict[str, float]:
    """One sigmoid unit (or one logit) against 0/1 labels; the positive class is 1."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    scores = _probabilities(outputs, from_logits).reshape(-1)
    predicted = (scores >= THRESHOLD).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(y, predicted, average="binary", zero_division=0)
    result = {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    if len(np.unique(y)) == 2:  # AUC needs both classes in the split
        result["roc_auc"] = float(roc_auc_score(y, scores))
    return {**result, "samples": len(y)}


def multilabel(y_true: np.ndarray, outputs: np.ndarray, *, from_logits: bool = False) -> dict[str, float]:
    """0/1 rows (several labels per sample) against one sigmoid unit (or logit) per label."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y = np.asarray(y_true).reshape(len(y_true), -1).astype(np.int64)
    predicted = (_probabilities(outputs, from_logits).reshape(y.shape) >= THRESHOLD).astype(np.int64)
    result = {
        "accuracy": float(accuracy_score(y, predicted)),  # exact match of every label (subset accuracy)
        "label_accuracy": float(np.mean(y == predicted)),
    }
    for average in ("micro", "macro"):
        precision, recall, f1, _ = precision_recall_fscore_support(y, predicted, average=average, zero_division=0)
        result[f"precision_{average}"] = float(precision)
        result[f"recall_{average}"] = float(recall)
        result[f"f1_{average}"] = float(f1)
    return {**result, "samples": len(y)}


def regression(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """Float targets; several target values per sample are averaged uniformly (scikit-learn's default)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    predicted = np.asarray(outputs, dtype=np.float64).reshape(y.shape)
    return {
        "mae": float(mean_absolute_error(y, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "r2": float(r2_score(y, predicted)),
        "samples": len(y),
    }


def reconstruction_errors(x: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """The anomaly score of each sample: the mean squared error over all of its values."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.mean((x - np.asarray(outputs, dtype=np.float64).reshape(x.shape)) ** 2, axis=1)


def reconstruction(x: np.ndarray, outputs: np.ndarray, anomaly: np.ndarray | None = None) -> dict[str, float]:
    """Mean reconstruction error; with 0/1 anomaly labels, its ROC AUC and pAUC as anomaly scores."""
    from sklearn.metrics import roc_auc_score

    errors = reconstruction_errors(x, outputs)
    result = {"mse": float(errors.mean())}
    if anomaly is not None:
        labels = np.asarray(anomaly).reshape(-1).astype(np.int64)
        for value, name in ((0, "mse_normal"), (1, "mse_anomalous")):
            if np.any(labels == value):
                result[name] = float(errors[labels == value].mean())
        if len(np.unique(labels)) == 2:
            result["roc_auc"] = float(roc_auc_score(labels, errors))
            result["pauc"] = float(roc_auc_score(labels, errors, max_fpr=0.1))
    return {**result, "samples": len(errors)}


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """after − before for each shared metric (for a higher-is-better figure, negative means worse)."""
    return {
        k: after[k] - before[k]
        for k in after
        if k in before and k != "samples" and isinstance(after[k], (int, float)) and isinstance(before[k], (int, float))
    }
