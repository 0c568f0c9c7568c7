"""The search space: which recipes ``edgeprof search`` may try, from a TOML file.

    seed = 0                          # the recipes' seed: every trial trains from the same start
    orders = [["channels", "quantize"], ["prune", "cluster", "quantize"]]   # optional: which steps, in which order

    [[step]]
    kind = "channels"
    optional = true                   # trials with and without this step
    ratio = { low = 0.25, high = 0.75, step = 0.25 }   # a range (int when low and high are ints; log = true)
    criterion = ["l1", "l2"]          # a choice
    epochs = 2                        # a fixed value

    [[step]]
    kind = "quantize"
    mode = ["dynamic", "int8"]

A field takes what a recipe's step takes (``edgeprof compress``'s recipe fields, plus ``epochs``, ``batch_size``,
``learning_rate``, ``optimizer``): a fixed value, a list of choices, a range table ``{low, high, step, log}``, or
``{choices = [...]}``. ``layers`` and ``exclude`` are lists themselves, so a choice between them is a list of lists
(``exclude = [[], ["conv2d_1"]]``). A table field (``ratios`` of ``channels``) holds one such value per key:
``ratios = { "block_1*" = { low = 0.1, high = 0.5 } }``. ``name`` tells two steps of one kind apart.

Every problem is one line naming the file, the step and the field: an unknown step or field, an empty range, a
value no recipe accepts (each range's ends and each choice are built into a real step and checked as ``compress``
checks them), so nothing is found wrong after the first trial trained.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _toml
from ..errors import EdgeprofError, RecipeError

TOP_LEVEL = {"step", "seed", "orders", "runtime", "task", "loss", "metric"}
STEP_META = {"kind", "name", "optional"}
RANGE_KEYS = {"low", "high", "step", "log"}
GRID_LIMIT = 100_000


class SpaceError(EdgeprofError):
    """The search space file is missing or malformed."""


@dataclass(frozen=True)
class Param:
    """One searched value: a choice, or a range (``kind`` is ``choice``, ``int`` or ``float``)."""

    name: str  # e.g. "prune.sparsity", "channels.ratios[block_1*]", "prune.use", "order"
    kind: str
    choices: tuple[Any, ...] = ()  # JSON texts for lists (Optuna's choices must be plain values)
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    encoded: bool = False  # choices are JSON texts of lists or tables

    def text(self) -> str:
        if self.kind == "choice":
            return "choices [" + ", ".join(_shown(c) for c in self.choices) + "]"
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{self.low:g}..{self.high:g}{step}{' log' if self.log else ''}"

    def values(self) -> list[Any]:
        """Every value, for the grid (refused for a continuous range)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.step is None and not (self.kind == "int" and not self.log):
            raise SpaceError(
                f"{self.name} is a continuous range ({self.text()}): a grid needs a finite set of values",
                f"give it a step (e.g. {{ low = {self.low:g}, high = {self.high:g}, step = ... }}) or choices, "
                "or use --sampler random/tpe/nsga2",
            )
        step = self.step or 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        if self.kind == "int":
            return [int(self.low + i * step) for i in range(count)]
        return [round(self.low + i * step, 12) for i in range(count)]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def decode(self, value: Any) -> Any:
        return json.loads(value) if self.encoded else value

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high, "step": self.step, "log": self.log}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class FieldSpec:
    """A step field: fixed, or searched (``param``); ``entries`` for a table field searched key by key."""

    fixed: Any = None
    param: Param | None = None
    entries: tuple[tuple[str, FieldSpec], ...] = ()

    @property
    def searched(self) -> bool:
        return self.param is not None or any(spec.searched for _, spec in self.entries)

    def text(self) -> str:
        if self.entries:
            return "{" + ", ".join(f"{k} = {s.text()}" for k, s in self.entries) + "}"
        return self.param.text() if self.param is not None else f"fixed {_shown(self.fixed)}"

    def params(self) -> list[Param]:
        if self.param is not None:
            return [self.param]
        return [p for _, spec in self.entries for p in spec.params()]

    def value(self, chosen: dict[str, Any]) -> Any:
        if self.entries:
            return {key: spec.value(chosen) for key, spec in self.entries}
        if self.param is None:
            return self.fixed
        return self.param.decode(chosen[self.param.name])


