"""Activation ranges of a QAT model, set from data before it trains.

TF-MOT starts every activation quantizer at [-6, 6] and moves it by an exponential moving average (decay 0.999) during
training. A network whose activations reach far beyond 6 (an autoencoder that reconstructs log-mel features of
-62..44, a regressor) is clamped from the first step, and a fine-tuning of a few hundred steps moves the range only a
fraction of the way: the MLPerf Tiny anomaly-detection autoencoder came out of QAT with 4x the MSE of post-training
int8. Post-training quantisation calibrates its ranges on the representative dataset; this does the same for QAT:
each output quantizer gets the min and max of its layer's float output over the representative samples, and the
moving average carries on from there.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger("edgeprof.compress")

#: Quantizer variables that hold an activation range (a layer's output, after its activation, or the model's input).
#: Weight ranges (``kernel_min``) are recomputed from the weights at every step and need no start.
RANGE_PREFIXES = ("output", "post_activation", "quantize_layer")
BATCH = 8  # samples per forward pass: every layer's output of a batch is held at once


def _range_pairs(layer: Any) -> list[tuple[Any, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for weight in layer.weights:
        name = weight.name.split("/")[-1].split(":")[0]
        for prefix in RANGE_PREFIXES:
            if name in (f"{prefix}_min", f"{prefix}_max"):
                found.setdefault(prefix, {})[name[-3:]] = weight
    return [(pair["min"], pair["max"]) for pair in found.values() if "min" in pair and "max" in pair]


def _probe(model: Any, names: list[str]) -> Any:
    """A model from the input to the float outputs of ``names``, built on a clone: a model that earlier steps rebuilt
    (pruning and clustering strip their wrappers) has layers called in more than one graph, where ``layer.output``
    may belong to another one; a clone's layers were each called once."""
    from .. import _tf
    from .models import clone

    try:
        fresh = clone(model)
        return _tf.keras().Model(fresh.inputs, [fresh.get_layer(name).output for name in names])
    except (ValueError, AttributeError, TypeError) as exc:
        log.debug("QAT ranges: no probe of the float layers (%s)", str(exc).splitlines()[0][:200])
        return None


def calibrate(quantized: Any, model: Any, samples: np.ndarray) -> dict[str, int]:
    """Set ``quantized``'s activation ranges from ``model``'s float outputs on ``samples``.

    A wrapper is matched to the float layer of the same name; the input quantizer takes the samples' own range.
    Layers that TF-MOT's transforms made (no float twin) keep TF-MOT's start. Returns what was set and left."""
    own = {layer.name for layer in model.layers}
    targets: dict[str | None, list[tuple[Any, Any]]] = {}
    left = 0
    for layer in quantized.layers:
        pairs = _range_pairs(layer)
        if not pairs:
            continue
        inner = getattr(layer, "layer", None)
        if inner is None:  # the QuantizeLayer on the model's input
            targets.setdefault(None, []).extend(pairs)
        elif inner.name in own:
            targets.setdefault(inner.name, []).extend(pairs)
        else:
            log.debug("QAT ranges: no float twin for %s (%s)", layer.name, inner.name)
            left += len(pairs)
    names = [name for name in targets if name is not None]
    ranges: dict[str | None, list[float]] = {}
    if samples.size:
        ranges[None] = [float(samples.min()), float(samples.max())]
    if names:
        probe = _probe(model, names)
        if probe is None:
            left += sum(len(targets.pop(name)) for name in names)
            names = []
    for start in range(0, len(samples) if names else 0, BATCH):
        outputs = probe(samples[start : start + BATCH], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for name, out in zip(names, outputs, strict=True):
            low, high = float(np.min(out)), float(np.max(out))
            seen = ranges.setdefault(name, [low, high])
            seen[0], seen[1] = min(seen[0], low), max(seen[1], high)
    done = 0
    for name, pairs in targets.items():
        if name not in ranges:
            left += len(pairs)
            continue
        low, high = ranges[name]
        low, high = min(low, 0.0), max(high, 0.0)  # a quantized range always holds zero
        if high - low < 1e-6:
            left += len(pairs)
            continue
        for var_min, var_max in pairs:
            var_min.assign(low)
            var_max.assign(high)
            done += 1
    log.debug("QAT ranges: %d activation ranges set from %d samples, %d left at TF-MOT's start", done, len(samples),
              left)  # fmt: skip
    return {"set": done, "left": left, "samples": len(samples)}
