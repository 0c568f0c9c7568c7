"""Edgeprof's own zero masks: the zeros pruning made stay zeros through later fine-tuning where TF-MOT lets them move.

TF-MOT keeps zeros only in the kernels its schemes cover. Its prune-preserve QAT registry disables DepthwiseConv2D;
clustering with ``preserve_sparsity`` keeps the zeros of the kernels it clusters and trains the others freely; and
the PCQAT weight quantizer is one object shared by every layer, so the first kernel without zeros turns sparsity
preservation off for all the layers built after it (seen on the KWS MobileNetV2: 80 % asked, 67 % left in a layer).
Re-applying each kernel's mask after every training batch keeps them, whatever TF-MOT does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _tf
from .analysis import kernel_variables, unwrap

# A kernel with at least this fraction of exact zeros was pruned (trained float kernels have next to none).
PRUNED = 0.05


def zero_masks(model: Any, *, take: Callable[[Any], bool] = lambda layer: True) -> list[tuple[str, Any, Any]]:
    """(layer name, kernel variable, mask of its non-zeros) for every pruned kernel of the layers ``take`` accepts."""
    tf = _tf.tensorflow()
    masks = []
    for outer in model.layers:
        if not take(outer):
            continue
        for variable in kernel_variables(outer).values():
            values = variable.numpy()
            if values.size and np.mean(values == 0) >= PRUNED:
                masks.append((unwrap(outer).name, variable, tf.constant(values != 0, dtype=variable.dtype)))
    return masks


def keep_zeros(masks: list[tuple[str, Any, Any]]) -> Any:
    """A Keras callback that puts the masks back after every training batch."""

    class KeepZeros(_tf.keras().callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            for _, variable, mask in masks:
                variable.assign(variable * mask)

    return KeepZeros()


def names(masks: list[tuple[str, Any, Any]]) -> list[str]:
    return list(dict.fromkeys(name for name, _, _ in masks))
