"""The ``cluster`` step: TF-MOT weight clustering, optionally keeping the zeros pruning made."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import RecipeError
from . import analysis, select, training
from .recipe import ClusterStep

_INIT = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED", "random": "RANDOM"}


def apply(model: Any, step: ClusterStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    tfmot = _tf.tfmot()
    clustering = tfmot.clustering.keras
    if step.init not in _INIT:
        raise RecipeError(f"unknown centroid initialisation {step.init!r}", f"use one of: {', '.join(_INIT)}")
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    keras = _tf.keras()
    params: dict[str, Any] = {
        "number_of_clusters": step.clusters,
        "cluster_centroids_init": getattr(clustering.CentroidInitialization, _INIT[step.init]),
        "preserve_sparsity": step.preserve_sparsity,
    }

    def wrap(layer: Any) -> Any:
        extra = {"cluster_per_channel": True} if step.per_channel and isinstance(layer, keras.layers.Conv2D) else {}
        return clustering.cluster_weights(layer, **params, **extra)

    def supports(layer: Any) -> bool:
        return ClusteringRegistry.supports(layer)

    before = {r["name"]: r for r in analysis.layer_stats(model)}
    skipped = {}
    for layer in model.layers:
        kernel = analysis.kernel_of(layer)
        if kernel is not None and select.selected(layer, step) and supports(layer):
            reason = too_few_weights(
                kernel, step, per_channel=bool(step.per_channel and "Conv" in type(layer).__name__)
            )
            if reason:
                skipped[layer.name] = reason
    if skipped:
        step = dataclasses.replace(step, exclude=[*step.exclude, *skipped])
        if not any(analysis.kernel_of(layer) is not None and select.selected(layer, step) for layer in model.layers):
            return model, {
                "clusters": step.clusters,
                "layers": {},
                "skipped": skipped,
                "max_unique_values": None,
                "text": "nothing to cluster: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()),
            }
    wrapped, names = select.wrap_layers(model, step, supports=supports, wrap=wrap, what="clustered")
    training.compile_for(wrapped, step.training)
    training.fit(wrapped, data, step.training, seed=seed)
    stripped = clustering.strip_clustering(wrapped)
    rows = [r for r in analysis.layer_stats(stripped) if r["name"] in names and "unique_values" in r]
    return stripped, {
        "clusters": step.clusters,
        "preserve_sparsity": step.preserve_sparsity,
        "per_channel": step.per_channel,
        "layers": {
            r["name"]: {
                "unique_values": r["unique_values"],
                "sparsity": r["sparsity"],
                "sparsity_before": before.get(r["name"], {}).get("sparsity"),
            }
            for r in rows
        },
        "max_unique_values": max((r["unique_values"] for r in rows), default=0),
        "skipped": skipped,
        "text": f"≤ {max((r['unique_values'] for r in rows), default=0)} unique values per kernel"
        + (f" ({len(skipped)} layer(s) left as they were: too few weights)" if skipped else ""),
    }


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
