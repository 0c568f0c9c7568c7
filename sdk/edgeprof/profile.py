"""Profile TFLite models on a target: one call, one result with a ``summary()``.

result = edgeprof.profile("model.tflite", target="local", runs=200)
print(result.summary())
group = edgeprof.profile("model.tflite", repeat=5)  # five fresh agent processes: a ProfileGroup
groups = edgeprof.profile_models(["a.tflite", "b.tflite"], repeat=5)  # a, b, a, b, ... on one board

One profile is one agent process; ``repeat=N`` runs N fresh ones, because the process is the unit of replication
(pyperf's lesson: address-space layout, page placement and clocks differ from process to process, 5-12 % in the
median on a shared VM, and no number of runs inside one process measures that). Several models are interleaved
round by round so that a drift of the board (load, temperature) hits each of them alike, and each model's runs are
stored as one group as they arrive. The board is connected and each file uploaded once for all the processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeprof_agent.defaults import DEFAULTS, HOST_DEFAULTS
from edgeprof_agent.record import LATENCY_FIGURES, Operators, ProfileRecord

from . import _table, views
from ._version import __version__
from .accuracy import compare, host_outputs, load_eval, predict_on_board
from .deploy import DEFAULT_WAIT_SECONDS, connect
from .errors import DataError, EdgeprofError
from .modelfile import ModelFile, open_tflite
from .ops import costs as ops_costs
from .progress import Progress, ProgressHandler, from_board_event
from .targets import Target, apply_sensor_defaults, resolve_target

#: How many processes ``check`` measures when it has to profile, and the ``--repeat`` the docs recommend: from 5
#: on, the 95 % upper bound of a mean over processes is within about one process-to-process standard deviation of
#: the mean (Student's t: 2.13 / sqrt(5) = 0.95), where 3 processes leave 1.69 and 10 only halve 5's margin for twice
#: the time. README (How edgeprof measures, Replication) has the measurements behind it.
DEFAULT_REPEAT = 5


@dataclass(frozen=True)
class ProfileOptions:
    """How to measure. The defaults follow TFLite's benchmark_model and are the agent's own
    (``edgeprof_agent/defaults.py``): written once for the agent, this class and the CLI."""

    runs: int = DEFAULTS["runs"]
    warmup_runs: int = DEFAULTS["warmup_runs"]
    warmup_seconds: float = DEFAULTS["warmup_seconds"]
    min_seconds: float = DEFAULTS["min_seconds"]
    max_seconds: float = DEFAULTS["max_seconds"]
    threads: int | None = DEFAULTS["threads"]
    delegate: str = DEFAULTS["delegate"]
    runtime: str | None = DEFAULTS["runtime"]
    pause_ms: float = DEFAULTS["pause_ms"]
    cpus: tuple[int, ...] | None = DEFAULTS["cpus"]
    seed: int = DEFAULTS["seed"]
    max_samples: int = DEFAULTS["max_samples"]  # raw samples returned; beyond this an even subset plus a histogram
    delegate_options: dict[str, str] | None = DEFAULTS["delegate_options"]  # for an external delegate library
    # Energy: "auto" (first sensor found), "off", or one plugin: jetson-ina3221, rpi5-pmic, ina2xx, battery, rapl,
    # hwmon, command. energy_command is an argument list printing watts (run on the board, no shell).
    energy: str = DEFAULTS["energy"]
    energy_command: tuple[str, ...] | None = DEFAULTS["energy_command"]
    energy_rate_hz: float | None = DEFAULTS["energy_rate_hz"]  # None: 100 Hz for sysfs sensors, 10 Hz for commands
    idle_seconds: float = DEFAULTS["idle_seconds"]  # idle power is measured this long before the model loads
    thermal_interval_s: float = DEFAULTS["thermal_interval_s"]  # temperatures and throttling are polled this often
    # Per-operator latency and the board's peak after the profile, within max_seconds (edgeprof_agent/operators.py)
    ops: bool = DEFAULTS["ops"]
    ops_rounds: int = DEFAULTS["ops_rounds"]  # at least this many rounds of every operator, and min_seconds
    duty_cycle: float | None = DEFAULTS["duty_cycle"]  # share of the time the model runs (0-1]; None: back to back
    # A power meter on the host ([targets.NAME.meter]): used unless use_meter is False or energy is "off"; the run
    # lasts until energy per inference is known to within this relative 95 % interval (or max_seconds).
    use_meter: bool = HOST_DEFAULTS["use_meter"]
    energy_precision: float = HOST_DEFAULTS["energy_precision"]

    def agent_args(self) -> dict[str, Any]:
        args = asdict(self)
        for host_only in HOST_DEFAULTS:
            args.pop(host_only)
        args["cpus"] = list(self.cpus) if self.cpus else None
        args["energy_command"] = list(self.energy_command) if self.energy_command else None
        return args


@dataclass
class ProfileResult:
    """One model measured once, in one agent process, on one board, with the conditions of the run."""

    model: ModelFile
    target: str
    device: dict[str, Any]
    agent_version: str
    options: ProfileOptions
    measurement: dict[str, Any]
    created_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    edgeprof_version: str = __version__
    id: int | None = None
    group: dict[str, Any] | None = None  # a run of a --repeat group: {"id", "index", "of", "batch"}

    # The figures users reach for most, straight from the measurement.
    @property
    def latency_ms(self) -> dict[str, float]:
        return self.measurement["latency_ms"]

    @property
    def samples_ms(self) -> list[float]:
        return self.measurement.get("samples_ms", [])

    @property
    def runtime(self) -> str:
        rt = self.measurement["runtime"]
        return f"{rt['name']} {rt['version']}"

    @property
    def peak_rss_kb(self) -> int | None:
        return self.measurement.get("memory", {}).get("peak_rss_kb")

    @property
    def energy(self) -> dict[str, Any]:
        """Energy figures (``available`` True) or why there are none (``available`` False, ``reason``)."""
        return self.measurement.get("energy") or {"available": False, "reason": "the agent measured no energy"}

    @property
    def thermal(self) -> dict[str, Any]:
        return self.measurement.get("thermal") or {}

    @property
    def throttled(self) -> bool | None:
        """True if the board throttled during the run, False if watched and it did not, None if it cannot tell."""
        return self.measurement.get("throttled")

    @property
    def accuracy(self) -> dict[str, Any] | None:
        """On-board vs host accuracy when the run was given evaluation data (``eval_data``)."""
        return self.measurement.get("accuracy")

    @property
    def pid(self) -> int | None:
        """The agent process that measured (every run is a fresh one)."""
        return ((self.measurement.get("conditions") or {}).get("process") or {}).get("pid")

    @property
    def record(self) -> ProfileRecord:
        """The typed record every view renders (``edgeprof_agent.record``)."""
        return ProfileRecord.load(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "edgeprof_version": self.edgeprof_version,
            "model": self.model.to_dict(),
            "target": self.target,
            "device": self.device,
            "agent_version": self.agent_version,
            "options": asdict(self.options),
            **self.measurement,
            **({"group": self.group} if self.group is not None else {}),
        }

    def summary(self) -> str:
        return "\n".join(views.run_lines(self.record))


@dataclass
class ProfileGroup:
    """One model measured in ``planned`` fresh agent processes on one board (``repeat=N``), stored as one group.

    Its latency figures are the medians of the runs' figures; ``spread`` is the spread between processes, the
    noise replication measures. ``error`` says why it stopped early; the runs measured before stay stored.
    """

    model: ModelFile
    target: str
    planned: int
    runs: list[ProfileResult] = field(default_factory=list)
    id: int | None = None
    batch: str | None = None
    partners: list[str] = field(default_factory=list)  # "g:4 b.tflite": the groups interleaved with this one
    error: str | None = None

    @property
    def records(self) -> list[ProfileRecord]:
        return [r.record for r in self.runs]

    @property
    def spread(self) -> views.Spread | None:
        return views.spread_of(self.records)

    @property
    def run_medians_ms(self) -> list[float]:
        return [r.latency_ms["median"] for r in self.runs]

    @property
    def latency_ms(self) -> dict[str, float]:
        """Each figure the median of the runs' (``count``: every inference of every run)."""
        out: dict[str, Any] = {k: views.median_of([r.latency_ms.get(k) for r in self.runs]) for k in LATENCY_FIGURES}
        out["count"] = sum(int(r.latency_ms["count"]) for r in self.runs)
        return out

    @property
    def pids(self) -> list[int | None]:
        return [r.pid for r in self.runs]

    def info(self) -> views.GroupInfo:
        return views.GroupInfo(self.id, self.planned, self.error, list(self.partners))

    def summary(self) -> str:
        return "\n".join(views.group_lines(self.records, self.info()))

    def to_dict(self) -> dict[str, Any]:
        spread = self.spread
        return {
            "group": self.id,
            "model": self.model.to_dict(),
            "target": self.target,
            "planned": self.planned,
            "measured": len(self.runs),
            "batch": self.batch,
            "partners": self.partners,
            "error": self.error,
            "latency_ms": self.latency_ms,
            "spread": dataclasses.asdict(spread) if spread is not None else None,
            "runs": [r.to_dict() for r in self.runs],
        }


