"""Profile a TFLite model on a target: one call, one result with a ``summary()``.

result = edgeprof.profile("model.tflite", target="local", runs=200)
print(result.summary())
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _table
from ._version import __version__
from .accuracy import compare, host_outputs, load_eval, predict_on_board
from .deploy import DEFAULT_WAIT_SECONDS, connect
from .errors import DataError
from .modelfile import ModelFile, open_tflite
from .progress import Progress, ProgressHandler, from_board_event
from .targets import Target, apply_sensor_defaults, resolve_target


@dataclass(frozen=True)
class ProfileOptions:
    """How to measure. The defaults follow TFLite's benchmark_model."""

    runs: int = 50
    warmup_runs: int = 1
    warmup_seconds: float = 0.5
    min_seconds: float = 1.0
    max_seconds: float = 150.0
    threads: int | None = None
    delegate: str = "xnnpack"
    runtime: str | None = None
    pause_ms: float = 0.0
    cpus: tuple[int, ...] | None = None
    seed: int = 0
    max_samples: int = 10000  # raw samples returned; beyond this an even subset plus an exact histogram
    delegate_options: dict[str, str] | None = None  # passed to an external delegate library (load_delegate)
    # Energy: "auto" (first sensor found), "off", or one plugin: jetson-ina3221, rpi5-pmic, ina2xx, battery, rapl,
    # hwmon, command. energy_command is an argument list printing watts (run on the board, no shell).
    energy: str = "auto"
    energy_command: tuple[str, ...] | None = None
    energy_rate_hz: float | None = None  # None: 100 Hz for sysfs sensors, 10 Hz for command-based ones
    idle_seconds: float = 1.0  # idle power is measured this long before the model loads (when a sensor exists)
    thermal_interval_s: float = 1.0  # temperatures and throttle state are polled this often during the run
    duty_cycle: float | None = None  # share of the time the model runs (0-1]; None: back to back (or pause_ms)
    # A power meter on the host ([targets.NAME.meter]): used unless use_meter is False or energy is "off"; the run
    # lasts until energy per inference is known to within this relative 95 % interval (or max_seconds).
    use_meter: bool = True
    energy_precision: float = 0.05

    def agent_args(self) -> dict[str, Any]:
        args = asdict(self)
        for host_only in ("use_meter", "energy_precision"):
            args.pop(host_only)
        args["cpus"] = list(self.cpus) if self.cpus else None
        args["energy_command"] = list(self.energy_command) if self.energy_command else None
        return args


@dataclass
class ProfileResult:
    """One model measured on one board, with the conditions of the run."""

    model: ModelFile
    target: str
    device: dict[str, Any]
    agent_version: str
    options: ProfileOptions
    measurement: dict[str, Any]
    created_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    edgeprof_version: str = __version__
    id: int | None = None

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
        }

    def summary(self) -> str:
        m = self.measurement
        lat = m["latency_ms"]
        dev = self.device
        mem = m.get("memory", {})
        peak = mem.get("peak_rss_kb")
        delta = mem.get("model_rss_delta_kb")
        threads = m.get("threads") or "default"
        lines = [
            *(
                [f"EMULATED board ({dev.get('emulated_reason', 'emulated')}): timings check correctness, not speed"]
                if dev.get("emulated")
                else []
            ),
            f"{self.model.name} ({_table.size(self.model.size_bytes)}, sha256 {self.model.sha256[:12]}) on "
            f"{self.target}: {dev.get('board') or dev.get('machine')}, {dev.get('os') or dev.get('system')}",
            f"runtime {self.runtime}, delegate {m.get('delegate')}, threads {threads}, "
            f"{lat['count']} runs in {m.get('measured_seconds', 0):.2f} s after {m['warmup']['runs']} warm-up runs",
            f"init {_table.ms(m['init_ms'])} ms, first inference {_table.ms(m['first_inference_ms'])} ms",
            *_summary_delegation(m),
            "",
            _table.table(
                ["latency (ms)", "min", "median", "mean", "p90", "p95", "p99", "max", "std"],
                [["", *(_table.ms(lat.get(k)) for k in ("min", "median", "mean", "p90", "p95", "p99", "max", "std"))]],
            ),
            "",
            f"peak RSS {_table.size(peak * 1024 if peak else None)}"
            + (f" (model adds {_table.size(delta * 1024)})" if delta is not None else "")
            + _summary_memory(mem),
            *_summary_energy(m.get("energy")),
            *_summary_thermal(m.get("thermal"), m.get("throttled")),
            *_summary_accuracy(m.get("accuracy")),
            *_summary_stability(m),
        ]
        return "\n".join(line for line in lines if line is not None)


def _summary_delegation(m: dict[str, Any]) -> list[str]:
    d = m.get("delegation") or {}
    if d.get("applied") is None:
        return [f"delegate evidence: {d['evidence']}"] if d.get("evidence") else []
    if not d.get("applied"):
        return [f"delegate: no op was delegated ({d.get('ops', '?')} ops run on builtin kernels)"]
    left = ", ".join(d.get("undelegated_ops") or [])
    return [
        f"delegate: {d.get('delegated_ops')}/{d.get('ops')} ops in {d.get('delegate_nodes')} delegate node(s)"
        + (f"; not delegated: {left}" if left else "")
    ]


