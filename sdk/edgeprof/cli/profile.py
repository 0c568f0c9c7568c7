"""``edgeprof profile``."""

from __future__ import annotations

import click

from ..profile import ProfileOptions, profile
from ..targets import select_targets
from ._common import emit_json, json_option, store_option
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
    as_json: bool,
    store: str,
) -> None:
    """Measure a TFLite model's latency and memory on a target.

    \b
    Examples:
      edgeprof profile model.tflite
      edgeprof profile model.tflite --runs 200 --threads 2 --json
      edgeprof profile model.tflite --delegate none --min-seconds 5
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
    )
    chosen = select_targets(target)
    if len(chosen) > 1:  # a fleet: boards in parallel, one live line each, exit code 1 if any board failed
        from ._fleet import run_fleet

        kwargs = {"options": options, "inputs": inputs}
        click.get_current_context().exit(run_fleet(model, chosen, as_json=as_json, store=store, **kwargs))
    result = profile(model, chosen[0], options=options, inputs=inputs, store=store)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.summary())
        click.echo(f"stored as profile run {result.id}")
