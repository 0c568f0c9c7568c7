"""Fine-tuning a model inside a step, with the step's own epochs, batch size, learning rate and optimizer."""

from __future__ import annotations

import math
from typing import Any

from .. import _tf
from .. import progress as _progress
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
        callbacks=[*(callbacks or []), *progress_callbacks(data, training)],
        verbose=0,
        shuffle=True,
    )


def progress_callbacks(data: Dataset, training: Training) -> list[Any]:
    """A Keras callback reporting epochs and batches to the :func:`edgeprof.progress.reporting` handler, if any."""
    handler = _progress.current()
    if handler is None:
        return []
    keras = _tf.keras()
    epochs, steps = training.epochs, steps_per_epoch(data, training)

    class EpochProgress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch % 5 == 0 or batch + 1 == steps:
                self._report(batch + 1, logs)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self._report(0, logs)

        def _report(self, batch: int, logs: dict | None) -> None:
            shown = ", ".join(f"{k} {v:.3g}" for k, v in (logs or {}).items() if isinstance(v, int | float))
            handler(
                _progress.Progress(
                    "compress",
                    "train",
                    f"epoch {self.epoch + 1}/{epochs}" + (f" ({shown})" if shown else ""),
                    self.epoch * steps + batch,
                    epochs * steps,
                    "batches",
                )
            )

    return [EpochProgress()]


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