@dataclass(frozen=True)
class StepSpec:
    name: str
    kind: str
    optional: bool
    fields: tuple[tuple[str, FieldSpec], ...]

    @property
    def use(self) -> Param:
        return Param(f"{self.name}.use", "choice", (True, False))

    def params(self) -> list[Param]:
        return [p for _, spec in self.fields for p in spec.params()]

    def raw(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """The recipe's ``[[step]]`` table for these choices."""
        return {"kind": self.kind, **{name: spec.value(chosen) for name, spec in self.fields}}


@dataclass(frozen=True)
class Space:
    """A parsed, checked search space; :meth:`suggest` asks an Optuna trial for one recipe of it."""

    steps: tuple[StepSpec, ...]
    orders: tuple[tuple[str, ...], ...]  # step names in order; one order when the file gives none
    seed: int = 0
    top: tuple[tuple[str, Any], ...] = ()  # runtime, task, loss, metric: passed to every recipe
    source: str = "space"

    @property
    def order_param(self) -> Param | None:
        return Param("order", "choice", tuple(" > ".join(o) for o in self.orders)) if len(self.orders) > 1 else None

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.steps if s.name == name)

    def suggest(self, trial: Any, *, dormant: bool = False) -> dict[str, Any]:
        """The recipe (as ``Recipe.from_dict`` reads it) for the values the trial's sampler picks.

        By default only the parameters of the steps used are asked, so a trial's parameters are exactly what shaped
        its recipe (TPE models such a conditional space). With ``dormant`` every parameter is asked, those of steps
        left out too: a genetic algorithm (Optuna's NSGA-II) breeds only the parameters every trial has, and would
        otherwise draw each optional step's fields at random for ever. The recipe is the same either way."""
        chosen: dict[str, Any] = {}
        order = self.orders[0]
        if self.order_param is not None:
            chosen["order"] = self.order_param.suggest(trial)
            order = tuple(chosen["order"].split(" > "))
        steps = [self.step(name) for name in order]
        if dormant:
            steps += [s for s in self.steps if s.name not in order]
        for step in steps:
            if step.optional:
                chosen[step.use.name] = step.use.suggest(trial)
                if not chosen[step.use.name] and not dormant:
                    continue
            for param in step.params():
                chosen[param.name] = param.suggest(trial)
        return self.recipe(chosen)

    def shaping(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """Of a trial's parameters, those that shaped its recipe (without the dormant ones of steps left out)."""
        order = tuple(chosen["order"].split(" > ")) if "order" in chosen else self.orders[0]
        names = {"order"}
        for name in order:
            step = self.step(name)
            names.add(step.use.name)
            if not step.optional or chosen.get(step.use.name, True):
                names.update(p.name for p in step.params())
        return {k: v for k, v in chosen.items() if k in names}

    def recipe(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """The recipe dict for a full set of chosen values (a trial's ``params``)."""
        order = tuple(chosen["order"].split(" > ")) if "order" in chosen else self.orders[0]
        steps = []
        for name in order:
            step = self.step(name)
            if step.optional and not chosen.get(step.use.name, True):
                continue
            steps.append(step.raw(chosen))
        return {"seed": self.seed, **dict(self.top), "step": steps}

    def grid(self, seed: int = 0) -> list[dict[str, Any]]:
        """Every distinct recipe of the space as the parameters that make it, in a seeded random order (so a grid
        cut short by ``--trials`` is a uniform sample of it). Optuna's GridSampler would take the product of every
        parameter, those of steps left out too, and run one recipe several times."""
        found: list[dict[str, Any]] = []
        orders = self.orders
        for order in orders:
            base = {"order": " > ".join(order)} if self.order_param is not None else {}
            per_step: list[list[dict[str, Any]]] = []
            for name in order:
                step = self.step(name)
                params = step.params()
                combos = [dict(zip([p.name for p in params], values, strict=True))
                          for values in itertools.product(*(p.values() for p in params))]  # fmt: skip
                if step.optional:
                    combos = [{step.use.name: True, **c} for c in combos] + [{step.use.name: False}]
                per_step.append(combos)
            size = math.prod(len(c) for c in per_step)
            if len(found) + size > GRID_LIMIT:
                raise SpaceError(
                    f"{self.source}: the grid holds more than {GRID_LIMIT:,} recipes",
                    "give the ranges coarser steps or fewer choices, or use --sampler random/tpe/nsga2",
                )
            for parts in itertools.product(*per_step):
                merged = dict(base)
                for part in parts:
                    merged.update(part)
                found.append(merged)
        random.Random(seed).shuffle(found)
        return found

    def parameter_names(self) -> list[str]:
        names = ["order"] if self.order_param is not None else []
        for step in self.steps:
            names += ([step.use.name] if step.optional else []) + [p.name for p in step.params()]
        return names

    def to_dict(self) -> dict[str, Any]:
        """A canonical form: what the study keeps, and compares on ``--resume``."""
        return {
            "seed": self.seed,
            "orders": [list(o) for o in self.orders],
            **({"top": dict(self.top)} if self.top else {}),
            "steps": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "optional": s.optional,
                    "fields": {name: _field_dict(spec) for name, spec in s.fields},
                }
                for s in self.steps
            ],
        }

    def describe(self) -> str:
        lines = []
        if self.order_param is not None:
            lines.append(f"order: {self.order_param.text()}")
        for step in self.steps:
            searched = [f"{n} {s.text()}" for n, s in step.fields if s.searched]
            fixed = [f"{n} = {_shown(s.fixed)}" for n, s in step.fields if not s.searched]
            lines.append(
                f"{step.name}{' (optional)' if step.optional else ''}: "
                + "; ".join(searched + fixed if searched or fixed else ["defaults"])
            )
        return "\n".join(lines)


