"""Fine-tuning a model inside a step, with the step's own epochs, batch size, learning rate and optimizer.

The loss belongs to the task of each output (:mod:`edgeprof.tasks`: cross-entropy for classifiers, binary
cross-entropy for binary and multilabel outputs, mean squared error for regression and reconstruction, or the user's
``--loss``), and the task travels on the data. Steps call :func:`compile_for` (the optimizer) and :func:`fit`, which
compiles the loss for the data's task and trains on its targets, so no step has to know what the model predicts.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from typing import Any

from .. import _tf
from .. import progress as _progress
from ..data import Dataset
from ..errors import CompressionError, RecipeError
from .recipe import Training

# model -> the from_logits a caller gave compile_for (used only for data without a resolved task).
_FROM_LOGITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    """Give ``model`` the step's optimizer; :func:`fit` adds the loss of the data's task.

    ``from_logits`` matters only for data without a resolved task (a classifier): None reads it from the model.
    """
    model.compile(optimizer=optimizer(training))
    with contextlib.suppress(TypeError):  # not weak-referenceable: fit reads the model instead
        _FROM_LOGITS[model] = from_logits


def _per_output(model: Any, values: list[Any]) -> Any:
    """A list an output, as a dict for a model built with a dict of outputs (Keras wants the same structure)."""
    from ..tasks import output_keys

    keys = output_keys(model)
    return dict(zip(keys, values, strict=True)) if keys is not None else values


def _losses(model: Any, data: Dataset) -> Any:
    if data.task is not None:
        losses = data.task.keras_losses(model)
        return _per_output(model, losses) if data.task.multi else losses[0]
    from_logits = _FROM_LOGITS.get(model)
    if from_logits is None:
        from_logits = not ends_in_softmax(model)
    return _tf.keras().losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def fit(model: Any, data: Dataset, training: Training, *, callbacks: list | None = None, seed: int = 0) -> Any:
    keras = _tf.keras()
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=getattr(model, "optimizer", None) or optimizer(training), loss=_losses(model, data))
    targets = data.y_train
    if data.task is not None:
        targets = data.task.targets(data, "train")
        targets = _per_output(model, targets) if data.task.multi else targets
    try:
        return model.fit(
            data.x_train,
            targets,
            epochs=training.epochs,
            batch_size=training.batch_size,
            callbacks=[*(callbacks or []), *progress_callbacks(data, training)],
            verbose=0,
            shuffle=True,
        )
    except (TypeError, ValueError) as exc:
        if data.task is None or data.task.loss is None:
            raise
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CompressionError(
            f"your loss {data.task.loss_name} failed in training: {first[:200]}",
            "make it loss(y_true, y_pred) -> a tensor of TensorFlow ops",
        ) from None


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
    """Whether the model's (first) output is probabilities from a softmax rather than logits."""
    from ..tasks import output_activations

    return output_activations(model)[0] == "softmax"
