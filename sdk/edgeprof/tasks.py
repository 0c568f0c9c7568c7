"""Tasks: what each output of a model means, and so its loss, its metrics and the figure its "accuracy drop" is on.

``classification`` (softmax or logits over K classes; integer labels or one-hot rows), ``binary`` (one sigmoid unit
or logit; 0/1 labels), ``multilabel`` (one sigmoid unit or logit per label; 0/1 rows), ``regression`` (float
targets shaped like the output) and ``reconstruction`` (the target is the input; 0/1 anomaly labels on the test
split are optional and give the ROC AUC MLPerf Tiny scores anomaly detection by).

The task is stated (``--task``, ``task = "..."`` in a recipe, ``compress(task=...)``; per output as
``name=task``) or inferred from the model's output (softmax / sigmoid / linear, output shape against input shape)
and the targets (integers, one-hot, 0/1 multi-hot, floats, none, or equal to ``x``) where only one reading fits;
otherwise compress stops with one line asking for it. The resolved :class:`Task` travels on the
:class:`~edgeprof.data.Dataset`, which every step already receives: training, evaluation and the manifest all read
it from there, so the steps never need to know which task they train for.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import data_checks, metrics
from .data import Dataset, load_attribute
from .errors import DataError, RecipeError

TASKS = ("classification", "binary", "multilabel", "regression", "reconstruction")

# The figure that "accuracy" means for each task (the manifest's headline, check's accuracy_drop_pp, the report).
HEADLINE = {
    "classification": "accuracy",
    "binary": "accuracy",
    "multilabel": "f1_micro",
    "regression": "r2",
    "reconstruction": "mse",  # roc_auc when the test split carries normal and anomalous labels
}

# Layers that only move values around: the activation that decides an output's meaning sits before them.
_PASS_THROUGH = {
    "Reshape",
    "Flatten",
    "Permute",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "ActivityRegularization",
    "QuantizeLayer",
}
_ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu"}

TaskRequest = str | dict[str, str] | None


@dataclass(frozen=True)
class OutputTask:
    """The task of one model output: its name and shape, the activation it ends in, and why this task."""

    name: str
    task: str
    shape: tuple[int, ...]
    activation: str
    from_logits: bool
    stated: bool
    reason: str
    soft_labels: bool = False  # classification on probability rows: categorical cross-entropy

    @property
    def classes(self) -> int | None:
        return int(self.shape[-1]) if self.task in ("classification", "multilabel") else None

    def loss_name(self) -> str:
        logits = " on logits" if self.from_logits else ""
        return {
            "classification": ("categorical" if self.soft_labels else "sparse categorical") + " cross-entropy" + logits,
            "binary": "binary cross-entropy" + logits,
            "multilabel": "binary cross-entropy" + logits,
            "regression": "mean squared error",
            "reconstruction": "mean squared error against the input",
        }[self.task]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "shape": list(self.shape),
            "activation": self.activation,
            "from_logits": self.from_logits,
            "classes": self.classes,
            "stated": self.stated,
            "reason": self.reason,
            "loss": self.loss_name(),
        }


@dataclass(frozen=True)
class Task:
    """Every output's task, the user's loss and metric if any, and what the test split's labels allow."""

    outputs: tuple[OutputTask, ...]
    loss: Callable | None = None
    loss_name: str | None = None
    metric: Callable | None = None
    metric_name: str | None = None
    anomaly_auc: bool = False  # reconstruction: y_test holds normal and anomalous samples
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        kinds = {o.task for o in self.outputs}
        return kinds.pop() if len(kinds) == 1 else "multi-output"

    @property
    def multi(self) -> bool:
        return len(self.outputs) > 1

    @property
    def classes(self) -> int | None:
        return self.outputs[0].classes if not self.multi and self.outputs[0].task == "classification" else None

    def headline(self) -> metrics.Figure:
        """The figure that stands for "accuracy" on this task: what check's accuracy drop and the report read."""
        if self.metric is not None:
            name = self.metric_name or "metric"
            return metrics.Figure(name, name, bool(getattr(self.metric, "higher_is_better", True)), fraction=False)
        first = self.outputs[0]
        key = "roc_auc" if first.task == "reconstruction" and self.anomaly_auc else HEADLINE[first.task]
        return metrics.figure(f"{first.name}/{key}" if self.multi else key)

    def _per_output(self, y: Any) -> list[Any]:
        return list(y) if self.multi else [y]

    def targets(self, data: Dataset, split: str = "train") -> Any:
        """What the loss compares the outputs with: the labels, or the inputs for a reconstruction output."""
        x = getattr(data, f"x_{split}")
        ys = self._per_output(getattr(data, f"y_{split}"))
        found = [x if o.task == "reconstruction" else y for o, y in zip(self.outputs, ys, strict=True)]
        return found if self.multi else found[0]

    def keras_losses(self, model: Any) -> list[Any]:
        """One Keras loss an output; logits or probabilities as the model being trained ends (QAT wraps it)."""
        from . import _tf

        keras = _tf.keras()
        if self.loss is not None:
            loss = self.loss() if inspect.isclass(self.loss) else self.loss
            return [loss] * len(self.outputs)
        activations = output_activations(model)
        losses = []
        for output, activation in zip(self.outputs, activations, strict=True):
            from_logits = output.from_logits
            if activation != "unknown" and output.task in ("classification", "binary", "multilabel"):
                from_logits = activation != ("softmax" if output.task == "classification" else "sigmoid")
            if output.task == "classification":
                if output.soft_labels:
                    losses.append(keras.losses.CategoricalCrossentropy(from_logits=from_logits))
                else:
                    losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
            elif output.task in ("binary", "multilabel"):
                losses.append(keras.losses.BinaryCrossentropy(from_logits=from_logits))
            else:
                losses.append(keras.losses.MeanSquaredError())
        return losses

    def evaluate(self, data: Dataset, outputs: list[np.ndarray]) -> dict[str, float]:
        """The task's metrics on the test split from the model's outputs (one array an output, in output order)."""
        if len(outputs) != len(self.outputs):
            raise DataError(
                f"the model gave {len(outputs)} outputs where {len(self.outputs)} were expected",
                "check that the exported model keeps every output",
            )
        results: dict[str, float] = {}
        ys = self._per_output(data.y_test)
        for output, y, predicted in zip(self.outputs, ys, outputs, strict=True):
            if output.task == "classification":
                found = metrics.classification(y, predicted)
            elif output.task == "binary":
                found = metrics.binary(y, predicted, from_logits=output.from_logits)
            elif output.task == "multilabel":
                found = metrics.multilabel(y, predicted, from_logits=output.from_logits)
            elif output.task == "regression":
                found = metrics.regression(y, predicted)
            else:
                found = metrics.reconstruction(data.x_test, predicted, None if self.multi else y)
            prefix = f"{output.name}/" if self.multi else ""
            results.update({prefix + k: v for k, v in found.items() if k != "samples"})
        if self.metric is not None:
            truth = self.targets(data, "test")
            try:
                value = self.metric(truth, outputs if self.multi else outputs[0])
            except Exception as exc:  # noqa: BLE001 - the user's code: name it instead of a traceback
                raise RecipeError(
                    f"your metric {self.metric_name} raised {type(exc).__name__}: {str(exc)[:200]}",
                    "make it metric(y_true, y_pred) -> float on numpy arrays",
                ) from None
            try:
                results[self.metric_name or "metric"] = float(value)
            except (TypeError, ValueError):
                raise DataError(
                    f"the metric {self.metric_name} returned {type(value).__name__}, not a number",
                    "return one float from metric(y_true, y_pred)",
                ) from None
        results["samples"] = len(data.x_test)
        return results

    def to_dict(self) -> dict[str, Any]:
        head = self.headline()
        return {
            "name": self.name,
            "outputs": [o.to_dict() for o in self.outputs],
            "loss": self.loss_name or ", ".join(o.loss_name() for o in self.outputs),
            "user_loss": self.loss_name,
            "user_metric": self.metric_name,
            "headline": {"metric": head.key, "label": head.label, "higher_is_better": head.higher_is_better},
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """One line for the summary: the task of each output and why."""
        parts = []
        for o in self.outputs:
            how = "stated" if o.stated else f"inferred: {o.reason}"
            parts.append(f"{o.name}: {o.task} ({how})" if self.multi else f"{o.task} ({how})")
        return "; ".join(parts + list(self.notes))


# ---------------------------------------------------------------------------------------------------------------
# Reading a model's outputs


def _activation_name(activation: Any) -> str:
    while hasattr(activation, "activation") and not isinstance(activation, str):  # QAT's QuantizeAwareActivation
        activation = activation.activation
    if isinstance(activation, str):
        return activation
    return str(getattr(activation, "__name__", "unknown"))


def _activation_of(tensor: Any) -> str:
    """softmax, sigmoid, linear, relu, ... for the layer that made ``tensor``, through reshapes and wrappers."""
    from .compress.analysis import unwrap

    history = getattr(tensor, "_keras_history", None)
    layer = history[0] if history else None
    for _ in range(32):
        if layer is None:
            return "unknown"
        inner = unwrap(layer)
        kind = type(inner).__name__
        if kind in _ACTIVATION_LAYERS:
            return _ACTIVATION_LAYERS[kind]
        if hasattr(inner, "activation") and inner.activation is not None:
            return _activation_name(inner.activation)
        if kind not in _PASS_THROUGH:
            return "unknown"
        inbound = getattr(layer, "input", None)
        history = getattr(inbound, "_keras_history", None)
        layer = history[0] if history else None
    return "unknown"


def output_activations(model: Any) -> list[str]:
    outputs = list(model.outputs or [])
    if not outputs:
        return ["unknown"]
    return [_activation_of(t) for t in outputs]


def output_keys(model: Any) -> list[str] | None:
    """The keys of a model built with a dict of outputs, in its output order (Keras flattens dicts by sorted key)."""
    nested = getattr(model, "_nested_outputs", None)
    return sorted(str(k) for k in nested) if isinstance(nested, dict) else None


def model_outputs(model: Any) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, per-sample shape, activation) of each output, in the model's output order."""
    names = list(model.output_names)
    shapes = [tuple(int(d) if d is not None else -1 for d in t.shape[1:]) for t in model.outputs]
    return list(zip(names, shapes, output_activations(model), strict=True))


