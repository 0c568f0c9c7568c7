"""``edgeprof demo``."""

from __future__ import annotations

import click

from ._common import json_option, progress_printer, store_option


@click.command("demo")
@click.option(
    "-o",
    "--out",
    default="edgeprof-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the models, manifests and summary.json.",
)
@click.option("--runs", type=click.IntRange(min=1), default=500, show_default=True, help="Measured runs per model.")
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Fresh agent processes per model, interleaved: the unit of replication that 'faster' is judged over.",
)
@json_option
@store_option
def command(out: str, runs: int, repeat: int, as_json: bool, store: str) -> None:
    """Train, compress and profile a digits CNN on this machine, end to end.

    Trains a small CNN on scikit-learn's handwritten digits, compresses it (80 % pruning, 16 clusters keeping the
    zeros, full int8), profiles the float baseline and the compressed model on the 'local' target (--repeat fresh
    agent processes each, interleaved; 'faster' is the verdict of 'edgeprof results compare' on the two groups), and
    prints one comparison table. Every figure is also written to OUT/summary.json, and the data split to OUT/digits.npz
    (for your own compressions of OUT/digits_cnn.keras, evaluated on the same test set).

    \b
    Example:
      edgeprof demo --out /tmp/demo
    """
    from .. import demo

    result = demo.run(out, store=store, runs=runs, repeat=repeat, progress=progress_printer(not as_json))
    if as_json:
        from ._common import emit_json

        emit_json(result.summary)
        return
    click.echo("")
    click.echo(result.table())
    s = result.summary
    processes = s["baseline"]["processes"]
    click.echo(
        f"\ncompressed model: {s['compressed']['gzip_ratio']:.1f}x smaller gzipped, accuracy "
        f"{-s['accuracy_drop_pp']:+.1f} pp, latency {s['latency']['verdict']} ({s['latency']['test']}"
        f"{', one process each' if processes == 1 else ''}: {s['latency']['compare']}); {processes} process"
        f"{'es' * (processes != 1)} a model, {s['baseline']['runs']:,} and {s['compressed']['runs']:,} inferences "
        f"timed, 1 thread, {s['compressed']['runtime']} ({s['compressed']['delegate']})"
    )
    click.echo(f"wrote {result.out_dir / 'summary.json'}")
    out_dir = result.out_dir
    click.echo(
        f"next: edgeprof compress {out_dir / 'digits_cnn.keras'} -o {out_dir / 'mine'} --data "
        f"{out_dir / 'digits.npz'} --prune 0.5 --quantize int8   (the demo's own data split, so its accuracy is "
        "compared with the demo's baseline on the same test set)"
    )
