"""The ``distill`` step: train a smaller student model, given by the user, from the teacher's soft labels.

Hinton-style knowledge distillation: the loss is ``alpha`` × cross-entropy with the true labels plus
(1 − ``alpha``) × T² × KL(teacher ‖ student) on outputs softened by the temperature T. The teacher is the model as
it stands at this step (frozen); its logits are computed once. The student comes from a Keras file or from
``module:function`` returning a tf_keras model (called with ``input_shape`` and ``classes`` when it takes them),
and replaces the teacher for the steps that follow.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError, ModelError, RecipeError
from . import models, training
from .recipe import Step, Training, register_step


@register_step
@dataclass
class DistillStep(Step):
    """``student``: a .keras/.h5/SavedModel path or ``module:function``; ``temperature`` softens both outputs;
    ``alpha`` weighs the true labels against the teacher (0 = teacher only)."""

    kind: ClassVar[str] = "distill"
    student: str = ""
    temperature: float = 4.0
    alpha: float = 0.1

    @classmethod
    def default_training(cls) -> Training:
        # A student learns from scratch: more epochs and a higher rate than fine-tuning.
        return Training(epochs=10, learning_rate=2e-3)

    def __post_init__(self) -> None:
        if self.training == Training():
            self.training = self.default_training()

    def describe(self) -> str:
        return f"distill → {self.student}"

    def validate(self, where: str) -> None:
        if not self.student:
            raise RecipeError(f"{where}: a distill step needs a student", 'set student = "student.keras"')
        if self.temperature <= 0:
            raise RecipeError(f"{where}: temperature must be > 0", "use e.g. temperature = 4")
        if not 0 <= self.alpha <= 1:
            raise RecipeError(f"{where}: alpha must be in [0, 1]", "use e.g. alpha = 0.1")


def load_student(spec: str, input_shape: tuple[int, ...], classes: int) -> Any:
    keras = _tf.keras()
    module_name, sep, attr = spec.partition(":")
    if sep and not spec.endswith((".keras", ".h5")) and "/" not in module_name:
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelError(
                f"cannot import the student {spec} ({exc})", "give module:function importable here"
            ) from None
        params = inspect.signature(factory).parameters
        kwargs = {k: v for k, v in (("input_shape", input_shape), ("classes", classes)) if k in params}
        student = factory(**kwargs)
        if not isinstance(student, keras.Model):
            raise ModelError(
                f"{spec} returned {type(student).__name__}, not a tf_keras model", "return a tf_keras.Model"
            )
        models.check_supported(student)
        return student
    student, _ = models.load_model(spec)
    return models.clone(student)


def _logits(outputs: Any, softmax_output: bool) -> Any:
    tf = _tf.tensorflow()
    return tf.math.log(tf.clip_by_value(outputs, 1e-7, 1.0)) if softmax_output else outputs


def apply(model: Any, step: DistillStep, data: Dataset, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    tf = _tf.tensorflow()
    keras = _tf.keras()
    task = data.task
    if task is not None and (task.name != "classification" or task.multi or task.outputs[0].soft_labels):
        raise CompressionError(
            f"distill learns from a classifier's soft labels; this model's task is {task.name}",
            "leave the distill step out for this model",
        )
    student = load_student(step.student, data.input_shape, data.num_classes)
    if tuple(student.input_shape[1:]) != data.input_shape or student.output_shape[-1] != data.num_classes:
        raise ModelError(
            f"the student takes {list(student.input_shape[1:])} → {student.output_shape[-1]} classes, but the data "
            f"is {list(data.input_shape)} → {data.num_classes} classes",
            "build the student for the teacher's input and classes",
        )
    teacher_softmax = training.ends_in_softmax(model)
    student_softmax = training.ends_in_softmax(student)
    teacher_logits = model.predict(data.x_train, batch_size=256, verbose=0).astype(np.float32)
    if teacher_softmax:
        teacher_logits = np.log(np.clip(teacher_logits, 1e-7, 1.0))
    classes = data.num_classes
    temperature, alpha = float(step.temperature), float(step.alpha)

    def loss(target: Any, outputs: Any) -> Any:
        labels = tf.cast(target[:, 0], tf.int32)
        soft = tf.nn.softmax(target[:, 1:] / temperature)
        logits = _logits(outputs, student_softmax)
        hard = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        distil = keras.losses.kl_divergence(soft, tf.nn.softmax(logits / temperature)) * temperature**2
        return alpha * hard + (1 - alpha) * distil

    def accuracy(target: Any, outputs: Any) -> Any:
        return keras.metrics.sparse_categorical_accuracy(tf.cast(target[:, 0], tf.int32), outputs)

    student.compile(optimizer=training.optimizer(step.training), loss=loss, metrics=[accuracy])
    targets = np.concatenate([data.y_train[:, None].astype(np.float32), teacher_logits], axis=1)
    assert targets.shape[1] == classes + 1
    keras.utils.set_random_seed(seed)
    student.fit(
        data.x_train,
        targets,
        epochs=step.training.epochs,
        batch_size=step.training.batch_size,
        verbose=0,
        shuffle=True,
        callbacks=training.progress_callbacks(data, step.training),
    )
    # A plain model (no custom loss) for the steps that follow.
    result = keras.models.clone_model(student)
    result.set_weights(student.get_weights())
    teacher_params, student_params = int(model.count_params()), int(result.count_params())
    if student_params >= teacher_params:
        raise CompressionError(
            f"the student has {student_params:,} parameters, not fewer than the teacher's {teacher_params:,}",
            "give a smaller student",
        )
    return result, {
        "student": step.student,
        "temperature": temperature,
        "alpha": alpha,
        "teacher_params": teacher_params,
        "student_params": student_params,
        "params_ratio": teacher_params / student_params,
        "text": f"student {student_params:,} params ({teacher_params / student_params:.1f}x fewer than the teacher)",
    }
