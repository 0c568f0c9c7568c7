"""The ``cluster`` step: TF-MOT weight clustering, optionally keeping the zeros pruning made."""

from __future__ import annotations

from typing import Any

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
    }
