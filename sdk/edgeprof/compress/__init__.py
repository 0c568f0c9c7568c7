"""Compression: recipes of TF-MOT (and other) steps applied to a Keras model, exported to TFLite."""

from .pipeline import CompressionResult, compress
from .recipe import ClusterStep, PruneStep, QuantizeStep, Recipe, Step, Training

__all__ = [
    "ClusterStep",
    "CompressionResult",
    "PruneStep",
    "QuantizeStep",
    "Recipe",
    "Step",
    "Training",
    "compress",
]
