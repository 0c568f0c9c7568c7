"""edgeprof: compress Keras models, export LiteRT models, and profile them on real edge boards.

    import edgeprof
    result = edgeprof.profile("model.tflite", target="local")
    print(result.summary())

The heavy parts (TensorFlow, TF-MOT) are imported only when a compression runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import EdgeprofError
from .fleet import FleetResult, profile_fleet
from .profile import ProfileOptions, ProfileResult, profile
from .targets import Target, resolve_target

if TYPE_CHECKING:
    from .compress import CompressionResult, Recipe
    from .store import Store

__all__ = [
    "CompressionResult",
    "EdgeprofError",
    "FleetResult",
    "ProfileOptions",
    "ProfileResult",
    "Recipe",
    "Store",
    "Target",
    "__version__",
    "compress",
    "open_store",
    "profile",
    "profile_fleet",
    "resolve_target",
]


def __getattr__(name: str) -> Any:
    # Compression pulls in TensorFlow; load it on first use, not on `import edgeprof`.
    if name in ("compress", "Recipe", "CompressionResult"):
        from . import compress as _compress

        return getattr(_compress, name)
    if name in ("Store", "open_store"):
        from . import store as _store

        return getattr(_store, name)
    raise AttributeError(f"module 'edgeprof' has no attribute {name!r}")