def _summary_memory(mem: dict[str, Any]) -> str:
    parts = []
    load, run = mem.get("peak_rss_load_kb"), mem.get("peak_rss_inference_kb")
    if load and run:
        parts.append(f"load {_table.size(load * 1024)}, inference {_table.size(run * 1024)}")
    if mem.get("peak_reset_problem"):
        parts.append("peak not reset: " + mem["peak_reset_problem"])
    arena = mem.get("tensor_arena") or {}
    if arena.get("available"):
        builtin = arena.get("builtin_bytes")
        parts.append(
            f"tensor arena {_table.size(arena['estimate_bytes'])} (LiteRT's plan replayed"
            + (f"; {_table.size(builtin)} with builtin kernels, as inspect shows" if arena.get("delegated") else "")
            + ")"
        )
    board = mem.get("board") or {}
    if board.get("total_kb"):
        free = _table.size((board.get("available_kb") or 0) * 1024)
        parts.append(f"board {free} free of {_table.size(board['total_kb'] * 1024)}")
    return f"; {'; '.join(parts)}" if parts else ""


def _summary_energy(energy: dict[str, Any] | None) -> list[str]:
    if energy and energy.get("source") == "meter":
        from .meters import words

        return words.lines(energy)
    return [_summary_sensor(energy)]


def _summary_sensor(energy: dict[str, Any] | None) -> str:
    if not energy:
        return "energy: not measured by this agent"
    if not energy.get("available"):
        checked = energy.get("checked") or {}
        if "energy" not in checked and checked:
            return f"energy: unavailable, no power sensor found (tried {', '.join(checked)}; --json has each reason)"
        return f"energy: unavailable ({energy.get('reason', 'no sensor')})"
    above = energy.get("mj_per_inference_above_idle")
    idle = energy.get("idle_w")

    def mj(value: float) -> str:  # float noise of equal means is not a figure
        return "0" if abs(value) < 1e-9 else f"{value:.4g}"

    return (
        f"energy: {mj(energy['mj_per_inference'])} mJ/inference"
        + (f" ({mj(above)} above idle {idle:.3g} W)" if above is not None and idle is not None else "")
        + f", mean {energy['mean_w']:.3g} W; {energy.get('label')}"
        + (f" [{energy['total']}]" if energy.get("total") else "")
        + f" at {energy.get('sample_rate_hz', 0):.0f} Hz, {energy.get('samples')} readings"
    )


def _summary_thermal(thermal: dict[str, Any] | None, throttled: bool | None) -> list[str]:
    if not thermal:
        return []
    lines = []
    before, after = thermal.get("before") or {}, thermal.get("after") or {}
    hottest = max(after.get("zones") or [], key=lambda z: z["temp_c"], default=None)
    if hottest is not None:
        start = next((z["temp_c"] for z in before.get("zones") or [] if z["zone"] == hottest["zone"]), None)
        peak = (thermal.get("max_temp_c") or {}).get(hottest["zone"])
        lines.append(
            f"temperature ({hottest.get('type') or hottest['zone']}): "
            + (f"{start:.1f} -> " if start is not None else "")
            + f"{hottest['temp_c']:.1f} C"
            + (f" (max {peak:.1f} C)" if peak is not None else "")
        )
    clocks_before, clocks_after = before.get("cpu_mhz") or {}, after.get("cpu_mhz") or {}
    if clocks_after:

        def span(clocks: dict[str, float]) -> str:
            low, high = min(clocks.values()), max(clocks.values())
            return f"{low:.0f}" if low == high else f"{low:.0f}-{high:.0f}"

        lines.append(f"CPU clocks: {span(clocks_before) if clocks_before else '?'} -> {span(clocks_after)} MHz")
    if throttled:
        lines.append("THROTTLED during the run: " + "; ".join(thermal.get("throttle_evidence") or []))
    elif throttled is False:
        lines.append(f"throttling: none seen ({', '.join(thermal.get('throttle_sources') or [])})")
    else:
        lines.append(f"throttling: unknown ({thermal.get('throttle_reason', 'no source')})")
    return lines


def _summary_accuracy(acc: dict[str, Any] | None) -> list[str]:
    if not acc:
        return []
    board, host = acc["board"], acc["host"]
    return [
        f"accuracy on the board: {board['accuracy']:.2%} vs {host['accuracy']:.2%} on the host "
        f"({acc['difference'].get('accuracy', 0):+.2%}; same class for {acc['agreement']:.2%} of "
        f"{acc['samples']} samples of {acc['eval_data']})"
    ]


