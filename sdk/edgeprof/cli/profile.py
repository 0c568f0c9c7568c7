"""``edgeprof profile``."""

from __future__ import annotations

import shlex
from typing import Any

import click

from edgeprof_agent.defaults import DEFAULTS, HOST_DEFAULTS

from ..deploy import DEFAULT_WAIT_SECONDS
from ..errors import EdgeprofError
from ..profile import DEFAULT_REPEAT, ProfileOptions, profile_models
from ..targets import select_targets
from . import _progress
from ._common import emit_json, json_option, mlflow_option, said_to_mlflow, store_option
from .targets import config_option


@click.command("profile")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-t",
    "--target",
    multiple=True,
    default=("local",),
    show_default=True,
    help="Target(s) to measure on: names, globs ('lab-*') or groups; repeat or comma-separate for a fleet.",
)
@click.option(
    "-r",
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help=f"Measure each model in this many fresh agent processes, stored as one group (several models: "
    f"interleaved a, b, a, b, ...). One process cannot measure the process-to-process noise; {DEFAULT_REPEAT} "
    "bounds it (see README).",
)
@click.option(
    "-n",
    "--runs",
    type=click.IntRange(min=1),
    default=DEFAULTS["runs"],
    show_default=True,
    help="Minimum number of measured runs.",
)
@click.option(
    "--warmup",
    "warmup_runs",
    type=click.IntRange(min=0),
    default=DEFAULTS["warmup_runs"],
    show_default=True,
    help="Minimum number of warm-up runs.",
)
@click.option(
    "--warmup-seconds",
    type=click.FloatRange(min=0),
    default=DEFAULTS["warmup_seconds"],
    show_default=True,
    help="Minimum warm-up time.",
)
@click.option(
    "--min-seconds",
    type=click.FloatRange(min=0),
    default=DEFAULTS["min_seconds"],
    show_default=True,
    help="Keep measuring until at least this long has passed.",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0.001),
    default=DEFAULTS["max_seconds"],
    show_default=True,
    help="Stop measuring after this long, even before --runs.",
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads [runtime default].")
@click.option(
    "--delegate",
    default=DEFAULTS["delegate"],
    show_default=True,
    help="xnnpack, none, edgetpu, or a path to an external delegate library.",
)
@click.option("--runtime", default=None, help="ai_edge_litert, tflite_runtime or tensorflow [first found].")
@click.option(
    "--inputs",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Real input data (.npy or .npz) instead of random inputs.",
)
@click.option(
    "--delegate-option",
    "delegate_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for an external delegate library (repeatable), e.g. --delegate-option device=usb.",
)
@click.option(
    "--pause-ms",
    type=click.FloatRange(min=0),
    default=DEFAULTS["pause_ms"],
    show_default=True,
    help="Pause between measured runs (a duty cycle, e.g. 100 for a 10 fps camera).",
)
@click.option(
    "--duty-cycle",
    type=click.FloatRange(0, 1, min_open=True),
    default=DEFAULTS["duty_cycle"],
    help="Share of the time the model runs, e.g. 0.1: each run is followed by a pause nine times its length "
    "[back to back].",
)
@click.option("--cpus", default=None, metavar="LIST", help="Pin the agent to these CPUs, e.g. 0,1 or 4-7.")
@click.option(
    "--seed", type=click.IntRange(min=0), default=DEFAULTS["seed"], show_default=True, help="Seed of the random inputs."
)
@click.option(
    "--energy",
    default=DEFAULTS["energy"],
    show_default=True,
    help="Power sensor: auto, off, jetson-ina3221, rpi5-pmic, ina2xx, battery, rapl, hwmon or command.",
)
@click.option(
    "--energy-command",
    default=None,
    metavar="COMMAND",
    help="A command on the board that prints watts (split like a shell would, run without one).",
)
@click.option(
    "--energy-rate",
    "energy_rate_hz",
    type=click.FloatRange(min=0.1, max=1000),
    default=None,
    help="Power sampling rate in Hz [100 for sysfs sensors, 10 for command-based ones].",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(min=0),
    default=DEFAULTS["idle_seconds"],
    show_default=True,
    help="Measure idle power this long before the model loads (0: skip, no above-idle figure).",
)
@click.option(
    "--meter/--no-meter",
    "use_meter",
    default=HOST_DEFAULTS["use_meter"],
    show_default=True,
    help="Read the target's power meter on the host ([targets.NAME.meter] in the config), if it has one; with "
    "--repeat each process is metered on its own.",
)
@click.option(
    "--energy-precision",
    type=click.FloatRange(0.1, 100),
    default=HOST_DEFAULTS["energy_precision"] * 100,
    show_default=True,
    metavar="PERCENT",
    help="With a meter: run until energy per inference is known to ±PERCENT (95 % interval), or --max-seconds.",
)
@click.option(
    "--eval",
    "eval_data",
    type=click.Path(dir_okay=False),
    default=None,
    help="Evaluation .npz (x_test, y_test or x, y): report accuracy on the board against the host's.",
)
@click.option(
    "--ops",
    is_flag=True,
    help="Also time every operator (each cut out and run alone on the board) and the board's peak MAC/s; "
    "--max-seconds bounds this part too.",
)
@click.option(
    "--ops-rounds",
    type=click.IntRange(min=1),
    default=DEFAULTS["ops_rounds"],
    show_default=True,
    help="With --ops: at least this many rounds of every operator (and --min-seconds).",
)
@click.option(
    "--wait-seconds",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT_SECONDS,
    show_default=True,
    help="How long to wait for a board another profile is using, then give up (0: at once; inf: for ever). "
    "The default outlasts a profile with default options yet never blocks a CI job for good.",
)
@mlflow_option
@json_option
@store_option
@config_option
def command(
    models: tuple[str, ...],
    target: tuple[str, ...],
    repeat: int,
    runs: int,
    warmup_runs: int,
    warmup_seconds: float,
    min_seconds: float,
    max_seconds: float,
    threads: int | None,
    delegate: str,
    runtime: str | None,
    inputs: str | None,
    delegate_options: tuple[str, ...],
    pause_ms: float,
    duty_cycle: float | None,
    cpus: str | None,
    seed: int,
    energy: str,
    energy_command: str | None,
    energy_rate_hz: float | None,
    idle_seconds: float,
    use_meter: bool,
    energy_precision: float,
    eval_data: str | None,
    ops: bool,
    ops_rounds: int,
    wait_seconds: float,
    mlflow_uri: str | None,
    as_json: bool,
    store: str,
) -> None:
    """Measure TFLite models' latency, memory and energy on a target.

    With --repeat N each model is measured in N fresh agent processes (one connection and one upload for all of
    them) and stored as one group: the summary shows the median of the run medians and the spread between
    processes. Several models are interleaved round by round (a, b, a, b, ...), so drift hits each alike.

    \b
    Examples:
      edgeprof profile model.tflite
      edgeprof profile model.tflite --runs 200 --threads 2 --json
      edgeprof profile model.tflite --repeat 5                           # 5 processes, one group
      edgeprof profile a.tflite b.tflite --repeat 5                       # a, b, a, b, ... then compare g:1 g:2
      edgeprof profile model.tflite --delegate none --min-seconds 5
      edgeprof profile model.tflite --eval data.npz
      edgeprof profile model.tflite --ops --threads 1        # where the time goes, operator by operator
      edgeprof profile model.tflite --pause-ms 100 --cpus 0 --threads 1
      edgeprof profile model.tflite --energy-command "meter --watts"
      edgeprof profile model.tflite --target kitchen-pi --duty-cycle 0.1 --energy-precision 3
      edgeprof profile model.tflite --repeat 5 --mlflow http://mlflow.lab:5000
      edgeprof profile model.tflite --target kitchen-pi
      edgeprof profile model.tflite --target 'lab-*' --target jetson-1    # a fleet, in parallel
    """
    options = ProfileOptions(
        runs=runs,
        warmup_runs=warmup_runs,
        warmup_seconds=warmup_seconds,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
        threads=threads,
        delegate=delegate,
        runtime=runtime,
        delegate_options=_key_values(delegate_options),
        pause_ms=pause_ms,
        cpus=_cpu_list(cpus),
        seed=seed,
        energy=energy,
        energy_command=tuple(shlex.split(energy_command)) if energy_command else None,
        energy_rate_hz=energy_rate_hz,
        idle_seconds=idle_seconds,
        ops=ops,
        ops_rounds=ops_rounds,
        duty_cycle=duty_cycle,
        use_meter=use_meter,
        energy_precision=energy_precision / 100.0,
    )
    if duty_cycle is not None and pause_ms:
        raise EdgeprofError("--duty-cycle and --pause-ms both set the pauses", "give one of them")
    chosen = select_targets(target)
    if len(chosen) > 1:  # a fleet: boards in parallel, one live line each, exit code 1 if any board failed
        from ._fleet import run_fleet

        kwargs = {"options": options, "inputs": inputs, "eval_data": eval_data, "wait_seconds": wait_seconds}
        code = run_fleet(
            list(models), chosen, as_json=as_json, store=store, repeat=repeat, mlflow_uri=mlflow_uri, **kwargs
        )
        click.get_current_context().exit(code)
    with _progress.display(not as_json) as shown:
        say = _progress.say_line(shown)
        board = chosen[0].name

        def waiting(event: dict[str, Any]) -> None:  # said in pipes and CI logs too: a wait must never look like a hang
            if event.get("phase") == "waiting":
                limit = "for ever" if wait_seconds == float("inf") else f"at most {wait_seconds:g} s, --wait-seconds"
                say(f"waiting for {board}, held by {event.get('holder')} ({limit})")

        groups = profile_models(
            models,
            chosen[0],
            repeat=repeat,
            options=options,
            inputs=inputs,
            eval_data=eval_data,
            store=store,
            on_event=waiting,
            on_progress=shown,
            wait_seconds=wait_seconds,
        )
    _show(groups, repeat, as_json)
    warn_meters(groups)
    if mlflow_uri:
        to_mlflow(groups, mlflow_uri, store)


