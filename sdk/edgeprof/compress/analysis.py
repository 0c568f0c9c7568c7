"""Per-layer facts about a Keras model's weights: what each step really achieved."""

from __future__ import annotations

from typing import Any

import numpy as np


def kernel_of(layer: Any) -> np.ndarray | None:
    """The layer's main weight (kernel, depthwise or embedding matrix), the one TF-MOT prunes and clusters."""
    for attr in ("kernel", "depthwise_kernel", "embeddings"):
        weight = getattr(layer, attr, None)
        if weight is not None:
            return np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
    return None


def layer_stats(model: Any) -> list[dict[str, Any]]:
    rows = []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = kernel_of(layer)
        row: dict[str, Any] = {
            "name": layer.name,
            "type": type(layer).__name__,
            "params": int(sum(w.size for w in weights)),
            "dtype": str(weights[0].dtype),
        }
        if kernel is not None:
            row.update(
                kernel_params=int(kernel.size),
                sparsity=float(np.mean(kernel == 0)),
                unique_values=int(np.unique(kernel).size),
            )
        rows.append(row)
    return rows


def overall_sparsity(rows: list[dict[str, Any]]) -> float:
    """Zeros among all kernel weights (the weights pruning acts on)."""
    total = sum(r.get("kernel_params", 0) for r in rows)
    zeros = sum(r.get("kernel_params", 0) * r.get("sparsity", 0.0) for r in rows)
    return float(zeros / total) if total else 0.0
