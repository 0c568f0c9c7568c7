"""The ``lowrank`` step: truncated SVD of Dense and 1×1 convolution kernels into two smaller layers.

A kernel W (inputs × outputs) becomes U_r·√S_r (inputs × r) followed by √S_r·V_rᵀ (r × outputs): two layers with
r·(inputs + outputs) weights instead of inputs·outputs. The rank is given (``rank``) or chosen per layer as the
smallest that keeps a fraction of the kernel's energy, the sum of squared singular values (``energy``). Layers where
the factorisation would not save weights are left as they are and reported. A short fine-tuning then recovers
accuracy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError, RecipeError
from . import select, training
from .recipe import Step, register_step

SUFFIX = "_lowrank"


@register_step
@dataclass
class LowRankStep(Step):
    """``rank`` fixes r for every factorised layer; otherwise ``energy`` (0–1] of each kernel's energy is kept."""

    kind: ClassVar[str] = "lowrank"
    rank: int | None = None
    energy: float = 0.9

    def describe(self) -> str:
        return f"low-rank r={self.rank}" if self.rank else f"low-rank {self.energy:.0%} energy"

    def validate(self, where: str) -> None:
        if self.rank is not None and self.rank < 1:
            raise RecipeError(f"{where}: rank must be ≥ 1", "use e.g. rank = 8, or energy = 0.9")
        if not 0 < self.energy <= 1:
            raise RecipeError(f"{where}: energy must be in (0, 1]", "use e.g. energy = 0.9")


def _candidate(layer: Any) -> bool:
    keras = _tf.keras()
    if isinstance(layer, keras.layers.Dense):
        return True
    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (1, 1)
        and getattr(layer, "groups", 1) == 1
        and tuple(layer.dilation_rate) == (1, 1)
    )


def choose_rank(singular: np.ndarray, step: LowRankStep) -> int:
    if step.rank is not None:
        return int(min(step.rank, singular.size))
    energy = np.cumsum(singular**2) / np.sum(singular**2)
    return int(np.searchsorted(energy, step.energy - 1e-12) + 1)


def apply(model: Any, step: LowRankStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    keras = _tf.keras()
    plans: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for layer in model.layers:
        if not layer.weights or not select.selected(layer, step):
            continue
        if not _candidate(layer):
            if step.layers is not None:
                raise CompressionError(
                    f"layer {layer.name!r} ({type(layer).__name__}) cannot be factorised: only Dense and 1×1 Conv2D",
                    f'leave it out with exclude = ["{layer.name}"] in the lowrank step',
                )
            continue
        kernel = layer.kernel.numpy()
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        rank = choose_rank(s, step)
        m, n = matrix.shape
        if rank * (m + n) >= m * n:
            skipped[layer.name] = f"rank {rank} of {min(m, n)} would not save weights ({m}×{n})"
            continue
        root = np.sqrt(s[:rank])
        plans[layer.name] = {
            "first": (u[:, :rank] * root).reshape(*kernel.shape[:-1], rank),
            "second": (root[:, None] * vt[:rank]).reshape(*kernel.shape[:-2], rank, kernel.shape[-1]),
            "rank": rank,
            "full_rank": int(min(m, n)),
            "energy_kept": float(np.sum(s[:rank] ** 2) / np.sum(s**2)),
            "params_before": int(m * n),
            "params_after": int(rank * (m + n)),
        }
    if not plans:
        raise CompressionError(
            "no layer was factorised: " + ("; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no Dense/1×1 conv"),
            "lower energy or rank, or select other layers",
        )

    config = copy.deepcopy(model.get_config())
    new_layers = []
    functional = "input_layers" in config
    for entry in config["layers"]:
        name = entry["config"].get("name")
        if name not in plans:
            new_layers.append(entry)
            continue
        first = copy.deepcopy(entry)
        first["config"].update(name=name + SUFFIX, use_bias=False, activation="linear")
        if entry["class_name"] == "Dense":
            first["config"]["units"] = plans[name]["rank"]
        else:
            first["config"]["filters"] = plans[name]["rank"]
        second = copy.deepcopy(entry)
        if entry["class_name"] == "Conv2D":
            second["config"].update(strides=(1, 1), padding="valid")
        for part in (first, second):
            part["config"].pop("kernel_regularizer", None)
        if functional:
            first["name"] = name + SUFFIX
            second["inbound_nodes"] = [[[name + SUFFIX, 0, 0, {}]]]
        new_layers += [first, second]
    config["layers"] = new_layers
    try:
        rebuilt = (
            keras.Sequential.from_config(config)
            if isinstance(model, keras.Sequential)
            else keras.Model.from_config(config)
        )
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a config it cannot rebuild
        raise CompressionError(f"cannot rebuild the factorised model: {exc}", "exclude the layer it names") from None
    for layer in rebuilt.layers:
        if layer.name.endswith(SUFFIX) and layer.name[: -len(SUFFIX)] in plans:
            layer.set_weights([plans[layer.name[: -len(SUFFIX)]]["first"]])
        elif layer.name in plans:
            old = model.get_layer(layer.name).get_weights()
            layer.set_weights([plans[layer.name]["second"], *old[1:]])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    training.compile_for(rebuilt, step.training)
    training.fit(rebuilt, data, step.training, seed=seed)
    layers = {
        k: {key: v[key] for key in ("rank", "full_rank", "energy_kept", "params_before", "params_after")}
        for k, v in plans.items()
    }
    before = sum(v["params_before"] for v in plans.values())
    after = sum(v["params_after"] for v in plans.values())
    return rebuilt, {
        "layers": layers,
        "skipped": skipped,
        "params_before": int(model.count_params()),
        "params_after": int(rebuilt.count_params()),
        "text": f"{len(plans)} layer(s) factorised, {before:,} → {after:,} kernel weights, ranks "
        + ", ".join(f"{k} {v['rank']}/{v['full_rank']}" for k, v in plans.items()),
    }
