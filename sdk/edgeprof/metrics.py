"""Classification quality: accuracy and macro precision / recall / F1, the figures the manifest reports."""

from __future__ import annotations

import numpy as np


def classification(y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """Metrics from model outputs (logits or probabilities, shape (N, classes)) or predicted labels (N,)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    outputs = np.asarray(outputs)
    predicted = outputs.argmax(axis=-1) if outputs.ndim > 1 else outputs.astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, predicted, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "samples": len(y_true),
    }


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """after − before for each shared metric (negative means the compressed model is worse)."""
    return {k: after[k] - before[k] for k in after if k in before and k != "samples"}
