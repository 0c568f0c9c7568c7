"""A search is an Optuna study kept in the results store's own database, next to the runs it made.

The study (SQLite by default, PostgreSQL by URL: whatever ``--store`` is) holds every trial's parameters, values
and state, and edgeprof's settings in its user attributes: the model and data, the targets, the objectives, the
space, the constraints. So a study survives Ctrl-C and crashes, ``--resume`` continues it, and several hosts can
work on one study at once (each asks the sampler for its next trial through the database).

Resuming checks that the study is the same search: a changed space, model, data, objective, target, constraint or
measurement setting is refused with the difference named, because the trials already run would not be comparable
with the new ones. A trial interrupted by Ctrl-C is failed as "interrupted" and put back in the queue, so
``--resume`` runs it again (after what was queued before it); one whose host died stops sending heartbeats and is
failed and queued again the same way by the next run (after ``GRACE_SECONDS``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .._version import __version__
from ..errors import EdgeprofError, RecipeError
from . import space as space_mod
from .objectives import Objective
from .objectives import parse as parse_objectives
from .trial import Context, Outcome, constraints, figures, ratio

log = logging.getLogger("edgeprof.search")

SAMPLERS = ("grid", "random", "tpe", "nsga2")
#: The largest study bench-search compared the samplers at: up to it, TPE's fronts were as good as NSGA-II's or better.
NSGA2_MEASURED = 96
#: A sampler that proposes this many recipes already measured in a row has nothing new to try: the search stops.
REPEAT_LIMIT = 25
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
SETTINGS_KEY = "edgeprof"
#: Profile options that change what a figure means (a resumed study keeps them); how long each run measures
#: (runs, min_seconds, warm-up, idle) may change between sessions.
MEASURE_KEYS = (
    "threads",
    "delegate",
    "runtime",
    "delegate_options",
    "pause_ms",
    "cpus",
    "energy",
    "energy_command",
    "duty_cycle",
    "use_meter",
)
RESUME_KEYS = {
    "model_sha256": "the model",
    "data": "--data",
    "data_sha256": "the data file",
    "targets": "--target",
    "objectives": "--objectives",
    "max_drop": "--max-drop",
    "budget": "--budget",
    "repeat": "--repeat",
    "options": "the profile options",
}

Say = Callable[[str], None]


class StudyError(EdgeprofError):
    """A study cannot be created, resumed or found."""


@dataclass
class Settings:
    """What makes a search the search it is; kept in the study, compared on ``--resume``."""

    model: str
    model_sha256: str
    data: str
    data_sha256: str | None
    targets: list[str]
    objectives: list[str]
    space: dict[str, Any]  # canonical (Space.to_dict): what --resume compares
    space_raw: dict[str, Any]  # the file's tables, to rebuild the space from
    space_file: str
    sampler: str
    seed: int
    repeat: int
    max_drop: float | None
    budget: dict[str, Any] | None
    options: dict[str, Any]
    out: str
    baseline: dict[str, Any] = field(default_factory=dict)  # compression, path, sha256
    custom_objects: list[str] | None = None
    created_at: str = ""
    edgeprof_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def objective_list(self) -> list[Objective]:
        found = parse_objectives(sorted({o.split("@")[0] for o in self.objectives}, key=self._order), self.targets)
        by_name = {o.name: o for o in found}
        return [by_name[name] for name in self.objectives]

    def _order(self, key: str) -> int:
        return next(i for i, o in enumerate(self.objectives) if o.split("@")[0] == key)

    def space_obj(self) -> space_mod.Space:
        return space_mod.parse(self.space_raw, self.space_file)


def differences(old: Settings, new: Settings) -> list[str]:
    """What a resumed search would change, one phrase each (the space field by field)."""
    found = [f"space: {d}" for d in space_mod.differences(old.space, new.space)]
    a, b = old.to_dict(), new.to_dict()
    for key, label in RESUME_KEYS.items():
        if a.get(key) != b.get(key):
            if key == "options":
                changed = [k for k in MEASURE_KEYS if (a[key] or {}).get(k) != (b[key] or {}).get(k)]
                if changed:
                    found.append(f"{label}: " + ", ".join(f"{k} {a[key].get(k)} → {b[key].get(k)}" for k in changed))
            elif key == "model_sha256":
                found.append(f"the model file changed ({a['model']} sha256 {a[key][:12]} → {b[key][:12]})")
            else:
                found.append(f"{label}: {_brief(a.get(key))} → {_brief(b.get(key))}")
    return found


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "not set" if value is None else json.dumps(value) if isinstance(value, dict) else str(value)


# -- storage ------------------------------------------------------------------------------------------------------


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise StudyError("edgeprof search needs Optuna", "pip install 'edgeprof[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Optuna's experimental-feature and heartbeat-with-ask warnings say nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def storage(url: str) -> Any:
    """Optuna's RDB storage on the results store's database, with heartbeats (a dead host's trial is re-queued)."""
    optuna = _optuna()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 30}  # wait for edgeprof's writers, as the store does
    with quiet():
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            failed_trial_callback=_requeue_stale,
        )