EventHandler = Callable[[dict[str, Any]], None]

log = logging.getLogger("edgeprof.profile")


@dataclass(frozen=True)
class Work:
    """What a profile needs from the host, checked before any board is touched."""

    model: ModelFile
    data: bytes
    eval_set: Any = None


def check_work(model: str | Path, inputs: str | Path | None = None, eval_data: str | Path | None = None) -> Work:
    """Open the model, the input data and the evaluation data, or raise the error that names the bad one.

    A fleet calls this once before its boards start, so a missing model is one error (exit 2), not one per board.
    """
    model_file, data = open_tflite(model)
    if inputs is not None:
        path = Path(inputs)
        if not path.is_file():
            raise DataError(f"input data {inputs} does not exist", "pass an .npy or .npz file of real inputs")
        if path.suffix not in (".npy", ".npz"):
            raise DataError(f"input data must be a .npy or .npz file, not {path.name}", "convert it with numpy.save")
    return Work(model_file, data, load_eval(eval_data, model=data) if eval_data is not None else None)


def agent_deadline(options: ProfileOptions, slack: float) -> Any:
    """How long the agent may stay silent in each phase of a profile: the phase's planned length plus ``slack``.

    The agent announces idle, load, warmup and measure, and ticks while measuring; the planned lengths come from
    the options (warm-up stops after warmup_seconds + max_seconds at most, measuring after max_seconds), so a hung
    agent is noticed ``slack`` seconds after its phase should have ended, not after a fixed several minutes.
    """

    def plan(event: dict[str, Any] | None) -> tuple[float, str]:
        phase = (event or {}).get("phase")
        if event is not None and event.get("event") == "progress" and phase in ("measure", "ops"):
            left = max(0.0, options.max_seconds - float(event.get("seconds") or 0.0))
            doing = "measuring" if phase == "measure" else "timing each operator"
            return left + slack, f"{doing} (at most {left:.0f} s left + {slack:.0f} s of slack)"
        planned, doing = {
            None: (options.idle_seconds, "preparing the measurement"),
            "idle": (options.idle_seconds, "measuring idle power"),
            "load": (0.0, "loading the model"),
            "warmup": (options.warmup_seconds + options.max_seconds, "warming up"),
            "measure": (options.max_seconds, "measuring"),
            "peak": (options.max_seconds, "measuring the board's peak"),
            "ops": (options.max_seconds, "timing each operator"),
            "idle_after": (options.max_seconds, "measuring idle power after the run, for the meter"),
        }.get(phase, (0.0, str(phase)))
        return planned + slack, f"{doing} (planned at most {planned:.0f} s + {slack:.0f} s of slack)"

    return plan