def _field_dict(spec: FieldSpec) -> Any:
    if spec.entries:
        return {key: _field_dict(sub) for key, sub in spec.entries}
    if spec.param is not None:
        return spec.param.to_dict()
    return {"fixed": spec.fixed}


# -- reading -----------------------------------------------------------------------------------------------------


def _step_types() -> dict[str, type]:
    from .. import compress  # noqa: F401 - registers every step kind (no TensorFlow is imported)
    from ..compress.recipe import STEP_TYPES

    return STEP_TYPES


def _field_names(cls: type) -> tuple[set[str], dict[str, Any]]:
    from ..compress.recipe import Training

    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "training"}
    training = {f.name: f for f in dataclasses.fields(Training)}
    return set(fields) | set(training), {**fields, **training}


def _is_list_field(f: Any) -> bool:
    return "list" in str(f.type)


def _is_table_field(f: Any) -> bool:
    return str(f.type).startswith("dict")


def _range(value: dict[str, Any], where: str) -> Param:
    unknown = set(value) - RANGE_KEYS
    if unknown:
        raise SpaceError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} in a range",
            "a range is { low = ..., high = ..., step = ..., log = true } (choices: a list)",
        )
    if "low" not in value or "high" not in value:
        raise SpaceError(f"{where}: a range needs low and high", "write e.g. { low = 0.5, high = 0.9 }")
    low, high, step, log = value["low"], value["high"], value.get("step"), bool(value.get("log", False))
    for key, number in (("low", low), ("high", high), ("step", step)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
            raise SpaceError(f"{where}: {key} = {number!r} is not a number", f"write e.g. {key} = 0.5")
    if low > high:
        raise SpaceError(f"{where}: the range {low:g}..{high:g} is empty (low > high)", "swap low and high")
    if step is not None and step <= 0:
        raise SpaceError(f"{where}: step = {step:g} must be > 0", "write e.g. step = 0.1")
    if step is not None and step > high - low and low != high:
        raise SpaceError(
            f"{where}: step {step:g} is wider than the range {low:g}..{high:g}", "use a smaller step, or a choice list"
        )
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range must start above 0, not at {low:g}", "raise low")
    if log and step is not None:
        raise SpaceError(f"{where}: a range is either stepped or log, not both", "drop step or log")
    is_int = all(isinstance(v, int) for v in (low, high) if v is not None) and (step is None or isinstance(step, int))
    return Param("", "int" if is_int else "float", low=low, high=high, step=step, log=log)


def _choices(values: list[Any], where: str, list_field: bool) -> Param:
    if not values:
        raise SpaceError(f"{where}: the list of choices is empty", "give at least one value")
    encoded: list[Any] = []
    for value in values:
        if list_field and not isinstance(value, list):
            raise SpaceError(
                f'{where}: a choice between layer lists is a list of lists, e.g. [[], ["conv2d_1"]]',
                "wrap each choice in brackets",
            )
        if isinstance(value, (list, dict)):
            encoded.append(json.dumps(value, sort_keys=True))
        elif value is None or isinstance(value, (bool, int, float, str)):
            encoded.append(value)
        else:
            raise SpaceError(f"{where}: choice {value!r} is not a plain value", "use numbers, strings or lists")
    if len(set(map(repr, encoded))) != len(encoded):
        raise SpaceError(f"{where}: the choices repeat a value", "list each value once")
    lists = any(isinstance(v, (list, dict)) for v in values)
    if lists and not all(isinstance(v, (list, dict)) for v in values):
        raise SpaceError(f"{where}: the choices mix lists and plain values", "make every choice a list")
    return Param("", "choice", tuple(encoded), encoded=lists)


def _field(value: Any, name: str, f: Any, where: str) -> FieldSpec:
    """``f``: the step's dataclass field (its type says list or table), None for an entry of a table field."""
    list_field = f is not None and _is_list_field(f)
    if isinstance(value, dict) and set(value) == {"choices"}:
        if not isinstance(value["choices"], list):
            raise SpaceError(f"{where}: choices must be a list", "write choices = [...]")
        return FieldSpec(param=dataclasses.replace(_choices(value["choices"], where, list_field), name=name))
    if f is not None and _is_table_field(f):
        if not isinstance(value, dict):
            raise SpaceError(f'{where}: {name} is a table (e.g. {{ "block_1*" = 0.5 }})', "write it as a table")
        entries = tuple(
            (key, _field(sub, f"{name}[{key}]", None, f"{where}[{key}]")) for key, sub in sorted(value.items())
        )
        return FieldSpec(entries=entries)
    if isinstance(value, dict):
        return FieldSpec(param=dataclasses.replace(_range(value, where), name=name))
    listed = isinstance(value, list) and [isinstance(v, list) for v in value]
    if list_field and listed and any(listed) and not all(listed):
        raise SpaceError(
            f"{where}: mixes layer lists and names; a choice between layer lists is a list of lists",
            'write e.g. [[], ["conv2d_1"]] (or one fixed list: ["conv2d_1"])',
        )
    if isinstance(value, list) and (not list_field or (value and all(isinstance(v, list) for v in value))):
        return FieldSpec(param=dataclasses.replace(_choices(value, where, list_field), name=name))
    return FieldSpec(fixed=value)


def _corners(step: StepSpec) -> Iterator[dict[str, Any]]:
    """Choices that together touch every range end and every choice of the step once (few, not the product)."""
    params = step.params()
    longest = max((len(p.choices) if p.kind == "choice" else 2 for p in params), default=1)
    for i in range(longest):
        chosen = {}
        for p in params:
            ends = list(p.choices) if p.kind == "choice" else [p.low, p.high]
            value = ends[min(i, len(ends) - 1)]
            chosen[p.name] = int(value) if p.kind == "int" else value
        yield chosen


def parse(data: dict[str, Any], source: str = "space") -> Space:
    """A :class:`Space` from the TOML's tables, every value checked (see the module's doc)."""
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise SpaceError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}",
            f"a space holds [[step]] tables and optional {', '.join(sorted(TOP_LEVEL - {'step'}))}",
        )
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SpaceError(f"{source} has no [[step]] table", 'add e.g. [[step]] kind = "quantize" mode = ["int8"]')
    types = _step_types()
    steps: list[StepSpec] = []
    for index, raw in enumerate(raw_steps, 1):
        if not isinstance(raw, dict):
            raise SpaceError(f"{source}, step {index}: not a table", "write [[step]] tables")
        kind = raw.get("kind")
        where = f"{source}, step {index}"
        if kind not in types:
            raise SpaceError(f"{where}: unknown step kind {kind!r}", f"use one of: {', '.join(sorted(types))}")
        name = str(raw.get("name", kind))
        where = f"{source}, step {index} ({name})"
        valid, fields = _field_names(types[kind])
        bad = set(raw) - valid - STEP_META
        if bad:
            raise SpaceError(
                f"{where}: unknown field(s) {', '.join(sorted(bad))} for a {kind} step",
                f"valid fields: {', '.join(sorted(valid | STEP_META - {'kind'}))}",
            )
        if any(s.name == name for s in steps):
            raise SpaceError(f"{where}: two steps are named {name!r}", 'give each a name, e.g. name = "prune-2"')
        optional = raw.get("optional", False)
        if not isinstance(optional, bool):
            raise SpaceError(f"{where}: optional must be true or false", "write optional = true")
        specs = tuple(
            (key, _field(value, f"{name}.{key}", fields[key], f"{where}: {key}"))
            for key, value in raw.items()
            if key not in STEP_META
        )
        steps.append(StepSpec(name, kind, optional, specs))
    names = [s.name for s in steps]
    orders = _orders(data.get("orders"), names, source)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpaceError(f"{source}: seed must be an integer", "write seed = 0")
    top = tuple((k, data[k]) for k in ("runtime", "task", "loss", "metric") if k in data)
    if top:
        from ..compress.recipe import Recipe

        try:
            Recipe.from_dict({**dict(top), "step": []}, where=source)
        except RecipeError as exc:
            raise SpaceError(exc.problem, exc.fix) from None
    space = Space(tuple(steps), orders, seed, top, source)
    _check_recipes(space)
    return space