def _requeue_stale(study: Any, trial: Any) -> None:
    """A trial whose host stopped sending heartbeats (killed, crashed, network gone) runs again."""
    with quiet():
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def names(store_url: str) -> list[dict[str, Any]]:
    """Every study of the store: name, trials by state, its settings."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(store_url)
    try:
        if "studies" not in inspect(engine).get_table_names():
            return []
    finally:
        engine.dispose()
    optuna = _optuna()
    found = []
    rdb = storage(store_url)
    for summary in optuna.study.get_all_study_summaries(rdb):
        attrs = summary.user_attrs.get(SETTINGS_KEY)
        if attrs is None:
            continue
        states: dict[str, int] = {}
        for trial in optuna.load_study(study_name=summary.study_name, storage=rdb).get_trials(deepcopy=False):
            state = "repeated" if "same_as" in trial.user_attrs else trial.state.name.lower()
            states[state] = states.get(state, 0) + 1
        found.append({"name": summary.study_name, "trials": summary.n_trials, "states": states, "settings": attrs,
                      "started": summary.datetime_start})  # fmt: skip
    return found


def load(store_url: str, name: str) -> tuple[Any, Settings]:
    """An existing study and its settings, or one line naming the studies there are."""
    optuna = _optuna()
    try:
        with quiet():
            study = optuna.load_study(study_name=name, storage=storage(store_url))
    except KeyError:
        known = [s["name"] for s in names(store_url)]
        raise StudyError(
            f"no study {name!r} in {store_url}",
            f"studies there: {', '.join(known)}" if known else "start one with edgeprof search MODEL ...",
        ) from None
    attrs = study.user_attrs.get(SETTINGS_KEY)
    if attrs is None:
        raise StudyError(f"study {name!r} was not made by edgeprof search", "pass another study name")
    return study, Settings.from_dict(attrs)


def existing(store_url: str, name: str, settings: Settings, *, resume: bool) -> Settings | None:
    """Before anything trains: the settings of the study to resume (checked to be the same search), or None for a
    new study (refused if one of that name exists)."""
    optuna = _optuna()
    exists = name in {s.study_name for s in optuna.study.get_all_study_summaries(storage(store_url))}
    if exists and not resume:
        study, _ = load(store_url, name)
        raise StudyError(
            f"study {name!r} already exists in this store ({len(study.trials)} trials)",
            "add --resume to continue it, or --study NAME to start another",
        )
    if not exists and resume:
        raise StudyError(f"no study {name!r} to resume in this store", "drop --resume to start it")
    if not exists:
        return None
    _, old = load(store_url, name)
    changed = differences(old, settings)
    if changed:
        raise StudyError(
            f"study {name!r} was started with another search: " + "; ".join(changed),
            "resume it with the settings it was started with, or start another with --study NAME",
        )
    return old


def open_study(store_url: str, name: str, settings: Settings, trials: int) -> Any:
    """Create the study (a grid's recipes queued), or open it and keep ``settings`` (a resumed study may change
    samplers, e.g. random first, then TPE); with the sampler ``settings`` name, for ``trials`` trials."""
    optuna = _optuna()
    rdb = storage(store_url)
    chosen = sampler(settings.sampler, settings.seed, trials)
    with quiet():
        if name in {s.study_name for s in optuna.study.get_all_study_summaries(rdb)}:
            study = optuna.load_study(study_name=name, storage=rdb, sampler=chosen)
            study.set_user_attr(SETTINGS_KEY, settings.to_dict())
            return study
        directions = ["minimize"] * len(settings.objectives)
        study = optuna.create_study(study_name=name, storage=rdb, directions=directions, sampler=chosen)
    settings.created_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    study.set_user_attr(SETTINGS_KEY, settings.to_dict())
    with quiet():
        study.set_metric_names(settings.objectives)
    if settings.sampler == "grid":
        with quiet():
            for params in settings.space_obj().grid(settings.seed):
                study.enqueue_trial(params)
    return study


def sampler(kind: str, seed: int, trials: int) -> Any:
    """The Optuna sampler; grid is random over the queued grid (every trial is a queued recipe)."""
    optuna = _optuna()
    with quiet():
        if kind in ("grid", "random"):
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=max(3, min(10, trials // 4)),  # the default 10 would leave a small study random
                multivariate=True,
                group=True,  # conditional spaces: a step's fields exist only when it is used
                constraints_func=constraint_values,
            )
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(
                seed=seed, population_size=population(trials), constraints_func=constraint_values
            )
    raise StudyError(f"unknown sampler {kind!r}", f"use one of: {', '.join(SAMPLERS)}")


def population(trials: int) -> int:
    """NSGA-II's generation size: at least three generations in a study of ``trials``, 4 to 50 trials each."""
    return max(4, min(50, trials // 3))


def sampler_advice(kind: str, trials: int) -> str | None:
    """A line for an NSGA-II study of a size where edgeprof's benchmark found TPE as good or better: a genetic
    algorithm gains over generations, and a study of under a hundred trials has three of them."""
    if kind != "nsga2" or trials > NSGA2_MEASURED:
        return None
    size = population(trials)
    generations = -(-trials // size)
    return (
        f"nsga2: {trials} trials make {generations} generation{'s' * (generations != 1)} of {size}; at up to "
        f"{NSGA2_MEASURED} trials TPE (--sampler tpe, the default) found fronts as good or better in edgeprof's "
        "benchmark"
    )


def suggest(space: space_mod.Space, trial: Any, kind: str) -> dict[str, Any]:
    """The trial's recipe, asked as the sampler ``kind`` needs: NSGA-II breeds only parameters that every trial has,
    so it is asked the fields of the steps left out too (see :meth:`Space.suggest`)."""
    return space.suggest(trial, dormant=kind == "nsga2")


def constraint_values(trial: Any) -> list[float]:
    """Optuna's constraints (≤ 0 met): kept with each trial by :meth:`Runner.finish`."""
    return list(trial.user_attrs.get("constraints") or [0.0])


# -- the loop -----------------------------------------------------------------------------------------------------


class Heartbeat:
    """Tells the storage, every ``HEARTBEAT_SECONDS``, that this host's running trials are alive."""

    def __init__(self, rdb: Any) -> None:
        self._rdb = rdb
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="search-heartbeat", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
        self._rdb.record_heartbeat(trial_id)

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                with contextlib.suppress(Exception):  # a missed beat only shortens the grace left
                    self._rdb.record_heartbeat(trial_id)

    def stop(self) -> None:
        self._stop.set()


def counted(trial: Any) -> bool:
    """A trial that uses up one of ``--trials``: measured, failed for a reason of its own, or running. A recipe drawn
    again takes its first trial's figures and costs nothing, so it does not count."""
    state = trial.state.name
    if state == "COMPLETE":
        return "same_as" not in trial.user_attrs
    return state == "RUNNING" or (state == "FAIL" and "error" in trial.user_attrs)


@dataclass
class Runner:
    """Asks the sampler, runs trials on an executor, tells the sampler the measured values."""

    study: Any
    settings: Settings
    ctx: Context
    executor: Any
    store: Any
    budget: Any = None
    say: Say = lambda _msg: None
    baseline_bytes: bytes = b""
    ran: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.space = self.settings.space_obj()
        self.objectives = self.settings.objective_list()
        self.primary = next(o for o in self.objectives if o.efficiency)
        self._started: dict[int, float] = {}
        self._asked: dict[int, float] = {}
        self._repeats = 0  # recipes already measured, proposed in a row

    def _more(self, wanted: int) -> bool:
        from optuna.storages import fail_stale_trials

        with quiet():
            fail_stale_trials(self.study)  # a crashed host's trials: failed, and queued again (_requeue_stale)
        trials = self.study.get_trials(deepcopy=False)
        if sum(1 for t in trials if counted(t)) >= wanted:
            return False
        if self._repeats >= REPEAT_LIMIT:
            if self._repeats == REPEAT_LIMIT:  # said once
                self.say(f"the sampler proposed {self._repeats} recipes already measured in a row: nothing new to try")
                self._repeats += 1
            return False
        # a grid's trials are its queued recipes: when none is left, the grid is done
        return self.settings.sampler != "grid" or any(t.state.name == "WAITING" for t in trials)

    def run(self, wanted: int) -> None:
        """Run trials until the study holds ``wanted`` (complete, failed or running, on any host)."""
        self.wanted = wanted
        heartbeat = Heartbeat(self.study._storage)
        flying: dict[int, Any] = {}
        try:
            while True:
                while len(flying) < self.executor.slots and self._more(wanted):
                    asked = self._ask(heartbeat)
                    if asked is not None:
                        trial, recipe = asked
                        flying[trial.number] = trial  # first: the in-process executor runs the trial in submit
                        self._started[trial.number] = time.perf_counter()
                        self.executor.submit(self.ctx, trial.number, recipe, self.baseline_bytes)
                if not flying:
                    break
                for outcome in self.executor.wait():
                    trial = flying.pop(outcome.number)
                    heartbeat.remove(trial._trial_id)
                    self.finish(trial, outcome)
        except KeyboardInterrupt:
            self.executor.cancel()
            for trial in flying.values():
                self._interrupted(trial)
            raise
        finally:
            heartbeat.stop()

    def _ask(self, heartbeat: Heartbeat) -> tuple[Any, dict[str, Any]] | None:
        """The next trial and its recipe; None when it ended at once (a refused recipe, one already measured)."""
        from ..compress.recipe import Recipe

        t0 = time.perf_counter()
        with quiet():
            trial = self.study.ask()
        # At once: Optuna never fails a RUNNING trial without a heartbeat, so a host that died before its first
        # beat would leave the trial running (and counted) for good.
        heartbeat.add(trial._trial_id)
        number = trial.number
        try:
            recipe = suggest(self.space, trial, self.settings.sampler)
            made = Recipe.from_dict(recipe, where=f"trial {number}")
        except (RecipeError, space_mod.SpaceError) as exc:
            self._fail(trial, f"recipe refused: {exc}")
            heartbeat.remove(trial._trial_id)
            return None
        text = made.describe()
        trial.set_user_attr("recipe", recipe)
        trial.set_user_attr("recipe_text", text)
        same = self._same_recipe(recipe, number)
        if same is not None:
            self.say(f"trial {number}: {text}: the recipe of trial {same.number}, whose results it takes")
            self._copy(trial, same)
            heartbeat.remove(trial._trial_id)
            self._repeats += 1
            return None
        self._repeats = 0
        done = sum(1 for t in self.study.get_trials(deepcopy=False) if counted(t))
        self.say(f"trial {number} ({done} of {self._wanted_text()}): {text}")
        self._asked[number] = time.perf_counter() - t0
        return trial, recipe

    def _wanted_text(self) -> str:
        return str(getattr(self, "wanted", "?"))

    def _same_recipe(self, recipe: dict[str, Any], number: int) -> Any | None:
        """An earlier complete trial with this very recipe: same recipe, seed and data make the same model."""
        for other in self.study.get_trials(deepcopy=False):
            if other.number != number and other.state.name == "COMPLETE" and other.user_attrs.get("recipe") == recipe:
                return other
        return None

    def _copy(self, trial: Any, same: Any) -> None:
        for key in ("figures", "ratio", "constraints", "broken", "node", "seconds"):
            if key in same.user_attrs:
                trial.set_user_attr(key, same.user_attrs[key])
        trial.set_user_attr("same_as", same.number)
        with quiet():
            self.study.tell(trial, list(same.values))

    def _fail(self, trial: Any, reason: str) -> None:
        trial.set_user_attr("error", reason)
        with quiet():
            self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)
        self.say(f"trial {trial.number} FAILED: {reason}")

    def _interrupted(self, trial: Any) -> None:
        """Ctrl-C: fail the trial as interrupted (not counted) and queue its parameters for ``--resume``."""
        with contextlib.suppress(Exception):
            trial.set_user_attr("interrupted", "Ctrl-C")
            with quiet():
                self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            self.say(f"trial {trial.number} interrupted: --resume runs it again")

    def finish(self, trial: Any, outcome: Outcome) -> None:
        """Figures, objective values and constraints of a trial from what it stored; then tell the sampler."""
        t0 = time.perf_counter()
        wall = t0 - self._started.pop(trial.number, t0)
        compressed = outcome.compressed
        measured = max((b.seconds for b in outcome.boards), default=0.0)
        if outcome.node:
            trial.set_user_attr("node", outcome.node)
        if compressed is not None:
            trial.set_user_attr("compression", compressed.compression_id)
            path = self.ctx.trial_dir(trial.number) / "model.tflite"
            from .trial import place

            place(path, compressed.tflite)  # a Ray node wrote it on its own disk: keep one here too
            (path.parent / "manifest.json").write_text(json.dumps(compressed.manifest, indent=2, default=str) + "\n")
            trial.set_user_attr("model_path", str(path))
        reason = outcome.failed
        if reason is None:
            assert compressed is not None
            try:
                found = figures(self.ctx, compressed, outcome.boards, self.store)
            except EdgeprofError as exc:
                reason = f"figures: {exc}"
        if reason is not None:
            if compressed is not None:
                trial.set_user_attr("figures", {"recipe": compressed.manifest.get("recipe_text")})
            self._seconds(trial, compressed, measured, wall, t0)
            self._fail(trial, reason)
            return
        values = [o.value(found) for o in self.objectives]
        missing = [o for o, v in zip(self.objectives, values, strict=True) if v is None]
        if missing:
            why = [self._why_missing(o, found) for o in missing]
            trial.set_user_attr("figures", found)
            self._seconds(trial, compressed, measured, wall, t0)
            self._fail(trial, "; ".join(why))
            return
        kept, broken = constraints(
            found,
            max_drop=self.settings.max_drop,
            budget=self.budget,
            model_path=str(self.ctx.trial_dir(trial.number) / "model.tflite"),
            store=self.store,
            targets=self.settings.targets,
        )
        trial.set_user_attr("figures", found)
        trial.set_user_attr("ratio", ratio(found, self.primary))
        trial.set_user_attr("constraints", kept or [0.0])
        trial.set_user_attr("broken", broken)
        self._seconds(trial, compressed, measured, wall, t0)
        with quiet():
            self.study.tell(trial, values)
        self.ran.append(trial.number)
        self.say(f"trial {trial.number}: {self.line(found, values, broken)}")

    def _seconds(self, trial: Any, compressed: Any, measured: float, wall: float, t0: float) -> None:
        compress_s = compressed.seconds if compressed is not None else 0.0
        host = self._asked.pop(trial.number, 0.0) + (time.perf_counter() - t0)
        if self.executor.name == "in-process":  # the rest of the wall time is the host's glue between them
            host += max(0.0, wall - compress_s - measured)
        seconds = {"compress": compress_s, "measure": measured, "host": host, "wall": wall}
        trial.set_user_attr("seconds", {k: round(v, 3) for k, v in seconds.items()})

    def _why_missing(self, objective: Objective, found: dict[str, Any]) -> str:
        board = (found.get("boards") or {}).get(objective.target or "", {})
        reason = board.get("energy_reason") if objective.kind.key == "energy_mj" else None
        return f"{objective.name} not measured" + (f" on {objective.target}: {reason}" if reason else "")

    def line(self, found: dict[str, Any], values: list[float], broken: list[str]) -> str:
        parts = []
        for objective, value in zip(self.objectives, values, strict=True):
            parts.append(f"{objective.name} {format_value(objective, value)}")
        if all(o.kind.key != "accuracy_drop" for o in self.objectives) and found.get("accuracy_drop") is not None:
            parts.append(f"accuracy drop {round(found['accuracy_drop'], 9) + 0.0:+.2f} {found['accuracy_unit']}")
        for name, board in (found.get("boards") or {}).items():
            speed = board.get("speed") or {}
            if speed.get("verdict"):
                where = f" on {name}" if len(self.settings.targets) > 1 else ""
                parts.append(f"vs float32{where}: {speed['verdict']} ({speed.get('test', '')})")
        text = ", ".join(parts) + f"; compression run #{found['compression']}"
        if broken:
            text += "; over the constraints: " + "; ".join(broken)
        return text


def format_value(objective: Objective, value: float | None) -> str:
    from .. import _table

    if value is None:
        return "-"
    key = objective.kind.key
    if key.endswith("_ms"):
        return f"{_table.ms(value)} ms"
    if key == "macs":
        return f"{value:,.0f}"
    if key == "accuracy_drop":
        return f"{round(value, 9) + 0.0:+.2f} pp"
    return f"{value:.4g} {objective.kind.unit}".strip()


__all__ = [
    "SAMPLERS",
    "Runner",
    "Settings",
    "StudyError",
    "differences",
    "existing",
    "load",
    "names",
    "open_study",
    "sampler",
    "storage",
]