def profile(
    model: str | Path,
    target: str | Target = "local",
    *,
    repeat: int = 1,
    options: ProfileOptions | None = None,
    inputs: str | Path | None = None,
    eval_data: str | Path | None = None,
    store: Any = "default",
    on_event: EventHandler | None = None,
    on_progress: ProgressHandler | None = None,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    **option_overrides: Any,
) -> Any:
    """Measure ``model`` on ``target`` and (unless ``store=None``) keep the result in the results store.

    Returns a :class:`ProfileResult`, or with ``repeat=N`` (N > 1) a :class:`ProfileGroup` of N runs, each in a
    fresh agent process, stored as one group. Keyword arguments not named here are :class:`ProfileOptions`
    fields, e.g. ``runs=200, threads=2``. ``eval_data`` (an .npz with ``x_test, y_test`` or ``x, y``) adds
    on-board accuracy against the host's (measured once, in the first process). ``on_progress`` receives
    :class:`edgeprof.progress.Progress` events (``on_event`` the raw board events); ``wait_seconds`` bounds the
    wait for a board another profile holds (None: for ever).
    """
    (group,) = profile_models(
        [model],
        target,
        repeat=repeat,
        options=options,
        inputs=inputs,
        eval_data=eval_data,
        store=store,
        on_event=on_event,
        on_progress=on_progress,
        wait_seconds=wait_seconds,
        **option_overrides,
    )
    return group if repeat > 1 else group.runs[0]


