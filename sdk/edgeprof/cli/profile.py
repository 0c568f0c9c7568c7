"""``edgeprof profile``."""

from __future__ import annotations

import click

from ..profile import ProfileOptions, profile
from ._common import emit_json, json_option, store_option


@click.command("profile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("-t", "--target", default="local", show_default=True, help="Target to measure on.")
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
def command(
    model: str,
    target: str,
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
    result = profile(model, target, options=options, inputs=inputs, store=store)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.summary())
        click.echo(f"stored as profile run {result.id}")