def _orders(raw: Any, names: list[str], source: str) -> tuple[tuple[str, ...], ...]:
    if raw is None:
        return (tuple(names),)
    if not isinstance(raw, list) or not raw or not all(isinstance(o, list) and o for o in raw):
        raise SpaceError(
            f"{source}: orders must be a list of step-name lists", 'write orders = [["prune", "quantize"]]'
        )
    for order in raw:
        for name in order:
            if name not in names:
                raise SpaceError(
                    f"{source}: orders names an unknown step {name!r}", f"steps of this space: {', '.join(names)}"
                )
        if len(set(order)) != len(order):
            raise SpaceError(f"{source}: an order repeats a step: {order}", "name each step once per order")
    unused = [n for n in names if not any(n in o for o in raw)]
    if unused:
        raise SpaceError(f"{source}: no order uses step(s) {', '.join(unused)}", "add them to an order or remove them")
    return tuple(tuple(o) for o in raw)


def _check_recipes(space: Space) -> None:
    """Build each step at its ranges' ends and choices into a real recipe step, checked as compress checks it."""
    from ..compress.recipe import Recipe

    for index, step in enumerate(space.steps, 1):
        for chosen in _corners(step):
            raw = step.raw(chosen)
            try:
                Recipe.from_dict({"step": [raw]}, where=space.source)
            except RecipeError as exc:
                problem = exc.problem.replace(f"{space.source}, step 1", f"{space.source}, step {index} ({step.name})")
                if len(chosen) > 1:  # which combination: one value alone is named by the problem itself
                    problem += " (with " + ", ".join(f"{k.split('.', 1)[1]} = {_shown(v)}" for k, v in chosen.items())
                    problem += ")"
                raise SpaceError(problem, exc.fix or "fix the range") from None
    for order in space.orders:  # quantize must come last, once: as a recipe requires
        kinds = [space.step(n).kind for n in order]
        if "quantize" in kinds[:-1]:
            raise SpaceError(
                f"{space.source}: the quantize step must come last, but an order is {' > '.join(order)}",
                "put quantize at the end of every order",
            )