def _show(groups: list[Any], repeat: int, as_json: bool) -> None:
    if repeat == 1:
        results: list[Any] = [g.runs[0] for g in groups]
        if as_json:
            emit_json(results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results])
            return
        for i, result in enumerate(results):
            click.echo(("\n" if i else "") + result.summary())
            click.echo(f"stored as profile run {result.id}" if result.id is not None else "not stored (--store)")
        return
    if as_json:
        emit_json(groups[0].to_dict() if len(groups) == 1 else [g.to_dict() for g in groups])
        return
    for i, group in enumerate(groups):
        click.echo(("\n" if i else "") + group.summary())
        ids = ", ".join(str(r.id) for r in group.runs)
        click.echo(f"stored as group g:{group.id} (profile runs {ids})")
    if len(groups) == 2:
        a, b = groups
        click.echo(f"\ncompare them: edgeprof results compare g:{a.id} g:{b.id}")


def to_mlflow(groups: list[Any], uri: str, store: str) -> None:
    """Send what was just stored to MLflow: a lone run as one MLflow run, a ``--repeat`` group as a parent run
    with one nested run per process. A server that fails costs only the upload (a TrackingError line, exit 2)."""
    from .. import tracking
    from ..store import using_store

    tracker = tracking.Tracker(uri)
    with using_store(store) as db:
        for group in groups:
            if not group.runs:
                continue
            if group.planned == 1:
                result = group.runs[0]
                run = tracking.log_profile(tracker, result.record, store=db, summary=result.summary())
                said_to_mlflow(f"profile run {result.id}", run, uri)
            else:
                run = tracking.log_group(tracker, group.records, group.info(), store=db, summary=group.summary())
                said_to_mlflow(f"group g:{group.id} ({len(group.runs)} runs)", run, uri)


def warn_meters(groups: list[Any]) -> None:
    """A meter that could not give a figure is said on stderr too: --json and CI logs must not hide it."""
    seen: set[str] = set()
    for group in groups:
        for result in group.runs:
            energy = result.record.energy
            if energy is None or energy.origin() != "meter" or energy.mj() is not None:
                continue
            line = f"{result.target}: energy unavailable: {energy.reason}" + (f"; {energy.fix}" if energy.fix else "")
            if line not in seen:
                seen.add(line)
                click.echo(f"edgeprof: warning: {line}", err=True)


def _key_values(pairs: tuple[str, ...]) -> dict[str, str] | None:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise EdgeprofError(f"--delegate-option {pair!r} is not KEY=VALUE", "write it as key=value")
        options[key] = value
    return options or None


def _cpu_list(text: str | None) -> tuple[int, ...] | None:
    """'0,2-3' -> (0, 2, 3)"""
    if not text:
        return None
    cpus: list[int] = []
    try:
        for chunk in text.split(","):
            low, _, high = chunk.strip().partition("-")
            cpus.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise EdgeprofError(f"--cpus {text!r} is not a CPU list", "write it like 0,1 or 4-7") from None
    return tuple(cpus)
