"""The ``cluster`` step: TF-MOT weight clustering, optionally keeping the zeros pruning made."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import RecipeError
from . import analysis, masks, select, training
from .recipe import ClusterStep

_INIT = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED", "random": "RANDOM"}


def apply(model: Any, step: ClusterStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    tfmot = _tf.tfmot()
    clustering = tfmot.clustering.keras
    if step.init not in _INIT:
        raise RecipeError(f"unknown centroid initialisation {step.init!r}", f"use one of: {', '.join(_INIT)}")
    keras = _tf.keras()
    params: dict[str, Any] = {
        "number_of_clusters": step.clusters,
        "cluster_centroids_init": getattr(clustering.CentroidInitialization, _INIT[step.init]),
        "preserve_sparsity": step.preserve_sparsity,
    }

    def wrap(layer: Any, chosen: bool) -> Any:
        extra = {"cluster_per_channel": True} if step.per_channel and isinstance(layer, keras.layers.Conv2D) else {}
        return clustering.cluster_weights(layer, **params, **extra)

    before = {r["name"]: r for r in analysis.layer_stats(model)}
    wrapped, _, skipped = select.wrap_layers(
        model,
        step,
        candidate=_has_something_to_cluster,
        plan=lambda layer, chosen: _why_not(layer, step),
        wrap=wrap,
        what="clustered",
    )
    from tensorflow_model_optimization.python.core.clustering.keras.cluster_wrapper import ClusterWeights

    clustered, dense = _clustered_kernels(wrapped)
    skipped.update({f"{name}/{kernel}": DEPTHWISE for name, kernel in dense})
    # preserve_sparsity keeps the zeros of the kernels TF-MOT clusters; the others keep theirs by edgeprof's masks.
    unclustered = masks.zero_masks(wrapped, take=lambda layer: not isinstance(layer, ClusterWeights))
    held = unclustered if step.preserve_sparsity else []
    training.compile_for(wrapped, step.training)
    training.fit(wrapped, data, step.training, seed=seed, callbacks=[masks.keep_zeros(held)] if held else None)
    stripped = clustering.strip_clustering(wrapped)
    layers = {}
    for name, kernels in clustered.items():
        variables = analysis.kernel_variables(stripped.get_layer(name))
        layers[name] = {
            "unique_values": max(int(np.unique(variables[k].numpy()).size) for k in kernels),
            "sparsity": float(np.mean(np.concatenate([variables[k].numpy().ravel() for k in kernels]) == 0)),
            "sparsity_before": before.get(name, {}).get("sparsity"),
            **({"kernels": kernels} if list(variables) != kernels else {}),
        }
    most = max((layer["unique_values"] for layer in layers.values()), default=0)
    return stripped, {
        "clusters": step.clusters,
        "preserve_sparsity": step.preserve_sparsity,
        "per_channel": step.per_channel,
        "layers": layers,
        "max_unique_values": most,
        "skipped": skipped,
        "zero_masks": masks.names(held),
        "text": f"≤ {most} unique values per kernel in {len(layers)} layers"
        + (f"; {select.skipped_text(skipped)}" if skipped else ""),
    }


DEPTHWISE = "depthwise kernels: TF-MOT's ClusteringRegistry does not cluster them"


def _has_something_to_cluster(layer: Any) -> bool:
    """Layers with a kernel, and layers TF-MOT does not know (named as skipped); not BatchNormalization & co."""
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    if not layer.weights:
        return False
    return bool(analysis.kernel_variables(layer)) or not ClusteringRegistry.supports(layer)


def _why_not(layer: Any, step: ClusterStep) -> str | None:
    """None when TF-MOT can cluster the layer's kernels, else the reason (skipped, or an error when chosen)."""
    from tensorflow_model_optimization.python.core.clustering.keras.clusterable_layer import ClusterableLayer
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    keras = _tf.keras()
    if isinstance(layer, ClusterableLayer):
        return None
    if not ClusteringRegistry.supports(layer):
        return f"TF-MOT has no clustering rule for {type(layer).__name__} layers"
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return DEPTHWISE  # the registry wraps it with no weights: it would stay as it is
    per_channel = bool(step.per_channel and isinstance(layer, keras.layers.Conv2D))
    for name, variable in analysis.kernel_variables(layer).items():
        if name != "depthwise_kernel":
            reason = too_few_weights(np.asarray(variable.numpy()), step, per_channel=per_channel)
            if reason:
                return reason
    return None


def _clustered_kernels(wrapped: Any) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Layer name -> its kernels under clustering, and the (layer, kernel) pairs a wrapper leaves as they are."""
    from tensorflow_model_optimization.python.core.clustering.keras.cluster_wrapper import ClusterWeights

    clustered: dict[str, list[str]] = {}
    dense: list[tuple[str, str]] = []
    for wrapper in wrapped.layers:
        if not isinstance(wrapper, ClusterWeights):
            continue
        originals = list(wrapper.original_clusterable_weights.values())
        # The wrapper holds the kernels it clusters (they leave the inner layer's weights until stripped).
        for name, variable in analysis.kernel_variables(wrapper).items():
            if any(variable is original for original in originals):
                clustered.setdefault(wrapper.layer.name, []).append(name)
            else:
                dense.append((wrapper.layer.name, name))
    return clustered, dense


def too_few_weights(kernel: np.ndarray, step: ClusterStep, *, per_channel: bool) -> str | None:
    """Why TF-MOT's centroid initialisation cannot place ``clusters`` centroids in this kernel (None: it can).

    With preserve_sparsity, TF-MOT keeps one centroid at zero and splits the others between the negative and
    positive weights in proportion to their counts; k-means++ then needs at least as many weights as centroids on
    each side. A kernel that small already has few distinct values, so it is left as it is and reported.
    """
    channels = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1) if per_channel else kernel.reshape(1, -1)
    for values in channels:
        if not step.preserve_sparsity:
            if values.size < step.clusters:
                return f"{values.size} weights for {step.clusters} clusters"
            continue
        negative, positive = int(np.sum(values < 0)), int(np.sum(values > 0))
        if negative + positive == 0:
            continue
        wanted_negative = int(np.round((step.clusters - 1) * negative / (negative + positive)))
        wanted_positive = step.clusters - 1 - wanted_negative
        if wanted_negative > negative or wanted_positive > positive:
            return f"{negative} negative and {positive} positive non-zero weights for {step.clusters} clusters"
    return None