def load(path: str | Path) -> Space:
    """Read and check a space file."""
    try:
        data = _toml.load(path)
    except FileNotFoundError:
        raise SpaceError(f"space file {path} does not exist", "check --space (examples/search/ has some)") from None
    except IsADirectoryError:
        raise SpaceError(f"space file {path} is a folder", "pass a .toml file to --space") from None
    except _toml.TOMLDecodeError as exc:
        raise SpaceError(f"{path} is not valid TOML: {exc}", "fix the space file") from None
    return parse(data, source=str(path))


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two spaces (their :meth:`Space.to_dict`), one phrase each, for refusing a resume."""
    found = []
    for key in ("seed", "orders", "top"):
        if old.get(key) != new.get(key):
            found.append(f"{key}: {_brief(old.get(key))} → {_brief(new.get(key))}")
    old_steps = {s["name"]: s for s in old.get("steps", [])}
    new_steps = {s["name"]: s for s in new.get("steps", [])}
    for name in old_steps.keys() - new_steps.keys():
        found.append(f"step {name} removed")
    for name in new_steps.keys() - old_steps.keys():
        found.append(f"step {name} added")
    for name in [n for n in old_steps if n in new_steps]:
        a, b = old_steps[name], new_steps[name]
        if a["kind"] != b["kind"]:
            found.append(f"{name}: kind {a['kind']} → {b['kind']}")
        if a["optional"] != b["optional"]:
            found.append(f"{name}: optional {a['optional']} → {b['optional']}")
        for key in sorted(a["fields"].keys() | b["fields"].keys()):
            before, after = a["fields"].get(key), b["fields"].get(key)
            if before != after:
                found.append(f"{name}.{key}: {_brief(before)} → {_brief(after)}")
    return found


def _brief(spec: Any) -> str:
    if spec is None:
        return "not set"
    if isinstance(spec, dict) and "fixed" in spec and len(spec) == 1:
        return _shown(spec["fixed"])
    if isinstance(spec, dict) and spec.get("kind") == "choice":
        return "[" + ", ".join(_shown(c) for c in spec.get("choices", ())) + "]"
    if isinstance(spec, dict) and spec.get("kind") in ("int", "float"):
        step = f" step {spec['step']:g}" if spec.get("step") is not None else ""
        return f"{spec['low']:g}..{spec['high']:g}{step}{' log' if spec.get('log') else ''}"
    return json.dumps(spec, sort_keys=True)


__all__ = ["Param", "Space", "SpaceError", "differences", "load", "parse"]
