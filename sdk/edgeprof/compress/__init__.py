"""Compression: recipes of TF-MOT (and other) steps applied to a Keras model, exported to TFLite.

This sub-package is also the function that runs a recipe: ``edgeprof.compress(model, recipe, data, out)`` is
:func:`edgeprof.compress.pipeline.compress`. A package named like its main function is a trap in Python, because
importing the sub-package (``from edgeprof.compress import Recipe``) rebinds ``edgeprof.compress`` to the module;
so the module itself is callable, and ``edgeprof.compress`` is one object whichever import ran first.

    import edgeprof
    from edgeprof.compress import Recipe, PruneStep, QuantizeStep

    recipe = Recipe(steps=[PruneStep(sparsity=0.5), QuantizeStep(mode="int8")])
    result = edgeprof.compress("model.keras", recipe, data="data.npz", out="compressed")

Importing it loads no TensorFlow; that happens when a compression runs.
"""

import inspect as _inspect
import sys as _sys
import types as _types
from typing import Any as _Any

from .autoencoder import AutoencoderStep
from .channels import ChannelsStep
from .distill import DistillStep
from .l1 import L1Step
from .lowrank import LowRankStep
from .pca import PCAStep
from .pipeline import STEP_FUNCTIONS, CompressionResult, compress
from .recipe import ClusterStep, PruneStep, QuantizeStep, Recipe, Step, Training, register_step

__all__ = [
    "STEP_FUNCTIONS",
    "AutoencoderStep",
    "ChannelsStep",
    "ClusterStep",
    "CompressionResult",
    "DistillStep",
    "L1Step",
    "LowRankStep",
    "PCAStep",
    "PruneStep",
    "QuantizeStep",
    "Recipe",
    "Step",
    "Training",
    "compress",
    "register_step",
]


class _CallableModule(_types.ModuleType):
    """The ``edgeprof.compress`` module: calling it runs :func:`compress` with the same arguments."""

    def __call__(self, *args: _Any, **kwargs: _Any) -> CompressionResult:
        return compress(*args, **kwargs)


_module = _sys.modules[__name__]
_module.__class__ = _CallableModule
# inspect.signature(edgeprof.compress) and IDEs show compress()'s parameters, not (*args, **kwargs).
__signature__ = _inspect.signature(compress)
