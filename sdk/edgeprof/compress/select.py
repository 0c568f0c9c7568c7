"""Which layers a step acts on, and wrapping exactly those.

``layers`` and ``exclude`` are fnmatch patterns matched against a layer's name and its class name, so
``layers = ["Dense"]`` takes every Dense layer and ``exclude = ["conv2d_1"]`` leaves one layer out.

One policy for every TF-MOT step (prune, cluster, QAT): a layer the step cannot handle is left as it is and named
(in the step's effect, its ``skipped`` map and its line in the summary) when the step took it by default, and stops
the run naming it, with the ``exclude`` line that leaves it out, when the user's ``layers`` patterns chose it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from .. import _tf
from ..errors import CompressionError
from .recipe import Step


def matches(layer: Any, patterns: list[str]) -> bool:
    keys = (layer.name, type(layer).__name__)
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns for key in keys)


def selected(layer: Any, step: Step) -> bool:
    if step.exclude and matches(layer, step.exclude):
        return False
    return step.layers is None or matches(layer, step.layers)


def explicit(layer: Any, step: Step) -> bool:
    """Chosen by the user's own ``layers`` patterns, not by the step's default of every layer."""
    return step.layers is not None and selected(layer, step)


def refuse(layers: dict[str, tuple[str, str]], step: Step, what: str) -> CompressionError:
    """The error for layers the user chose that the step cannot handle: name -> (class name, reason)."""
    names = list(layers)
    exclude = ", ".join(f'"{name}"' for name in names)
    if len(names) == 1:
        kind, reason = layers[names[0]]
        problem = f"layer {names[0]!r} ({kind}) cannot be {what}: {reason}"
    else:
        reasons = dict.fromkeys(reason for _, reason in layers.values())
        problem = f"layers {', '.join(names)} cannot be {what}: {'; '.join(reasons)}"
    return CompressionError(
        problem, f"leave {'it' if len(names) == 1 else 'them'} out with exclude = [{exclude}] in the {step.kind} step"
    )


def skipped_text(skipped: dict[str, str], lead: str = "left as they were", limit: int = 4) -> str:
    """One line naming what was left as it was, grouped by reason (every name is in the effect's ``skipped``)."""
    groups: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        groups.setdefault(reason, []).append(name)
    parts = []
    for reason, names in groups.items():
        shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
        parts.append(f"{shown} ({reason})")
    return f"{lead}: " + "; ".join(parts)


def wrap_layers(
    model: Any,
    step: Step,
    *,
    plan: Callable[[Any, bool], str | None],
    wrap: Callable[[Any, bool], Any],
    what: str,
    candidate: Callable[[Any], bool] = lambda layer: bool(layer.weights),
) -> tuple[Any, list[str], dict[str, str]]:
    """Clone ``model`` (which must already be our own copy) wrapping the selected layers the step can handle.

    ``candidate(layer)``: the layer has something this step acts on (BatchNormalization has no kernel to prune and
    is passed through silently). ``plan(layer, explicit)``: None to wrap it, or why it cannot be. ``wrap(layer,
    explicit)`` wraps it. Returns the clone, the wrapped names and the skipped ones with their reasons.
    """
    keras = _tf.keras()
    wrapped: list[str] = []
    skipped: dict[str, str] = {}
    refused: dict[str, tuple[str, str]] = {}

    def clone_function(layer: Any) -> Any:
        if isinstance(layer, keras.layers.InputLayer) or not selected(layer, step) or not candidate(layer):
            return layer
        chosen = explicit(layer, step)
        reason = plan(layer, chosen)
        if reason is None:
            wrapped.append(layer.name)
            return wrap(layer, chosen)
        if chosen:
            refused[layer.name] = (type(layer).__name__, reason)
        else:
            skipped[layer.name] = reason
        return layer

    result = keras.models.clone_model(model, clone_function=clone_function)
    if refused:
        raise refuse(refused, step, what)
    if not wrapped:
        raise CompressionError(
            f"no layer was {what}: "
            + (skipped_text(skipped) if skipped else "the step's layers/exclude patterns match no layer with a kernel"),
            "check the layer names with 'edgeprof inspect' or model.summary()",
        )
    return result, wrapped, skipped
