"""The ``quantize`` step: post-training quantisation at export, or quantisation-aware training then int8 export.

QAT uses TF-MOT's ``quantize_annotate_model`` (or ``quantize_annotate_layer`` on the selected layers) and
``quantize_apply`` with a scheme: the default 8-bit scheme for ``qat``; the collaborative schemes
``Default8BitPrunePreserveQuantizeScheme`` for ``pqat``, ``Default8BitClusterPreserveQuantizeScheme`` for ``cqat``
and the same with ``preserve_sparsity=True`` for ``pcqat``. Without them, fake-quantisation training moves the
zeros and cluster centroids that earlier steps made, and the int8 model loses what pruning and clustering gained.
"""

from __future__ import annotations

import re
from typing import Any

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError
from . import analysis, attribution, export, masks, ranges, select, training
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


def annotate(model: Any, step: QuantizeStep, leave: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """Mark the layers for QAT as ``quantize_model`` does: every layer, or the selected ones, except ``leave``.

    TF-MOT then decides per layer in ``quantize_apply``: its scheme's transforms handle Conv+BatchNorm (and split
    SeparableConv2D), its registry the rest. Lambda layers and nested models it cannot take are left float here,
    as ``quantize_annotate_model`` leaves them; returns the names left so, with the reason.
    """
    tfmot = _tf.tfmot()
    keras = _tf.keras()
    q = tfmot.quantization.keras
    skipped: dict[str, str] = {}
    refused: dict[str, tuple[str, str]] = {}
    annotated_any = False

    def clone_function(layer: Any) -> Any:
        nonlocal annotated_any
        fresh = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.InputLayer) or not select.selected(layer, step) or layer.name in leave:
            return fresh
        reason = None
        if isinstance(layer, keras.Model):
            reason = "a model nested in the model: TF-MOT quantises flat models only"
        elif isinstance(layer, keras.layers.Lambda):
            reason = "Lambda layers: TF-MOT cannot tell what they compute"
        if reason is not None:
            if select.explicit(layer, step):
                refused[layer.name] = (type(layer).__name__, reason)
            else:
                skipped[layer.name] = reason
            return fresh
        annotated_any = True
        return q.quantize_annotate_layer(fresh)

    annotated = keras.models.clone_model(model, clone_function=clone_function)
    if refused:
        raise select.refuse(refused, step, f"quantised by {step.mode}")
    if not annotated_any:
        raise CompressionError(
            "no layer was selected for quantisation-aware training", "check the quantize step's layers/exclude"
        )
    annotated.set_weights(model.get_weights())
    return annotated, skipped


def _layer_named(message: str, model: Any) -> Any:
    """The model's layer that TF-MOT's error names ("Layer dense_3:<class ...> is not supported ...")."""
    match = re.search(r"Layer (\S+?):\s*<class", message)
    if not match:
        return None
    try:
        return model.get_layer(match.group(1))
    except ValueError:
        return None


def refuse_op_layers(model: Any, step: QuantizeStep) -> None:
    """Stop QAT on a model that calls TensorFlow operations on Keras tensors (TFOpLambda layers, e.g. the ``x + 3.0``
    of MobileNetV3's hard-swish). ``quantize_apply`` rebuilds the whole model from its config and, with TF-MOT 0.8.1
    and tf_keras 2.21, fails on every such layer, selected or not: an AttributeError traceback from inside TF-MOT,
    or a wrong-shape error about a later layer. Leaving them float cannot help, so the refusal names them all."""
    if step.mode in PTQ_MODES:
        return
    ops = [layer.name for layer in model.layers if type(layer).__name__ in ("TFOpLambda", "SlicingOpLambda")]
    if ops:
        shown = ", ".join(ops[:5]) + (f" and {len(ops) - 5} more" if len(ops) > 5 else "")
        raise CompressionError(
            f"{step.mode} cannot train this model: TF-MOT rebuilds the whole model for quantisation-aware training "
            f"and fails on TensorFlow operations called on Keras tensors ({len(ops)} TFOpLambda layer"
            f"{'s' if len(ops) > 1 else ''}: {shown})",
            "build those operations from Keras layers (layers.Add, layers.Multiply, layers.Activation), or quantise "
            'after training with --quantize int8 (mode = "int8")',
        )


def quantize_aware(model: Any, step: QuantizeStep) -> tuple[Any, dict[str, str]]:
    """``quantize_apply`` with the step's scheme. A layer TF-MOT rejects is left float and named; when the step's
    ``layers`` chose it, the run stops naming it (and every other chosen layer TF-MOT rejects)."""
    refuse_op_layers(model, step)
    tfmot = _tf.tfmot()
    chosen_scheme = scheme(step.mode)
    leave: dict[str, str] = {}
    refused: dict[str, tuple[str, str]] = {}
    what = f"quantised by {step.mode}"
    while True:
        try:
            annotated, skipped = annotate(model, step, leave)
            with tfmot.quantization.keras.quantize_scope():
                quantized = tfmot.quantization.keras.quantize_apply(annotated, chosen_scheme)
        except CompressionError:
            if refused:  # nothing left once the rejected layers are out: name those
                raise select.refuse(_in_model_order(refused, model), step, what) from None
            raise
        except (ValueError, RuntimeError, TypeError) as exc:
            message = str(exc).strip()
            layer = _layer_named(message, model)
            if layer is None or layer.name in leave:
                first = message.splitlines()[0] if message else type(exc).__name__
                raise CompressionError(
                    f"TF-MOT could not apply {step.mode}: {first[:300]}",
                    "exclude the layer it names from the quantize step, or use post-training int8",
                ) from None
            kind = type(layer).__name__
            reason = f"TF-MOT's {type(chosen_scheme).__name__} has no quantize config for {kind}"
            if kind in ("BatchNormalization", "SyncBatchNormalization"):
                reason += " except right after a Conv2D, DepthwiseConv2D or Dense"
            if select.explicit(layer, step):
                refused[layer.name] = (kind, reason)
            leave[layer.name] = reason  # and try again without it, to find every such layer in one run
            continue
        if refused:
            raise select.refuse(_in_model_order(refused, model), step, what)
        return quantized, {**skipped, **leave}


