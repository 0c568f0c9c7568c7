"""Recipes: an ordered list of compression steps, from a TOML file or from CLI flags.

    [[step]]
    kind = "prune"
    sparsity = 0.8
    epochs = 4

    [[step]]
    kind = "cluster"
    clusters = 16

    [[step]]
    kind = "quantize"
    mode = "int8"

Every field has a documented default; unknown fields are refused, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .. import _toml
from ..errors import RecipeError

QUANTIZE_MODES = ("dynamic", "int8", "float16", "int16x8", "qat", "pqat", "cqat", "pcqat")
PTQ_MODES = ("dynamic", "int8", "float16", "int16x8")
PRUNE_POLICIES = ("all", "xnnpack")
XNNPACK_MIN_SPARSITY = 2 / 3 - 1e-9


@dataclass
class Training:
    """Fine-tuning settings shared by every step that trains."""

    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"


@dataclass
class Step:
    kind: ClassVar[str] = "step"
    layers: list[str] | None = None  # fnmatch patterns on layer names or class names; None = every layer
    exclude: list[str] = field(default_factory=list)
    training: Training = field(default_factory=Training)

    @classmethod
    def default_training(cls) -> Training:
        """The fine-tuning settings a recipe gets for the fields it leaves out."""
        return Training()

    def describe(self) -> str:
        return self.kind

    def validate(self, where: str) -> None:
        """Refuse values that cannot work, with the field named (each step adds its own checks)."""

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "training":
                data.update(dataclasses.asdict(value))
            else:
                data[f.name] = value
        return data


@dataclass
class PruneStep(Step):
    """Magnitude pruning with TF-MOT; ``structure`` is ``unstructured`` or ``M:N`` (e.g. ``2:4``: M zeros in every
    N consecutive input-channel weights, so the sparsity is M/N and ``sparsity`` is not used)."""

    kind: ClassVar[str] = "prune"
    sparsity: float = 0.5
    schedule: str = "polynomial"  # or "constant"
    begin_step: int = 0
    end_step: int | None = None  # None: aligned to the mask-update frequency, 3/4 into fine-tuning
    frequency: int | None = None  # None: about ten mask updates over the schedule
    structure: str = "unstructured"
    policy: str = "all"  # or "xnnpack": TF-MOT's PruneForLatencyOnXNNPack, sparse export for XNNPACK

    def describe(self) -> str:
        if self.structure != "unstructured":  # M:N fixes the sparsity at M/N
            return f"prune {self.structure}"
        return f"prune {self.sparsity:.0%}" + (" for XNNPACK" if self.policy == "xnnpack" else "")


@dataclass
class ClusterStep(Step):
    """Weight clustering with TF-MOT."""

    kind: ClassVar[str] = "cluster"
    clusters: int = 16
    init: str = "kmeans++"  # kmeans++, linear, density, random
    per_channel: bool = False
    preserve_sparsity: bool = True

    def describe(self) -> str:
        return f"cluster {self.clusters}"


@dataclass
class QuantizeStep(Step):
    """Post-training quantisation at export (``dynamic``, ``int8``, ``float16``, ``int16x8``) or
    quantisation-aware training (``qat``, ``pqat``, ``cqat``, ``pcqat``) followed by an int8 export.

    ``pqat`` keeps the zeros of a pruned model, ``cqat`` the clusters of a clustered one and ``pcqat`` both
    (TF-MOT's collaborative optimisation schemes). ``representative_samples`` training samples calibrate int8;
    ``int8_io`` makes the model's input and output int8 too (for integer-only accelerators).
    """

    kind: ClassVar[str] = "quantize"
    mode: str = "int8"
    representative_samples: int = 200
    int8_io: bool = False

    def describe(self) -> str:
        return f"quantize {self.mode}"


STEP_TYPES: dict[str, type[Step]] = {cls.kind: cls for cls in (PruneStep, ClusterStep, QuantizeStep)}


def register_step(cls: type[Step]) -> type[Step]:
    """Make a step kind available to recipes (used by steps defined in their own modules)."""
    STEP_TYPES[cls.kind] = cls
    return cls


def _build_step(raw: dict[str, Any], where: str) -> Step:
    raw = dict(raw)
    kind = raw.pop("kind", None)
    if kind not in STEP_TYPES:
        raise RecipeError(f"{where}: unknown step kind {kind!r}", f"use one of: {', '.join(sorted(STEP_TYPES))}")
    cls = STEP_TYPES[kind]
    training_fields = {f.name for f in dataclasses.fields(Training)}
    step_fields = {f.name for f in dataclasses.fields(cls)} - {"training"}
    unknown = set(raw) - training_fields - step_fields
    if unknown:
        raise RecipeError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))} for a {kind} step",
            f"valid fields: {', '.join(sorted(step_fields | training_fields))}",
        )
    given = {k: raw.pop(k) for k in list(raw) if k in training_fields}
    training = dataclasses.replace(cls.default_training(), **given)
    try:
        step = cls(training=training, **raw)
    except TypeError as exc:
        raise RecipeError(f"{where}: {exc}", "check the step's fields") from None
    validate_step(step, where)
    return step


def validate_step(step: Step, where: str = "recipe") -> None:
    if step.training.epochs < 0 or step.training.batch_size < 1 or step.training.learning_rate <= 0:
        raise RecipeError(f"{where}: epochs must be ≥ 0, batch_size ≥ 1 and learning_rate > 0", "fix the values")
    if isinstance(step, PruneStep):
        if not 0.0 < step.sparsity < 1.0:
            raise RecipeError(f"{where}: sparsity {step.sparsity} is outside (0, 1)", "use e.g. sparsity = 0.8")
        if step.schedule not in ("polynomial", "constant"):
            raise RecipeError(f"{where}: unknown schedule {step.schedule!r}", "use polynomial or constant")
        if step.policy not in PRUNE_POLICIES:
            raise RecipeError(f"{where}: unknown policy {step.policy!r}", f"use one of: {', '.join(PRUNE_POLICIES)}")
        if step.policy == "xnnpack" and (step.sparsity < XNNPACK_MIN_SPARSITY or step.structure != "unstructured"):
            raise RecipeError(
                f"{where}: XNNPACK runs its sparse kernels only when at least 2/3 of the 1×1 convolution weights are "
                f'zero, so policy = "xnnpack" needs unstructured sparsity ≥ 0.67, not {step.sparsity:g}'
                + (f" ({step.structure})" if step.structure != "unstructured" else ""),
                "use e.g. sparsity = 0.8 (Fast Sparse ConvNets used 0.8-0.9)",
            )
    if isinstance(step, ClusterStep) and not 2 <= step.clusters <= 256:
        raise RecipeError(f"{where}: clusters must be between 2 and 256", "use e.g. clusters = 16")
    if isinstance(step, QuantizeStep):
        if step.mode not in QUANTIZE_MODES:
            raise RecipeError(
                f"{where}: unknown quantize mode {step.mode!r}", f"use one of: {', '.join(QUANTIZE_MODES)}"
            )
        if step.representative_samples < 1:
            raise RecipeError(f"{where}: representative_samples must be ≥ 1", "use e.g. representative_samples = 200")
        if step.int8_io and step.mode not in ("int8", "qat", "pqat", "cqat", "pcqat"):
            raise RecipeError(f"{where}: int8_io needs a full-integer mode, not {step.mode}", 'use mode = "int8"')
    if isinstance(step, PruneStep) and step.structure != "unstructured":
        from .prune import parse_structure

        parse_structure(step.structure)
    step.validate(where)


@dataclass
class Recipe:
    """Steps in order; ``runtime`` (e.g. ``tflite-runtime-2.14``) is the runtime the board will load the model with.

    ``task`` (``"regression"``, or ``{output = "task"}``), ``loss`` and ``metric`` (``module:function``) say what the
    model predicts and how to train and judge it (:mod:`edgeprof.tasks`); left out, the task is inferred.
    """

    steps: list[Step] = field(default_factory=list)
    seed: int = 0
    runtime: str | None = None
    task: str | dict[str, str] | None = None
    loss: str | None = None
    metric: str | None = None
    latency: bool | None = None  # measure the latency verdict; None: when a step is there for speed

    def __post_init__(self) -> None:
        quantize = [i for i, s in enumerate(self.steps) if isinstance(s, QuantizeStep)]
        if len(quantize) > 1:
            raise RecipeError("a recipe can hold only one quantize step", "keep the last one")
        if quantize and quantize[0] != len(self.steps) - 1:
            raise RecipeError("the quantize step must come last", "move it to the end of the recipe")
        if quantize and self.xnnpack_sparse:
            raise RecipeError(
                f'XNNPACK\'s sparse inference runs float models only, so a prune step with policy = "xnnpack" '
                f"cannot be followed by quantize {self.steps[-1].mode}",
                "drop the quantize step (the export stores the pruned weights sparse, in float32)",
            )

    @property
    def xnnpack_sparse(self) -> bool:
        """A prune step asked for XNNPACK's sparse inference: the export stores the weights sparse."""
        return any(isinstance(s, PruneStep) and s.policy == "xnnpack" for s in self.steps)

    @property
    def wants_latency(self) -> bool:
        """Measure the latency verdict: as asked, else when a step is there to make the model faster."""
        if self.latency is not None:
            return self.latency
        return self.xnnpack_sparse or any(s.kind == "channels" for s in self.steps)

    @property
    def quantize(self) -> QuantizeStep | None:
        return self.steps[-1] if self.steps and isinstance(self.steps[-1], QuantizeStep) else None

    def describe(self) -> str:
        return " → ".join(s.describe() for s in self.steps) or "float32 export"

    def to_dict(self) -> dict[str, Any]:
        found = {"seed": self.seed, "runtime": self.runtime, "steps": [s.to_dict() for s in self.steps]}
        if self.latency is not None:
            found["latency"] = self.latency
        for key in ("task", "loss", "metric"):
            value = getattr(self, key)
            if value is not None:
                found[key] = value if isinstance(value, (str, dict)) else getattr(value, "__name__", repr(value))
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "recipe") -> Recipe:
        unknown = set(data) - {"step", "steps", "seed", "runtime", "task", "loss", "metric", "latency"}
        if unknown:
            raise RecipeError(
                f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}",
                "a recipe holds [[step]] tables and optional seed, runtime, task, loss, metric and latency keys",
            )
        if data.get("latency") is not None and not isinstance(data["latency"], bool):
            raise RecipeError(f"{where}: latency must be true or false", "write latency = false to skip the verdict")
        task = data.get("task")
        if task is not None:
            from ..tasks import check_task_name

            if isinstance(task, str):
                check_task_name(task)
            elif isinstance(task, dict):
                for value in task.values():
                    check_task_name(str(value))
            else:
                raise RecipeError(f"{where}: task must be a task name or a table of them", 'write task = "regression"')
        for key in ("loss", "metric"):
            if data.get(key) is not None and (not isinstance(data[key], str) or ":" not in data[key]):
                raise RecipeError(f'{where}: {key} must be "module:function"', f'write {key} = "mymodule:my_{key}"')
        raw_steps = data.get("step", data.get("steps", []))
        steps = [_build_step(raw, f"{where}, step {i + 1}") for i, raw in enumerate(raw_steps)]
        return cls(
            steps=steps,
            seed=int(data.get("seed", 0)),
            runtime=data.get("runtime"),
            task=task,
            loss=data.get("loss"),
            metric=data.get("metric"),
            latency=data.get("latency"),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> Recipe:
        try:
            data = _toml.load(path)
        except FileNotFoundError:
            raise RecipeError(f"recipe file {path} does not exist", "check --recipe") from None
        except _toml.TOMLDecodeError as exc:
            raise RecipeError(f"{path} is not valid TOML: {exc}", "fix the recipe file") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_flags(
        cls,
        *,
        prune: float | None = None,
        cluster: int | None = None,
        quantize: str | None = None,
        epochs: int | None = None,
        seed: int = 0,
        structure: str = "unstructured",
        representative_samples: int = 200,
        int8_io: bool = False,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        runtime: str | None = None,
        channels: float | None = None,
        policy: str = "all",
    ) -> Recipe:
        """The common cases as CLI flags: ``--prune 0.8 --cluster 16 --quantize int8``."""
        training = Training()
        if epochs is not None:
            training.epochs = epochs
        if batch_size is not None:
            training.batch_size = batch_size
        if learning_rate is not None:
            training.learning_rate = learning_rate
        steps: list[Step] = []
        if channels is not None:
            from .channels import ChannelsStep

            steps.append(ChannelsStep(ratio=channels, training=dataclasses.replace(training)))
        if prune is not None:
            steps.append(
                PruneStep(sparsity=prune, structure=structure, policy=policy, training=dataclasses.replace(training))
            )
        if cluster is not None:
            steps.append(
                ClusterStep(
                    clusters=cluster, preserve_sparsity=prune is not None, training=dataclasses.replace(training)
                )
            )
        if quantize is not None:
            steps.append(
                QuantizeStep(
                    mode=quantize,
                    representative_samples=representative_samples,
                    int8_io=int8_io,
                    training=dataclasses.replace(training),
                )
            )
        for i, step in enumerate(steps):
            validate_step(step, f"step {i + 1}")
        return cls(steps=steps, seed=seed, runtime=runtime)