def profile_models(
    models: Sequence[str | Path],
    target: str | Target = "local",
    *,
    repeat: int = 1,
    options: ProfileOptions | None = None,
    inputs: str | Path | None = None,
    eval_data: str | Path | None = None,
    store: Any = "default",
    on_event: EventHandler | None = None,
    on_progress: ProgressHandler | None = None,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    **option_overrides: Any,
) -> list[ProfileGroup]:
    """Measure several models on one board, ``repeat`` fresh agent processes each, interleaved round by round
    (a, b, a, b, ...): one :class:`ProfileGroup` per model, in the order given.

    Every run is stored the moment it ends. A failure stops the work on the board and raises its error, which
    then says how many runs were measured and stored first (their groups are marked incomplete with the reason).
    """
    options = _options(options, option_overrides)
    if repeat < 1:
        raise EdgeprofError(f"repeat must be 1 or more, not {repeat}", "pass --repeat N with N >= 1")
    works = [check_work(m, inputs, eval_data) for m in models]
    return run_on_board(
        works,
        resolve_target(target),
        options,
        repeat=repeat,
        inputs=inputs,
        store=store,
        on_event=on_event,
        on_progress=on_progress,
        wait_seconds=wait_seconds,
    )


def _options(options: ProfileOptions | None, overrides: dict[str, Any]) -> ProfileOptions:
    options = options or ProfileOptions()
    return ProfileOptions(**{**asdict(options), **overrides}) if overrides else options