def _in_model_order(named: dict[str, Any], model: Any) -> dict[str, Any]:
    return {layer.name: named[layer.name] for layer in model.layers if layer.name in named}


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
    before = {r["name"]: r for r in analysis.layer_stats(model)}
    quantized, skipped = quantize_aware(model, step)
    wrapper = _tf.tfmot().quantization.keras.QuantizeWrapper
    chosen = [layer.layer.name for layer in quantized.layers if isinstance(layer, wrapper)]
    split = _split_separables(model, quantized)
    frozen = []
    if step.mode != "qat":  # the collaborative schemes keep zeros and clusters: so must the layers left float
        for layer in quantized.layers:
            if layer.name in skipped and layer.weights:
                layer.trainable = False
                frozen.append(layer.name)
    # TF-MOT's prune-preserve skips DepthwiseConv2D, and one kernel without zeros turns it off in PCQAT: masks.
    zeros = masks.zero_masks(quantized) if step.mode in ("pqat", "pcqat") else []
    # TF-MOT starts activation ranges at [-6, 6]: calibrate them like post-training int8 before fake-quant training.
    calibrated = ranges.calibrate(quantized, model, data.representative(step.representative_samples, seed))
    training.compile_for(quantized, step.training, from_logits=not training.ends_in_softmax(model))
    history = training.fit(
        quantized, data, step.training, seed=seed, callbacks=[masks.keep_zeros(zeros)] if zeros else None
    )
    tflite, export_info = export.convert(quantized, step, data, seed=seed, runtime=runtime)
    preserved = {}
    for row in attribution.layer_table(quantized, analysis.tflite_weights(tflite)):
        name = row["name"]
        if name not in before or "sparsity" not in before[name] or "tflite_sparsity" not in row:
            continue
        preserved[name] = {
            "kernel_params": before[name]["kernel_params"],
            "sparsity_before": before[name]["sparsity"],
            "sparsity_tflite": row["tflite_sparsity"],
            "unique_values_before": before[name]["unique_values"],
            "unique_values_tflite": row["tflite_unique_values"],
            "tflite_dtype": row["tflite_dtype"],
        }
    losses = history.history.get("loss", []) if history is not None else []
    return (
        quantized,
        tflite,
        {
            "mode": step.mode,
            "scheme": type(scheme(step.mode)).__name__,
            "text": f"{step.mode}: quantisation-aware training, {step.training.epochs} epochs, int8 export"
            + f"; activation ranges calibrated on {calibrated['samples']} representative samples"
            + "".join(f"; TF-MOT split {name} into {' + '.join(parts)}" for name, parts in split.items())
            + _kept_text(preserved)
            + (f"; zeros of {len(masks.names(zeros))} pruned layers held by edgeprof's masks" if zeros else "")
            + (f"; {select.skipped_text(skipped, 'left float during training')}" if skipped else "")
            + (f" (frozen so they keep what earlier steps made: {', '.join(frozen)})" if frozen else ""),
            "layers": chosen,
            "skipped": skipped,
            "frozen": frozen,
            "zero_masks": masks.names(zeros),
            "split": split,
            "final_loss": float(losses[-1]) if losses else None,
            "calibrated_ranges": calibrated,
            "preserved": preserved,
            "int8_io": step.int8_io,
            **export_info,
        },
    )


def _split_separables(model: Any, quantized: Any) -> dict[str, list[str]]:
    """SeparableConv2D -> the DepthwiseConv2D and Conv2D that TF-MOT's QAT transform put in its place (new names)."""
    before = {layer.name for layer in model.layers}
    gone = [layer.name for layer in model.layers if type(layer).__name__ in ("SeparableConv1D", "SeparableConv2D")]
    inner = [analysis.unwrap(layer) for layer in quantized.layers]
    new = [layer.name for layer in inner if layer.name not in before and "Conv" in type(layer).__name__]
    if not gone or len(new) != 2 * len(gone):
        return {}
    return {name: new[2 * i : 2 * i + 2] for i, name in enumerate(gone)}


def _kept_text(preserved: dict[str, dict[str, Any]]) -> str:
    """What survived into the int8 weights of the layers earlier steps compressed: the lowest sparsity of any pruned
    layer and the most values per channel of any clustered one (layers left dense are not averaged in)."""
    pruned = [p["sparsity_tflite"] for p in preserved.values() if p["sparsity_before"] >= masks.PRUNED]
    clustered = [
        p["unique_values_tflite"]
        for p in preserved.values()
        if p["unique_values_before"] <= min(256, p["kernel_params"] // 4)  # far fewer values than weights
    ]
    parts = []
    if pruned:
        parts.append(f"≥ {min(pruned):.0%} zeros in the {len(pruned)} pruned layers")
    if clustered:
        parts.append(f"≤ {max(clustered)} values per channel in the {len(clustered)} layers with few distinct values")
    return f"; int8 weights: {', '.join(parts)}" if parts else ""
