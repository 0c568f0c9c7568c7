"""edgeprof: compress Keras models, export LiteRT models, and profile them on real edge boards.

    import edgeprof
    result = edgeprof.profile("model.tflite", target="local")
    print(result.summary())
    group = edgeprof.profile("model.tflite", repeat=5)  # five fresh agent processes, stored as one group

    recipe = edgeprof.Recipe(steps=[edgeprof.PruneStep(sparsity=0.5), edgeprof.QuantizeStep(mode="int8")])
    compressed = edgeprof.compress("model.keras", recipe, data="data.npz", out="compressed")

``edgeprof.compress`` is the compression sub-package and is callable: ``edgeprof.compress(...)`` runs
``edgeprof.compress.compress(...)``, whichever way the sub-package was imported. The heavy parts (TensorFlow,
TF-MOT) are imported only when a compression runs, so ``import edgeprof`` works without them installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import EdgeprofError
from .fleet import FleetResult, profile_fleet
from .profile import ProfileGroup, ProfileOptions, ProfileResult, profile, profile_models
from .targets import Target, resolve_target

if TYPE_CHECKING:
    # For type checkers, edgeprof.compress is the function it behaves as; `from edgeprof.compress import X` still
    # resolves the sub-package.
    from .compress.pipeline import compress
    from .store import Store, open_store
else:
    from . import compress
from .compress import (
    AutoencoderStep,
    ChannelsStep,
    ClusterStep,
    CompressionResult,
    DistillStep,
    L1Step,
    LowRankStep,
    PCAStep,
    PruneStep,
    QuantizeStep,
    Recipe,
    Step,
    Training,
    register_step,
)

__all__ = [
    "AutoencoderStep",
    "ChannelsStep",
    "ClusterStep",
    "CompressionResult",
    "DistillStep",
    "EdgeprofError",
    "FleetResult",
    "L1Step",
    "LowRankStep",
    "PCAStep",
    "ProfileGroup",
    "ProfileOptions",
    "ProfileResult",
    "PruneStep",
    "QuantizeStep",
    "Recipe",
    "Step",
    "Store",
    "Target",
    "Training",
    "__version__",
    "compress",
    "open_store",
    "profile",
    "profile_fleet",
    "profile_models",
    "register_step",
    "resolve_target",
]

_LAZY = {"Store": "edgeprof.store", "open_store": "edgeprof.store"}  # SQLAlchemy loads on first use


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # importlib, not `from . import store`: a from-import asks this very function for the name again.
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgeprof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