def run_on_board(
    works: Sequence[Work],
    target: Target,
    options: ProfileOptions,
    *,
    repeat: int = 1,
    inputs: str | Path | None = None,
    store: Any = "default",
    on_event: EventHandler | None = None,
    on_progress: ProgressHandler | None = None,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    keep: list[ProfileGroup] | None = None,
) -> list[ProfileGroup]:
    """The works (checked models) on one board: one connection, one upload each, ``repeat`` rounds of one fresh
    agent process per model. :func:`profile_models` and fleets (one thread a board) call this; ``keep`` receives
    the groups as they are made, so a caller that catches a failure still has the runs measured before it."""
    options = apply_sensor_defaults(target, options)
    several = len(works) > 1
    position: dict[str, Any] = {}  # which run is being measured: progress messages say so

    def events(event: dict[str, Any]) -> None:
        if on_event is not None:
            on_event({**event, **({"run": dict(position)} if position and repeat * len(works) > 1 else {})})
        step = from_board_event(target.name, event, options)
        if step is None:
            return
        if position and (repeat > 1 or several):
            where = f"{position['model']} " if several else ""
            step = dataclasses.replace(step, message=f"{step.message} [{where}run {position['index']}/{repeat}]")
        ticking = step.phase == "upload" or event.get("event") == "progress"
        if not ticking or (step.phase == "upload" and step.done == 0):
            log.info("%s: %s", target.name, step.text())  # phases, and each upload as it starts
        if on_progress is not None:
            on_progress(step)

    if store is not None:
        from .store import using_store

        opened: Any = using_store(store)
    else:
        opened = contextlib.nullcontext(None)
    slack = target.command_timeout / 2
    # The host's own outputs for --eval come from the local agent: before the board (maybe local itself) is locked.
    host = [host_outputs(w.data, w.eval_set) if w.eval_set is not None else None for w in works]
    groups = [ProfileGroup(w.model, target.name, repeat) for w in works]
    if keep is not None:
        keep.extend(groups)
    with opened as db, connect(target, on_event=events, wait_seconds=wait_seconds) as board:
        remotes = [board.ensure_model(w.data, w.model.sha256) for w in works]  # each file sent once for all runs
        remote_inputs = None
        if inputs is not None:
            path = Path(inputs)
            remote_inputs = board.ensure_data(path.read_bytes(), path.suffix)
        if repeat > 1:
            batch = uuid.uuid4().hex
            for group in groups:
                group.batch = batch
                if db is not None:
                    facts = {"options": asdict(options), "order": [w.model.name for w in works], "repeat": repeat}
                    group.id = db.create_group(group.model.to_dict(), target.name, repeat, batch, facts)
            for group in groups:
                group.partners = [f"g:{g.id} {g.model.name}" for g in groups if g is not group and g.id is not None]
        try:
            for index in range(1, repeat + 1):
                for work, remote, group, expected in zip(works, remotes, groups, host, strict=True):
                    position.update(model=work.model.name, index=index)
                    evaluate = expected if index == 1 else None  # accuracy does not vary by process: once
                    result = _one_run(board, work, remote, remote_inputs, target, options, slack, events, evaluate)
                    if group.batch is not None:
                        result.group = {"id": group.id, "index": index, "of": repeat, "batch": group.batch}
                    if db is not None:
                        result.id = db.add_profile(result)
                    group.runs.append(result)
                    _done(target, result, on_progress, final=index == repeat and work is works[-1])
        except BaseException as exc:  # an error, or Ctrl-C: what was measured stays stored, its groups say why
            measured = sum(len(g.runs) for g in groups)
            if isinstance(exc, EdgeprofError) and repeat * len(works) > 1:
                where = ", ".join(f"g:{g.id}" for g in groups if g.id is not None)
                kept = "stored" + (f" in group(s) {where}" if where else "") if db is not None else "returned"
                exc.problem = f"{exc.problem} (after {measured} of {repeat * len(works)} runs; those are {kept})"
            reason = (
                exc.problem
                if isinstance(exc, EdgeprofError)
                else ("interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
            )
            for group in groups:
                group.error = reason
                if db is not None and group.id is not None:
                    with contextlib.suppress(EdgeprofError):  # never hide the real error
                        db.finish_group(group.id, reason)
            raise
        if db is not None:
            for group in groups:
                if group.id is not None:
                    db.finish_group(group.id)
    return groups


def _one_run(
    board: Any,
    work: Work,
    remote_model: str,
    remote_inputs: str | None,
    target: Target,
    options: ProfileOptions,
    slack: float,
    events: EventHandler,
    host_expected: Any = None,
) -> ProfileResult:
    """One fresh agent process measures one model once (and, given the host's outputs, predicts for ``--eval``).

    With a power meter on the host, each process is metered on its own: its idle before, its loop held until the
    meter has read enough, its idle after, its clock alignment (a group's energy is then the median of its runs')."""
    metered = None
    if target.meter is not None and options.use_meter and options.energy != "off":
        from .meters import MeteredRun

        metered = MeteredRun(target.name, target.meter, options.energy_precision)
        metered.check()  # a meter that does not answer costs the energy figure (with the fix), never the run
        options = metered.options(options)
    args = {**options.agent_args(), "model": remote_model, **(metered.agent_args(options) if metered else {})}
    if remote_inputs is not None:
        args["inputs"] = remote_inputs
    evaluate = work.eval_set is not None and host_expected is not None
    with board.agent(probe=False) as agent:  # the profile op reports the runtime it uses: no probing needed

        def board_clock() -> float:
            return float(agent.call("clock", timeout=10)["monotonic"])

        def agent_events(event: dict[str, Any]) -> None:
            events(event)
            if metered is not None:
                metered.on_event(event, agent.signal)

        try:
            if metered is not None:
                metered.start(board_clock)
            measurement = agent.call(
                "profile",
                args,
                timeout=agent_deadline(options, slack),
                on_event=agent_events,
                fix=f"retry; if the board is just slow, give it more time: the slack is half of command_timeout "
                f"(now {target.command_timeout:g} s) in [targets.{target.name}] of the config",
            )
            if metered is not None:
                measurement["energy"] = metered.finish(board_clock, measurement)
        finally:
            if metered is not None:
                metered.close()
        if evaluate:
            board_outputs, board_answer = predict_on_board(board, agent, remote_model, work.eval_set, options)
        hello = agent.hello
    if evaluate:
        measurement["accuracy"] = compare(work.eval_set, board_outputs, board_answer, host_expected)
    device = dict(hello.get("device", {}))
    if measurement.get("ops"):  # what each operator costs, from the file; the board's peak joins its device facts
        ops = Operators.from_dict(measurement["ops"])
        ops_costs.annotate(ops, work.data, (measurement.get("latency_ms") or {}).get("median"))
        measurement["ops"] = ops.to_dict()
        if ops.peak is not None and ops.peak.gmacs_per_s:
            device["peak"] = ops.peak.fact()
    return ProfileResult(
        model=work.model,
        target=target.name,
        device=device,
        agent_version=hello.get("agent_version", "?"),
        options=options,
        measurement=measurement,
    )


def _done(target: Target, result: ProfileResult, on_progress: ProgressHandler | None, *, final: bool) -> None:
    lat = result.latency_ms
    stored = f", stored as #{result.id}" if result.id is not None else ""
    done = f"done: median {_table.ms(lat['median'])} ms, p90 {_table.ms(lat['p90'])} ms{stored}"
    if result.device.get("emulated"):
        done += " (EMULATED: not a speed figure)"
    log.info("%s: %s", target.name, done)
    if on_progress is not None and final:
        on_progress(Progress(target.name, "done", done, final=True))
