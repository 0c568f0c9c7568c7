"""The ``quantize`` step: post-training quantisation at export, or quantisation-aware training then int8 export.

QAT uses TF-MOT's ``quantize_annotate_model`` (or ``quantize_annotate_layer`` on the selected layers) and
``quantize_apply`` with a scheme: the default 8-bit scheme for ``qat``; the collaborative schemes
``Default8BitPrunePreserveQuantizeScheme`` for ``pqat``, ``Default8BitClusterPreserveQuantizeScheme`` for ``cqat``
and the same with ``preserve_sparsity=True`` for ``pcqat``. Without them, fake-quantisation training moves the
zeros and cluster centroids that earlier steps made, and the int8 model loses what pruning and clustering gained.
"""

from __future__ import annotations

from typing import Any

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError
from . import analysis, export, select, training
from .recipe import PTQ_MODES, QuantizeStep


def scheme(mode: str) -> Any:
    tfmot = _tf.tfmot()
    if mode == "qat":
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    combine = tfmot.experimental.combine
    if mode == "pqat":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if mode == "cqat":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    if mode == "pcqat":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    raise CompressionError(f"{mode} is not a quantisation-aware training mode", "use qat, pqat, cqat or pcqat")


def annotate(model: Any, step: QuantizeStep) -> tuple[Any, list[str]]:
    """Mark the layers QAT should quantise; a layer TF-MOT cannot quantise is an error naming it."""
    tfmot = _tf.tfmot()
    keras = _tf.keras()
    q = tfmot.quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    chosen: list[str] = []

    def clone_function(layer: Any) -> Any:
        if isinstance(layer, keras.layers.InputLayer) or not select.selected(layer, step):
            return layer.__class__.from_config(layer.get_config())
        if not registry.supports(layer):
            if not layer.weights and step.layers is None:
                # Layers without weights that the scheme does not know (e.g. Lambda) stay float.
                return layer.__class__.from_config(layer.get_config())
            raise CompressionError(
                f"layer {layer.name!r} ({type(layer).__name__}) cannot be quantised by TF-MOT's QAT",
                f'leave it out with exclude = ["{layer.name}"] in the quantize step',
            )
        chosen.append(layer.name)
        return q.quantize_annotate_layer(layer.__class__.from_config(layer.get_config()))

    annotated = keras.models.clone_model(model, clone_function=clone_function)
    annotated.set_weights(model.get_weights())
    if not chosen:
        raise CompressionError(
            "no layer was selected for quantisation-aware training", "check the quantize step's layers/exclude"
        )
    return annotated, chosen


def apply(
    model: Any, step: QuantizeStep, data: Dataset, *, seed: int = 0, runtime: Any = None
) -> tuple[Any, bytes, dict[str, Any]]:
    """Return the (possibly QAT-trained) Keras model, the TFLite bytes and what was done."""
    if step.mode in PTQ_MODES:
        tflite, export_info = export.convert(model, step, data, seed=seed, runtime=runtime)
        return (
            model,
            tflite,
            {
                "mode": step.mode,
                "text": f"post-training {step.mode}",
                "representative_samples": step.representative_samples if step.mode in ("int8", "int16x8") else None,
                "int8_io": step.int8_io,
                **export_info,
            },
        )
    tfmot = _tf.tfmot()
    before = {r["name"]: r for r in analysis.layer_stats(model)}
    annotated, chosen = annotate(model, step)
    try:
        with tfmot.quantization.keras.quantize_scope():
            quantized = tfmot.quantization.keras.quantize_apply(annotated, scheme(step.mode))
    except (ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressionError(
            f"TF-MOT could not apply {step.mode}: {first[:300]}",
            "exclude the layer it names from the quantize step, or use post-training int8",
        ) from None
    training.compile_for(quantized, step.training, from_logits=not training.ends_in_softmax(model))
    history = training.fit(quantized, data, step.training, seed=seed)
    tflite, export_info = export.convert(quantized, step, data, seed=seed, runtime=runtime)
    weights = analysis.tflite_weights(tflite)
    preserved = {}
    for name in chosen:
        row = analysis.match_tflite_layer(weights, name)
        if row is None or name not in before or "sparsity" not in before[name]:
            continue
        preserved[name] = {
            "sparsity_before": before[name]["sparsity"],
            "sparsity_tflite": row["sparsity"],
            "unique_values_before": before[name]["unique_values"],
            "unique_values_tflite": row["unique_values"],
            "tflite_dtype": row["dtype"],
        }
    losses = history.history.get("loss", []) if history is not None else []
    return (
        quantized,
        tflite,
        {
            "mode": step.mode,
            "scheme": type(scheme(step.mode)).__name__,
            "text": f"{step.mode}: quantisation-aware training, {step.training.epochs} epochs, int8 export"
            + _kept_text(preserved),
            "layers": chosen,
            "final_loss": float(losses[-1]) if losses else None,
            "preserved": preserved,
            "int8_io": step.int8_io,
            **export_info,
        },
    )


def _kept_text(preserved: dict[str, dict[str, Any]]) -> str:
    """What survived into the int8 weights: the lowest sparsity and the most values per channel of any layer."""
    if not preserved:
        return ""
    sparsity = min(p["sparsity_tflite"] for p in preserved.values())
    values = max(p["unique_values_tflite"] for p in preserved.values())
    return f"; int8 weights: ≥ {sparsity:.0%} zeros, ≤ {values} values per channel"
