"""Small student models for the distill step, given as module:function (edgeprof calls them with the data's shape)."""

from __future__ import annotations

from typing import Any


def tiny_mlp(input_shape: tuple[int, ...], classes: int) -> Any:
    """About 1.4k parameters: a fifth of the test CNN's 16.8k."""
    from edgeprof import _tf

    keras = _tf.keras()
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(20, activation="relu"),
            keras.layers.Dense(classes),
        ],
        name="student",
    )


def not_a_model() -> str:
    return "a string"