# ---------------------------------------------------------------------------------------------------------------
# Matching targets to outputs, and inferring a task


def _match(y: Any, names: list[str], label: str, keys: list[str] | None = None) -> list[np.ndarray | None]:
    """The targets of each output, in output order, from an array, a list or a dict keyed by output name (or by
    the key of a dict-output model, or by position)."""
    if y is None:
        return [None] * len(names)
    if isinstance(y, dict):
        by_index = {str(i): name for i, name in enumerate(names)}
        by_index.update(dict(zip(keys or [], names, strict=False)))
        keyed = {by_index.get(k, k): v for k, v in y.items()}
        unknown = sorted(set(keyed) - set(names))
        if unknown:
            raise DataError(
                f"the data names targets {', '.join(f'{label}_{k}' for k in unknown)} but the model's outputs are "
                f"{', '.join(names)}",
                "name each target after its output: " + ", ".join(f"{label}_{n}" for n in names),
            )
        return [keyed.get(name) for name in names]
    if isinstance(y, (list, tuple)):
        if len(y) != len(names):
            raise DataError(
                f"{label} holds {len(y)} target arrays but the model has {len(names)} outputs ({', '.join(names)})",
                "give one target array per output, in the model's output order",
            )
        return list(y)
    if len(names) > 1:
        raise DataError(
            f"the model has {len(names)} outputs ({', '.join(names)}) but the data has a single {label}",
            "give one array per output: " + ", ".join(f"{label}_{n}" for n in names),
        )
    return [y]


