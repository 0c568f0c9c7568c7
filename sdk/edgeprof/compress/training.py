"""Fine-tuning a model inside a step, with the step's own epochs, batch size, learning rate and optimizer."""

from __future__ import annotations

import math
from typing import Any

from .. import _tf
from ..data import Dataset
from ..errors import RecipeError
from .recipe import Training


def optimizer(training: Training) -> Any:
    keras = _tf.keras()
    factories = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adamw": getattr(keras.optimizers, "AdamW", keras.optimizers.Adam),
    }
    if training.optimizer not in factories:
        raise RecipeError(f"unknown optimizer {training.optimizer!r}", f"use one of: {', '.join(factories)}")
    return factories[training.optimizer](learning_rate=training.learning_rate)


def steps_per_epoch(data: Dataset, training: Training) -> int:
    return math.ceil(len(data.x_train) / training.batch_size)


def compile_for(model: Any, training: Training, *, from_logits: bool | None = None) -> None:
    keras = _tf.keras()
    if from_logits is None:
        from_logits = not ends_in_softmax(model)
    model.compile(
        optimizer=optimizer(training),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )


def fit(model: Any, data: Dataset, training: Training, *, callbacks: list | None = None, seed: int = 0) -> Any:
    keras = _tf.keras()
    keras.utils.set_random_seed(seed)
    return model.fit(
        data.x_train,
        data.y_train,
        epochs=training.epochs,
        batch_size=training.batch_size,
        callbacks=callbacks or [],
        verbose=0,
        shuffle=True,
    )


def ends_in_softmax(model: Any) -> bool:
    """Whether the model outputs probabilities (a softmax) rather than logits."""
    from .analysis import unwrap

    last = unwrap(model.layers[-1])
    activation = getattr(last, "activation", None)
    while hasattr(activation, "activation"):  # QAT wraps activations in QuantizeAwareActivation
        activation = activation.activation
    if getattr(activation, "__name__", "") == "softmax":
        return True
    return type(last).__name__ == "Softmax"
