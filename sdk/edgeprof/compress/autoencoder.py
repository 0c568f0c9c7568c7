"""The ``autoencoder`` step: a bottleneck on an intermediate feature, trained to reconstruct it.

After ``layer`` (through weightless layers such as Flatten or Dropout) comes the first layer with weights, which must
be a Dense or a 1×1 Conv2D with d inputs and u outputs. An encoder (Dense, or 1×1 Conv2D on feature maps) maps the
feature to ``size`` channels (or ``ratio`` × d) and a linear decoder maps it back; the pair starts from the feature's
principal components (the optimum of a linear autoencoder) and is first trained on its own to reconstruct the
feature (mean squared error, the rest of the model frozen), then the decoder is folded into the next layer (its
kernel becomes W_dec·W, k × u) and the whole model is fine-tuned end to end.

It saves weights only when the next layer is large against the bottleneck: d·k + k + k·u < d·u, e.g. a big Dense
after a Flatten. Where it cannot (the next layer is too small, or is not a Dense/1×1 Conv2D, so the decoder would
stay and add weights), the step is refused before any training, naming the layer and what would work. The effect
reports the reconstruction error of the feature (mean squared error over the feature's variance, before fine-tuning),
and parameters, MACs and the metric before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError, RecipeError
from . import cost, graph, pca, training
from .recipe import Step, register_step

_MAX_ROWS = 50_000  # feature vectors the bottleneck is fitted and trained on (positions × samples)


@register_step
@dataclass
class AutoencoderStep(Step):
    """``layer``: the layer whose output gets the bottleneck; ``size`` (channels) or ``ratio`` (of the feature's);
    ``activation`` of the encoder; ``pretrain_epochs`` train the bottleneck alone before fine-tuning."""

    kind: ClassVar[str] = "autoencoder"
    layer: str = ""
    size: int | None = None
    ratio: float | None = None  # 0.25 when neither size nor ratio is given
    activation: str = "linear"
    pretrain_epochs: int = 5

    def describe(self) -> str:
        width = f"{self.size}" if self.size else f"{self.ratio or 0.25:.0%}"
        return f"autoencoder {width} after {self.layer}"

    def validate(self, where: str) -> None:
        if not self.layer:
            raise RecipeError(f"{where}: an autoencoder step needs a layer", 'set layer = "flatten" (a layer name)')
        if self.size is not None and self.ratio is not None:
            raise RecipeError(f"{where}: give size or ratio, not both", "keep one of them")
        if self.size is not None and self.size < 1:
            raise RecipeError(f"{where}: size must be ≥ 1", "use e.g. size = 16")
        if self.ratio is not None and not 0 < self.ratio < 1:
            raise RecipeError(f"{where}: ratio must be in (0, 1)", "use e.g. ratio = 0.25")
        if self.pretrain_epochs < 0:
            raise RecipeError(f"{where}: pretrain_epochs must be ≥ 0", "use e.g. pretrain_epochs = 5")
        if self.layers is not None or self.exclude:
            raise RecipeError(
                f"{where}: an autoencoder step acts on one layer; layers/exclude do not apply", 'use layer = "name"'
            )


def _absorbs(layer: Any) -> bool:
    """A layer a linear decoder folds into: its kernel acts on the last axis only."""
    keras = _tf.keras()
    if type(layer) is keras.layers.Dense:
        return True
    return (
        type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1) and getattr(layer, "groups", 1) == 1
    )


def _candidates(model: Any) -> list[str]:
    """Layers a bottleneck can follow (their output reaches a Dense or 1×1 Conv2D), largest next layer first."""
    found = []
    for name, node in graph.nodes(model).items():
        if node.class_name == "InputLayer" or not node.consumers:
            continue
        reader = graph.next_weighted(model, name)
        if reader.layer is not None and _absorbs(reader.layer) and reader.before == name:
            found.append((int(np.prod(reader.layer.kernel.shape)), name))
    return [name for _, name in sorted(found, reverse=True)]


def _pretrain(features: np.ndarray, test: np.ndarray, k: int, step: AutoencoderStep, seed: int) -> dict[str, Any]:
    """Encoder + decoder trained alone on the feature vectors; their weights and reconstruction errors."""
    keras = _tf.keras()
    keras.utils.set_random_seed(seed)
    d = features.shape[1]
    inputs = keras.Input((d,))
    code = keras.layers.Dense(k, activation=step.activation, name="encoder")(inputs)
    outputs = keras.layers.Dense(d, name="decoder")(code)
    pair = keras.Model(inputs, outputs)
    # Start from the principal components: the optimum of a linear autoencoder, a good start for any other.
    fitted = pca.fit(features)
    basis = fitted.basis[:k].astype(np.float32)  # (k, d)
    mean = fitted.mean.astype(np.float32)
    pair.get_layer("encoder").set_weights([basis.T, -(mean @ basis.T)])
    pair.get_layer("decoder").set_weights([basis, mean])
    pair.compile(optimizer=training.optimizer(step.training), loss="mse")
    if step.pretrain_epochs:
        pair.fit(
            features,
            features,
            epochs=step.pretrain_epochs,
            batch_size=step.training.batch_size,
            verbose=0,
            shuffle=True,
        )

    def relative(x: np.ndarray) -> tuple[float, float]:
        error = float(np.mean((pair.predict(x, batch_size=1024, verbose=0) - x) ** 2))
        spread = float(np.mean((x - mean) ** 2))
        return error, error / spread if spread > 0 else 0.0

    (mse, rel), (mse_test, rel_test) = relative(features), relative(test)
    return {
        "encoder": pair.get_layer("encoder").get_weights(),
        "decoder": pair.get_layer("decoder").get_weights(),
        "mse": mse,
        "relative": rel,
        "mse_test": mse_test,
        "relative_test": rel_test,
    }


def _feature_rows(model: Any, layer: str, x: np.ndarray, seed: int) -> np.ndarray:
    """The feature as vectors along its last axis (each position of a feature map is one), from enough samples
    for at most _MAX_ROWS vectors, so large feature maps never fill the memory."""
    shape = model.get_layer(layer).output_shape if graph.nodes(model)[layer].class_name != "InputLayer" else x.shape
    positions = int(np.prod([d or 1 for d in shape[1:-1]]))
    count = min(len(x), max(1, _MAX_ROWS // max(positions, 1)))
    picked = np.sort(np.random.default_rng(seed).choice(len(x), count, replace=False))
    features = graph.outputs_of(model, layer, x[picked])
    return features.reshape(-1, features.shape[-1])


def apply(model: Any, step: AutoencoderStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    keras = _tf.keras()
    nodes = graph.nodes(model)
    if step.layer not in nodes:
        raise CompressionError(
            f"autoencoder: the model has no layer {step.layer!r}",
            "pick one of: " + ", ".join(_candidates(model)[:8] or list(nodes)[:8]),
        )
    reader = graph.next_weighted(model, step.layer)
    suggestions = ", ".join(repr(n) for n in _candidates(model)[:4]) or "none in this model"
    if reader.layer is None or not _absorbs(reader.layer):
        why = reader.why or (
            f"after {step.layer!r} comes {type(reader.layer).__name__} {reader.layer.name!r}, "
            "which cannot absorb the decoder"
        )
        raise CompressionError(
            f"autoencoder after {step.layer!r} would add weights, not save them: {why}",
            f"choose a layer whose output goes to a Dense or 1×1 Conv2D (here: {suggestions})",
        )
    target = reader.layer
    kernel, *bias = target.get_weights()
    matrix = kernel.reshape(-1, kernel.shape[-1])  # (d, u)
    d, units = matrix.shape
    k = step.size if step.size is not None else max(1, round((step.ratio or 0.25) * d))
    after_weights = d * k + k + k * units
    if k >= d or after_weights >= d * units:
        most = (d * units - 1) // (d + units + 1)
        raise CompressionError(
            f"autoencoder: a bottleneck of {k} on the {d} features into {target.name!r} would not save weights "
            f"({d}×{units} = {d * units:,} → encoder and folded layer {d}×{k} + {k} + {k}×{units} = {after_weights:,})",
            f"use size ≤ {most} (ratio ≤ {most / d:.3f})"
            if most >= 1
            else f"{target.name!r} is too small to gain; choose a layer before a larger one (here: {suggestions})",
        )
    before_figures = cost.snapshot(model, data)
    features = _feature_rows(model, reader.before, data.x_train, seed)
    test_features = _feature_rows(model, reader.before, data.x_test, seed)
    fitted = _pretrain(features, test_features, k, step, seed)
    enc_kernel, enc_bias = fitted["encoder"]
    dec_kernel, dec_bias = fitted["decoder"]  # (k, d), (d,)
    merged = (dec_kernel @ matrix).reshape(*kernel.shape[:-2], k, units)
    merged_bias = (bias[0] if bias else np.zeros(units, np.float32)) + dec_bias @ matrix
    name = graph.unique_name(model, f"{target.name}_bottleneck")
    if type(target) is keras.layers.Dense:
        entry = graph.dense(name, k, activation=step.activation)
    else:
        entry = graph.conv1x1(name, k, activation=step.activation)
        enc_kernel = enc_kernel.reshape(1, 1, d, k)
    rebuilt = graph.insert_after(
        model,
        reader.before,
        [entry],
        {name: [enc_kernel, enc_bias], target.name: [merged.astype(np.float32), merged_bias.astype(np.float32)]},
        changes={target.name: {"use_bias": True}},
    )
    if step.training.epochs:  # Keras refuses fit(epochs=0)
        training.compile_for(rebuilt, step.training)
        training.fit(rebuilt, data, step.training, seed=seed)
    after_figures = cost.snapshot(rebuilt, data)
    feature = step.layer if reader.before == step.layer else f"{step.layer}→{reader.before}"
    return rebuilt, {
        "layer": step.layer,
        "feature_layer": reader.before,
        "folded_into": target.name,
        "encoder_layer": name,
        "features": int(d),
        "size": int(k),
        "reconstruction_mse": fitted["mse"],
        "reconstruction_error": fitted["relative"],
        "reconstruction_mse_test": fitted["mse_test"],
        "reconstruction_error_test": fitted["relative_test"],
        "params_before": before_figures["params"],
        "params_after": after_figures["params"],
        "macs_before": before_figures["macs"],
        "macs_after": after_figures["macs"],
        "metrics_before": before_figures["metrics"],
        "metrics_after": after_figures["metrics"],
        "text": f"bottleneck {k} of {d} on {feature!r}, decoder folded into {target.name!r}; reconstruction error "
        f"{fitted['relative_test']:.1%} of the feature's variance (test, before fine-tuning); "
        + cost.change_text(before_figures, after_figures),
    }
