"""The ``pca`` step: an input projection learned from the training data (principal component analysis).

The inputs (as the model's first Dense layer sees them, flattened) are centred and projected on their k leading
principal components V (k × d): x ≈ μ + (x − μ)·Vᵀ·V. When the input reaches a Dense layer through weightless layers
only (Flatten, Dropout, Reshape...), the projection is folded into it: that Dense (d × u kernel W, bias b) becomes a
projection Dense(k, no bias, kernel Vᵀ) followed by the same Dense with kernel V·W (k × u) and bias
b + μ·(I − Vᵀ·V)·W, the centring folded in. The model still takes the original input (the exported TFLite too),
holds k·(d + u) weights instead of d·u, and is saved self-contained. A fold that would not save weights is refused,
naming the largest k that does.

Otherwise (the first weighted layer is a convolution, say) nothing can absorb the projection: it is placed in front
of the model (projection, then reconstruction back to the input's shape), which adds 2·d·k + d parameters and saves
nothing; the effect says so. k is ``components``, or the fewest components whose explained variance reaches
``energy``; the PCA is fitted on up to 20,000 training samples. Fine-tuning then trains every layer, the projection
included; the explained variance reported is the fitted PCA's, on the training data and on the test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError, RecipeError
from . import cost, graph, training
from .recipe import Step, register_step


@register_step
@dataclass
class PCAStep(Step):
    """``components`` fixes k; otherwise the fewest components that keep ``energy`` of the input's variance."""

    kind: ClassVar[str] = "pca"
    components: int | None = None
    energy: float = 0.95

    def describe(self) -> str:
        return f"pca k={self.components}" if self.components else f"pca {self.energy:.0%} variance"

    def validate(self, where: str) -> None:
        if self.components is not None and self.components < 1:
            raise RecipeError(f"{where}: components must be ≥ 1", "use e.g. components = 16, or energy = 0.95")
        if not 0 < self.energy <= 1:
            raise RecipeError(f"{where}: energy must be in (0, 1]", "use e.g. energy = 0.95")
        if self.layers is not None or self.exclude:
            raise RecipeError(
                f"{where}: a pca step acts on the model's input; layers/exclude do not apply", "drop them"
            )


@dataclass
class Fitted:
    mean: np.ndarray  # (d,)
    basis: np.ndarray  # (r, d): principal directions, leading first, orthonormal rows
    variance: np.ndarray  # (r,): variance along each direction
    total: float  # total variance of the data

    def explained(self, k: int) -> float:
        return float(np.sum(self.variance[:k]) / self.total) if self.total > 0 else 1.0

    def explained_on(self, x: np.ndarray, k: int) -> float:
        """Explained variance of other data (the test split), about the training mean."""
        centred = x - self.mean
        residual = centred - (centred @ self.basis[:k].T) @ self.basis[:k]
        total = float(np.sum(centred**2))
        return 1.0 - float(np.sum(residual**2)) / total if total > 0 else 1.0


MAX_SAMPLES = 20_000  # the PCA is fitted on at most this many training samples (a seeded random subset)


def fit(x: np.ndarray, seed: int = 0) -> Fitted:
    """PCA of the rows of ``x``: the eigenvectors of the covariance, or the SVD when there are fewer rows."""
    if len(x) > MAX_SAMPLES:
        x = x[np.random.default_rng(seed).choice(len(x), MAX_SAMPLES, replace=False)]
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    mean = x.mean(axis=0)
    centred = x - mean
    if n >= d:
        values, vectors = np.linalg.eigh(centred.T @ centred / max(n - 1, 1))
        order = np.argsort(values)[::-1]
        variance, basis = np.clip(values[order], 0, None), vectors[:, order].T
    else:
        _, singular, basis = np.linalg.svd(centred, full_matrices=False)
        variance = singular**2 / max(n - 1, 1)
    return Fitted(mean, basis, variance, float(np.sum(variance)))


def choose_components(fitted: Fitted, step: PCAStep) -> int:
    if step.components is not None:
        return int(min(step.components, fitted.basis.shape[0]))
    ratio = np.cumsum(fitted.variance) / fitted.total if fitted.total > 0 else np.ones(1)
    return int(min(np.searchsorted(ratio, step.energy - 1e-12) + 1, fitted.basis.shape[0]))


def _input_name(model: Any) -> str:
    if len(model.inputs) != 1:
        raise CompressionError(
            f"a pca step needs a model with one input; this one has {len(model.inputs)}", "remove the pca step"
        )
    return next(n.name for n in graph.nodes(model).values() if n.class_name == "InputLayer")