def _kind(y: np.ndarray | None, x: np.ndarray) -> str:
    if y is None:
        return "absent"
    if y.shape == x.shape and np.array_equal(y, x):
        return "inputs"
    finite = np.all(np.isfinite(y)) if y.dtype.kind == "f" else True
    integer = y.dtype.kind in "iub" or (finite and np.all(y == np.round(y)))
    if not integer:
        return "floats"
    if y.ndim == 1 or y.shape[1:] == (1,):
        return "0/1 labels" if np.isin(y, (0, 1)).all() else "integer labels"
    if y.ndim == 2 and np.isin(y, (0, 1)).all():
        return "one-hot rows" if np.all(y.sum(axis=1) == 1) else "0/1 multi-hot rows"
    return "integer arrays"


def _fits(y: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether targets shaped like ``y`` can belong to an output of ``shape`` (as values or as class labels)."""
    per_sample = tuple(y.shape[1:])
    return per_sample in (shape, shape[:-1]) or (per_sample in ((), (1,)) and len(shape) == 1)


def _ask(name: str, desc: str, kind: str, choices: tuple[str, str], multi: bool) -> DataError:
    flag = (lambda t: f"--task {name}={t}") if multi else (lambda t: f"--task {t}")
    return DataError(
        f"cannot tell the task of output {name!r} ({desc}) from {kind}: {choices[0]} or {choices[1]}?",
        f'state it with {flag(choices[0])} or {flag(choices[1])} (task = "..." in a recipe, compress(task=...))',
    )


def infer(
    name: str, shape: tuple[int, ...], activation: str, y: np.ndarray | None, x: np.ndarray, multi: bool = False
) -> tuple[str, str]:
    """(task, why) for one output, or a DataError asking the user when two readings fit."""
    kind = _kind(y, x)
    units = int(np.prod(shape))
    same_as_input = shape == tuple(x.shape[1:])
    desc = f"{activation} output of shape {list(shape)}"
    if kind == "absent":
        if same_as_input:
            return "reconstruction", "no y_train, and the output has the input's shape"
        raise DataError(
            f"the data has no targets for output {name!r} ({desc}); only a model whose output has its input's shape "
            "(a reconstruction model) trains without them",
            "give y_train and y_test (see the README's Data paragraph)",
        )
    if kind == "inputs" and same_as_input:
        return "reconstruction", "the targets are the inputs"
    assert y is not None
    if same_as_input and kind == "0/1 labels" and activation != "softmax":
        if not _fits(y, shape) or activation == "sigmoid":
            return "reconstruction", "the output has the input's shape and y holds one 0/1 (anomaly) label a sample"
        raise _ask(name, desc + ", the input's shape", "0/1 labels", ("reconstruction", "classification"), multi)
    if activation == "softmax":
        return "classification", "softmax output"
    if activation == "sigmoid":
        if units == 1:
            return "binary", "one sigmoid unit"
        return "multilabel", f"{units} sigmoid units"
    classes = shape[-1] if shape else 1
    one_value = y.ndim == 1 or y.shape[1:] == (1,)
    if activation == "linear" and len(shape) == 1 and classes >= 2:
        if one_value:  # one target a sample for K outputs: only class labels fit (fractions are refused later)
            return "classification", f"{classes} linear units (logits) and one label a sample"
        if kind == "one-hot rows":
            return "classification", f"{classes} linear units (logits) and one-hot rows"
    if activation == "linear":
        if kind == "0/1 labels" and units == 1:
            raise _ask(name, desc, "0/1 labels", ("binary", "regression"), multi)
        if kind == "0/1 multi-hot rows":
            raise _ask(name, desc, "0/1 rows", ("multilabel", "regression"), multi)
    if kind == "floats":
        return "regression", f"{activation} output and float targets"
    if (kind == "integer labels" and units == 1) or kind == "integer arrays":
        return "regression", f"{activation} output and integer targets beyond 0/1"
    raise _ask(name, desc, kind, ("classification", "regression"), multi)


def _check_stated(name: str, task: str, shape: tuple[int, ...], input_shape: tuple[int, ...]) -> None:
    units = int(np.prod(shape))
    if task == "classification" and (not shape or shape[-1] < 2):
        raise DataError(
            f"output {name!r} has {units} unit(s), too few for classification (one unit a class)",
            "use --task binary for one sigmoid unit",
        )
    if task == "binary" and units != 1:
        raise DataError(
            f"output {name!r} has {units} units but a binary output has one (a sigmoid or a logit)",
            "use --task classification for a softmax over the classes, or --task multilabel for one unit a label",
        )
    if task == "reconstruction" and shape != input_shape:
        raise DataError(
            f"output {name!r} has shape {list(shape)}, not the input's {list(input_shape)}, so it cannot "
            "reconstruct its input",
            "state the task the output has (e.g. --task regression)",
        )


def _request(task: TaskRequest, names: list[str]) -> dict[str, str]:
    """``"regression"`` for every output, or ``{"age": "regression", ...}`` (``"name=task"`` strings too)."""
    if task is None:
        return {}
    if isinstance(task, str) and "=" in task:
        task = dict(part.split("=", 1) for part in task.split(","))
    if isinstance(task, str):
        wanted = dict.fromkeys(names, task)
    elif isinstance(task, dict):
        wanted = {str(k).strip(): str(v).strip() for k, v in task.items()}
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise RecipeError(
                f"task names output(s) {', '.join(unknown)}, but the model's outputs are {', '.join(names)}",
                "name outputs as the model does, e.g. --task " + f"{names[0]}=regression",
            )
    else:
        raise RecipeError(f"task {task!r} is not a task name or a table of them", f"use one of: {', '.join(TASKS)}")
    for value in wanted.values():
        check_task_name(value)
    return wanted


def check_task_name(task: str) -> str:
    if task not in TASKS:
        raise RecipeError(f"unknown task {task!r}", f"use one of: {', '.join(TASKS)}")
    return task


def _user_callable(value: Any, what: str) -> tuple[Callable | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        value = load_attribute(value, what, RecipeError)
        name = getattr(value, "__name__", what)
    else:
        name = getattr(value, "__name__", type(value).__name__)
    if not callable(value):
        raise RecipeError(f"the {what} {name} is not callable", f"give a function {what}(y_true, y_pred)")
    return value, str(name)


def resolve(
    model: Any, data: Dataset, task: TaskRequest = None, *, loss: Any = None, metric: Any = None
) -> tuple[Task, Dataset]:
    """The task of every output of ``model`` on ``data``, and the data with its targets checked and ready.

    Raises a one-line :class:`DataError` for targets that do not fit the model (labels out of range, floats for a
    classifier, one-hot width, shapes) and when the task cannot be told apart and was not stated.
    """
    specs = model_outputs(model)
    names = [name for name, _, _ in specs]
    multi = len(names) > 1
    input_shape = tuple(data.input_shape)
    wanted = _request(task, names)
    keys = output_keys(model)
    ys_train = _match(data.y_train, names, "y_train", keys)
    ys_test = _match(data.y_test, names, "y_test", keys)
    outputs = []
    for (name, shape, activation), y in zip(specs, ys_train, strict=True):
        if name in wanted:
            chosen, stated, why = wanted[name], True, "stated"
            _check_stated(name, chosen, shape, input_shape)
        else:
            chosen, why = infer(name, shape, activation, y, data.x_train, multi)
            stated = False
        if chosen == "classification":
            from_logits = activation != "softmax"
        elif chosen in ("binary", "multilabel"):
            from_logits = activation != "sigmoid"
        else:
            from_logits = False
        outputs.append(OutputTask(name, chosen, shape, activation, from_logits, stated, why))
    loss_fn, loss_name = _user_callable(loss, "loss")
    metric_fn, metric_name = _user_callable(metric, "metric")
    resolved = Task(tuple(outputs), loss_fn, loss_name, metric_fn, metric_name)
    return prepare(resolved, data, ys_train, ys_test)


def prepare(
    task: Task, data: Dataset, ys_train: list[np.ndarray | None], ys_test: list[np.ndarray | None]
) -> tuple[Task, Dataset]:
    """Check each output's targets against its task and turn them into what its loss and metrics need."""
    x_train, origin = data.x_train, data.origin
    prepared: dict[str, list[Any]] = {"train": [], "test": []}
    outputs = list(task.outputs)
    notes = list(task.notes)
    anomaly_auc = False
    for i, output in enumerate(outputs):
        for split, y in (("train", ys_train[i]), ("test", ys_test[i])):
            label = f"y_{split}" if not task.multi else f"y_{split}_{output.name}"
            x = getattr(data, f"x_{split}")

            def locate(index: int, s: str = split, lab: str = label) -> str:
                return data.locate(s, index, lab)

            if output.task == "reconstruction":
                if y is not None and y.shape == x.shape and np.array_equal(y, x):
                    y = None
                if y is not None and (task.multi or y.shape == x.shape):
                    raise DataError(
                        f"{label} differs from x_{split}, but output {output.name!r} reconstructs its input",
                        f"leave {label} out, give 0/1 anomaly labels, or state --task regression for targets "
                        "other than the input (a denoising model)",
                    )
                if y is not None:
                    y = data_checks.check_anomaly_labels(y, label, locate)
                    if split == "train":  # train on normal samples only, as MLPerf Tiny's autoencoder is trained
                        normal = y == 0
                        if not normal.any():
                            raise DataError(
                                f"every sample of {label} is marked anomalous (1); nothing normal to train on",
                                "mark normal samples 0",
                            )
                        if not normal.all():
                            x_train = x_train[normal]
                            if origin is not None:
                                origin = {**origin, "train": origin["train"][normal]}
                            notes.append(f"trained on the {int(normal.sum())} normal samples of {len(y)} (y_train = 0)")
                        y = None
                    else:
                        anomaly_auc = len(np.unique(y)) == 2
                prepared[split].append(y)
                continue
            if y is None:
                raise DataError(
                    f"the data has no {label} for output {output.name!r} ({output.task})",
                    f"give {label} (see the README's Data paragraph)",
                )
            if output.task == "classification":
                y = data_checks.check_classification(y, label, locate, output)
                if split == "train" and y.dtype.kind == "f":
                    outputs[i] = output = dataclasses.replace(output, soft_labels=True)
            elif output.task in ("binary", "multilabel"):
                y = data_checks.check_binary(y, label, locate, output)
            else:
                y = data_checks.check_regression(y, label, locate, output)
            prepared[split].append(y)
    task = dataclasses.replace(task, outputs=tuple(outputs), anomaly_auc=anomaly_auc, notes=tuple(notes))

    def pack(values: list[Any]) -> Any:
        return values if task.multi else values[0]

    ready = dataclasses.replace(
        data,
        x_train=x_train,
        y_train=pack(prepared["train"]),
        y_test=pack(prepared["test"]),
        task=task,
        origin=origin,
    )
    return task, ready
