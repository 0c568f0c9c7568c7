"""``edgeprof profile``."""

from __future__ import annotations

import shlex
from typing import Any

import click

from ..deploy import DEFAULT_WAIT_SECONDS
from ..errors import EdgeprofError
from ..profile import ProfileOptions, profile
from ..targets import select_targets
from . import _progress
from ._common import emit_json, json_option, mlflow_option, said_to_mlflow, store_option
from .targets import config_option


@click.command("profile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-t",
    "--target",
    multiple=True,
    default=("local",),
    show_default=True,
    help="Target(s) to measure on: names, globs ('lab-*') or groups; repeat or comma-separate for a fleet.",
)
@click.option(
    "-n", "--runs", type=click.IntRange(min=1), default=50, show_default=True, help="Minimum number of measured runs."
)
@click.option(
    "--warmup",
    "warmup_runs",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Minimum number of warm-up runs.",
)
@click.option(
    "--warmup-seconds", type=click.FloatRange(min=0), default=0.5, show_default=True, help="Minimum warm-up time."
)
@click.option(
    "--min-seconds",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Keep measuring until at least this long has passed.",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0.001),
    default=150.0,
    show_default=True,
    help="Stop measuring after this long, even before --runs.",
)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads [runtime default].")
@click.option(
    "--delegate",
    default="xnnpack",
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
    default=0.0,
    show_default=True,
    help="Pause between measured runs (a duty cycle, e.g. 100 for a 10 fps camera).",
)
@click.option(
    "--duty-cycle",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Share of the time the model runs, e.g. 0.1: each run is followed by a pause nine times its length "
    "[back to back].",
)
@click.option("--cpus", default=None, metavar="LIST", help="Pin the agent to these CPUs, e.g. 0,1 or 4-7.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the random inputs.")
@click.option(
    "--energy",
    default="auto",
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
    default=1.0,
    show_default=True,
    help="Measure idle power this long before the model loads (0: skip, no above-idle figure).",
)
@click.option(
    "--meter/--no-meter",
    "use_meter",
    default=True,
    show_default=True,
    help="Read the target's power meter on the host ([targets.NAME.meter] in the config), if it has one.",
)
@click.option(
    "--energy-precision",
    type=click.FloatRange(0.1, 100),
    default=5.0,
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
    model: str,
    target: tuple[str, ...],
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
    wait_seconds: float,
    mlflow_uri: str | None,
    as_json: bool,
    store: str,
) -> None:
    """Measure a TFLite model's latency, memory and energy on a target.

    \b
    Examples:
      edgeprof profile model.tflite
      edgeprof profile model.tflite --runs 200 --threads 2 --json
      edgeprof profile model.tflite --delegate none --min-seconds 5
      edgeprof profile model.tflite --eval data.npz
      edgeprof profile model.tflite --pause-ms 100 --cpus 0 --threads 1
      edgeprof profile model.tflite --energy-command "meter --watts"
      edgeprof profile model.tflite --target kitchen-pi --duty-cycle 0.1 --energy-precision 3
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
        code = run_fleet(model, chosen, as_json=as_json, store=store, mlflow_uri=mlflow_uri, **kwargs)
        click.get_current_context().exit(code)
    with _progress.display(not as_json) as shown:
        say = _progress.say_line(shown)
        board = chosen[0].name

        def waiting(event: dict[str, Any]) -> None:  # said in pipes and CI logs too: a wait must never look like a hang
            if event.get("phase") == "waiting":
                limit = "for ever" if wait_seconds == float("inf") else f"at most {wait_seconds:g} s, --wait-seconds"
                say(f"waiting for {board}, held by {event.get('holder')} ({limit})")

        result = profile(
            model,
            chosen[0],
            options=options,
            inputs=inputs,
            eval_data=eval_data,
            store=store,
            on_event=waiting,
            on_progress=shown,
            wait_seconds=wait_seconds,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.summary())
        click.echo(f"stored as profile run {result.id}")
    _warn_meter(result.target, result.energy)
    if mlflow_uri:
        to_mlflow([result], mlflow_uri, store)


def to_mlflow(results: list[Any], uri: str, store: str) -> None:
    """Send stored results to MLflow; a server that fails costs only the upload (a TrackingError line, exit 2)."""
    from .. import tracking
    from ..store import using_store

    tracker = tracking.Tracker(uri)
    with using_store(store) as db:
        for result in results:
            run = tracking.log_profile(tracker, result.to_dict(), store=db, summary=result.summary())
            said_to_mlflow(f"profile run {result.id}", run, uri)


def _warn_meter(target: str, energy: dict[str, Any]) -> None:
    """A meter that could not give a figure is said on stderr too: --json and CI logs must not hide it."""
    if energy.get("source") == "meter" and not energy.get("available"):
        fix = f"; {energy['fix']}" if energy.get("fix") else ""
        click.echo(f"edgeprof: warning: {target}: energy unavailable: {energy.get('reason')}{fix}", err=True)


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