def _fold_target(model: Any, start: str) -> tuple[str, Any | None, str]:
    """(the layer feeding it, the first Dense on flat inputs or None, why not)."""
    keras = _tf.keras()
    reader = graph.next_weighted(model, start)
    if reader.layer is None:
        return start, None, reader.why
    layer = reader.layer
    if type(layer) is keras.layers.Dense and len(layer.input_shape) == 2:
        return reader.before, layer, ""
    shape = "x".join(str(d) for d in layer.input_shape[1:])
    return start, None, f"the first weighted layer is {type(layer).__name__} {layer.name!r} (input {shape})"


def apply(model: Any, step: PCAStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    before_figures = cost.snapshot(model, data)
    start = _input_name(model)
    before, target, why = _fold_target(model, start)
    if target is not None:
        x_train = graph.outputs_of(model, before, data.x_train)
        x_test = graph.outputs_of(model, before, data.x_test)
    else:
        x_train = data.x_train.reshape(len(data.x_train), -1).astype(np.float32)
        x_test = data.x_test.reshape(len(data.x_test), -1).astype(np.float32)
    d = x_train.shape[1]
    fitted = fit(x_train, seed)
    k = choose_components(fitted, step)
    basis, mean = fitted.basis[:k], fitted.mean  # V (k × d), μ
    centring = mean - (mean @ basis.T) @ basis  # μ·(I − VᵀV): what the projection loses of the mean
    name = graph.unique_name(model, f"{target.name}_pca" if target is not None else "pca_projection")
    if target is not None:
        kernel, *bias = target.get_weights()
        units = kernel.shape[1]
        if k * (d + units) >= d * units:
            most = (d * units - 1) // (d + units)
            raise CompressionError(
                f"pca: {k} components would not save weights in {target.name!r} ({d}×{units} = {d * units:,} "
                f"weights → {d}×{k} + {k}×{units} = {k * (d + units):,})",
                f"keep at most {most} components (components = {most}) or lower energy"
                if most >= 1
                else "the first Dense layer is too small to gain from a projection; drop the pca step",
            )
        new_bias = (bias[0] if bias else np.zeros(units)) + centring @ kernel
        rebuilt = graph.insert_after(
            model,
            before,
            [graph.dense(name, k, use_bias=False)],
            {name: [basis.T.astype(np.float32)], target.name: [(basis @ kernel).astype(np.float32), new_bias]},
            changes={target.name: {"use_bias": True}},
        )
    else:
        shape = tuple(int(s) for s in model.input_shape[1:])
        entries = [graph.dense(name, k, use_bias=False), graph.dense(name + "_reconstruction", d)]
        if len(shape) > 1:
            entries = [graph.flatten(name + "_flatten"), *entries, graph.reshape(name + "_reshape", shape)]
        rebuilt = graph.insert_after(
            model,
            start,
            entries,
            {
                name: [basis.T.astype(np.float32)],
                name + "_reconstruction": [basis.astype(np.float32), centring.astype(np.float32)],
            },
        )
    if step.training.epochs:  # Keras refuses fit(epochs=0)
        training.compile_for(rebuilt, step.training)
        training.fit(rebuilt, data, step.training, seed=seed)
    after_figures = cost.snapshot(rebuilt, data)
    explained, explained_test = fitted.explained(k), fitted.explained_on(x_test, k)
    saves = after_figures["params"] < before_figures["params"]
    variance = f"{k} of {d} components keep {explained:.1%} of the variance ({explained_test:.1%} on test)"
    if target is not None:
        text = f"{variance}, folded into {target.name!r}: {cost.change_text(before_figures, after_figures)}"
    else:
        text = (
            f"no saving: {why}, which cannot absorb the projection, so it sits in front of the model "
            f"(+{after_figures['params'] - before_figures['params']:,} params); {variance}; "
            + cost.change_text(before_figures, after_figures)
        )
    return rebuilt, {
        "placement": "folded" if target is not None else "front",
        "layer": target.name if target is not None else None,
        "projection_layer": name,
        "input_features": int(d),
        "components": int(k),
        "explained_variance": explained,
        "explained_variance_test": explained_test,
        "saves_parameters": bool(saves),
        "params_before": before_figures["params"],
        "params_after": after_figures["params"],
        "macs_before": before_figures["macs"],
        "macs_after": after_figures["macs"],
        "metrics_before": before_figures["metrics"],
        "metrics_after": after_figures["metrics"],
        "text": text,
    }