def _summary_stability(m: dict[str, Any]) -> list[str]:
    """The agent's stability checks (edgeprof_agent/stability.py): its warnings as it wrote them."""
    found = m.get("stability")
    if not found:
        return []
    conditions = m.get("conditions") or {}
    threads, sampler, timer = conditions.get("threads") or {}, conditions.get("sampler") or {}, found.get("timer") or {}
    facts = [f"{found['samples']} samples"]
    if timer.get("empty_call_ns") is not None:
        facts.append(f"timer {timer['empty_call_ns']:.0f} ns a call")
    if threads.get("used"):
        facts.append(f"{threads['used']} thread(s) used of {threads.get('requested') or 'default'}")
    facts.append(f"sampler {sampler['where']}" if sampler.get("ran") else "no sampler ran")
    head = "stability: ok" if found["stable"] else f"stability: {len(found['warnings'])} warning(s)"
    return [f"{head} ({', '.join(facts)})", *(f"  ! {w}" for w in found["warnings"])]


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
        if event is not None and event.get("event") == "progress" and phase == "measure":
            left = max(0.0, options.max_seconds - float(event.get("seconds") or 0.0))
            return left + slack, f"measuring (at most {left:.0f} s left + {slack:.0f} s of slack)"
        planned, doing = {
            None: (options.idle_seconds, "preparing the measurement"),
            "idle": (options.idle_seconds, "measuring idle power"),
            "load": (0.0, "loading the model"),
            "warmup": (options.warmup_seconds + options.max_seconds, "warming up"),
            "measure": (options.max_seconds, "measuring"),
            "idle_after": (options.max_seconds, "measuring idle power after the run, for the meter"),
        }.get(phase, (0.0, str(phase)))
        return planned + slack, f"{doing} (planned at most {planned:.0f} s + {slack:.0f} s of slack)"

    return plan


def profile(
    model: str | Path,
    target: str | Target = "local",
    *,
    options: ProfileOptions | None = None,
    inputs: str | Path | None = None,
    eval_data: str | Path | None = None,
    store: Any = "default",
    on_event: EventHandler | None = None,
    on_progress: ProgressHandler | None = None,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    **option_overrides: Any,
) -> ProfileResult:
    """Measure ``model`` on ``target`` and (unless ``store=None``) keep the result in the results store.

    Keyword arguments not named here are :class:`ProfileOptions` fields, e.g. ``runs=200, threads=2``.
    ``eval_data`` (an .npz with ``x_test, y_test`` or ``x, y``) adds on-board accuracy against the host's.
    ``on_progress`` receives :class:`edgeprof.progress.Progress` events (``on_event`` the raw board events);
    ``wait_seconds`` bounds the wait for a board another profile holds (None: for ever).
    """
    options = options or ProfileOptions()
    if option_overrides:
        options = ProfileOptions(**{**asdict(options), **option_overrides})
    work = check_work(model, inputs, eval_data)
    model_file, data, eval_set = work.model, work.data, work.eval_set
    target = resolve_target(target)
    options = apply_sensor_defaults(target, options)
    metered = None
    if target.meter is not None and options.use_meter and options.energy != "off":
        from .meters import MeteredRun

        metered = MeteredRun(target.name, target.meter, options.energy_precision)
        metered.check()  # a meter that does not answer costs the energy figure (with the fix), never the run
        options = metered.options(options)

    def events(event: dict[str, Any]) -> None:
        if on_event is not None:
            on_event(event)
        step = from_board_event(target.name, event, options)
        if step is None:
            return
        ticking = step.phase == "upload" or event.get("event") == "progress"
        if not ticking or (step.phase == "upload" and step.done == 0):
            log.info("%s: %s", target.name, step.text())  # phases, and each upload as it starts
        if on_progress is not None:
            on_progress(step)

    slack = target.command_timeout / 2
    with connect(target, on_event=events, wait_seconds=wait_seconds) as board:
        remote_model = board.ensure_model(data, model_file.sha256)
        args = {**options.agent_args(), "model": remote_model, **(metered.agent_args(options) if metered else {})}
        if inputs is not None:
            path = Path(inputs)
            args["inputs"] = board.ensure_data(path.read_bytes(), path.suffix)
        with board.agent() as agent:

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
            if eval_set is not None:
                board_outputs, board_answer = predict_on_board(board, agent, remote_model, eval_set, options)
            hello = agent.hello
    if eval_set is not None:
        measurement["accuracy"] = compare(eval_set, board_outputs, board_answer, host_outputs(data, eval_set))
    result = ProfileResult(
        model=model_file,
        target=target.name,
        device=hello.get("device", {}),
        agent_version=hello.get("agent_version", "?"),
        options=options,
        measurement=measurement,
    )
    if store is not None:
        from .store import using_store

        with using_store(store) as db:
            result.id = db.add_profile(result)
    lat = result.latency_ms
    stored = f", stored as #{result.id}" if result.id is not None else ""
    done = f"done: median {_table.ms(lat['median'])} ms, p90 {_table.ms(lat['p90'])} ms{stored}"
    if result.device.get("emulated"):
        done += " (EMULATED: not a speed figure)"
    log.info("%s: %s", target.name, done)
    if on_progress is not None:
        on_progress(Progress(target.name, "done", done, final=True))
    return result
