"""The ``l1`` step: L1 sparsity regularisation during fine-tuning, then thresholding small weights to zero.

An alternative to TF-MOT's magnitude pruning that many papers start from: the L1 penalty pushes unimportant weights
towards zero while the network adapts, and a threshold then makes them exact zeros (which gzip, and sparse
kernels, can use). The sparsity reached depends on the model and the strength; the step measures and reports it,
next to the sparsity the same threshold gives without the L1 fine-tuning, so its effect is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError, RecipeError
from . import analysis, select, training
from .recipe import Step, register_step


@register_step
@dataclass
class L1Step(Step):
    """``strength``: the L1 coefficient on the selected kernels; ``threshold``: weights with
    ``|w| < threshold × max|w|`` of their kernel become zero after fine-tuning."""

    kind: ClassVar[str] = "l1"
    strength: float = 1e-4
    threshold: float = 0.05

    def describe(self) -> str:
        return f"l1 {self.strength:g}"

    def validate(self, where: str) -> None:
        if self.strength <= 0:
            raise RecipeError(f"{where}: strength must be > 0", "use e.g. strength = 1e-4")
        if not 0 < self.threshold < 1:
            raise RecipeError(f"{where}: threshold is a fraction of the largest weight, in (0, 1)", "use 0.05")


def _chosen(model: Any, step: L1Step) -> list[Any]:
    keras = _tf.keras()
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and select.selected(layer, step)
        and analysis.kernel_of(layer) is not None
    ]
    if not layers:
        raise CompressionError("the l1 step selects no layer with a kernel", "check the step's layers/exclude patterns")
    return layers


def _threshold(layer: Any, fraction: float) -> float:
    kernel = analysis.kernel_of(layer)
    return float(fraction * np.max(np.abs(kernel))) if kernel is not None and kernel.size else 0.0


def _kernel_attr(layer: Any) -> str:
    return next(a for a in ("kernel", "depthwise_kernel", "embeddings") if getattr(layer, a, None) is not None)


def apply(model: Any, step: L1Step, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    tf = _tf.tensorflow()
    layers = _chosen(model, step)
    names = [layer.name for layer in layers]
    # Control: what the same threshold would give without L1 fine-tuning.
    without = {}
    for layer in layers:
        kernel = analysis.kernel_of(layer)
        without[layer.name] = float(np.mean(np.abs(kernel) < _threshold(layer, step.threshold)))

    for layer in layers:
        variable = getattr(layer, _kernel_attr(layer))
        model.add_loss(lambda v=variable: step.strength * tf.reduce_sum(tf.abs(v)))
    training.compile_for(model, step.training)
    training.fit(model, data, step.training, seed=seed)

    per_layer = {}
    for layer in layers:
        attr = _kernel_attr(layer)
        variable = getattr(layer, attr)
        kernel = variable.numpy()
        cut = _threshold(layer, step.threshold)
        variable.assign(np.where(np.abs(kernel) < cut, 0.0, kernel).astype(kernel.dtype))
        per_layer[layer.name] = float(np.mean(variable.numpy() == 0))
    # The penalty is training-time only: hand on a model without it.
    clean = _tf.keras().models.clone_model(model)
    clean.set_weights(model.get_weights())
    rows = [r for r in analysis.layer_stats(clean) if r["name"] in names]
    reached = analysis.overall_sparsity(rows)
    total = sum(r["kernel_params"] for r in rows)
    control = sum(without[r["name"]] * r["kernel_params"] for r in rows) / total if total else 0.0
    return clean, {
        "strength": step.strength,
        "threshold": step.threshold,
        "reached_sparsity": reached,
        "sparsity_without_l1": control,
        "layers": per_layer,
        "text": f"sparsity {reached:.1%} after L1 + threshold (the threshold alone: {control:.1%})",
    }
