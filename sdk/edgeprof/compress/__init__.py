"""Compression: recipes of TF-MOT (and other) steps applied to a Keras model, exported to TFLite."""

from .distill import DistillStep
from .l1 import L1Step
from .lowrank import LowRankStep
from .pipeline import STEP_FUNCTIONS, CompressionResult, compress
from .recipe import ClusterStep, PruneStep, QuantizeStep, Recipe, Step, Training, register_step

__all__ = [
    "STEP_FUNCTIONS",
    "ClusterStep",
    "CompressionResult",
    "DistillStep",
    "L1Step",
    "LowRankStep",
    "PruneStep",
    "QuantizeStep",
    "Recipe",
    "Step",
    "Training",
    "compress",
    "register_step",
]
