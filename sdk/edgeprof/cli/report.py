"""``edgeprof report``."""

from __future__ import annotations

from pathlib import Path

import click

from . import _progress
from ._common import emit_json, json_option, store_option


@click.command("report")
@click.option(
    "-o",
    "--out",
    default="edgeprof-report.html",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The HTML file to write (one self-contained file).",
)
@click.option("--png", "png_dir", default=None, type=click.Path(file_okay=False), help="Also write each plot here.")
@click.option("--model", default=None, help="Only this model (file name, * globs, or SHA-256 prefix).")
@click.option("--target", default=None, help="Only this target (* globs).")
@click.option("--since", default=None, help="Only runs from this time: 2026-11-27, or an age: 12h, 3d.")
@click.option(
    "--budget",
    "budget_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Colour figures by this budget (TOML, as for 'edgeprof check') and list its checks.",
)
@click.option(
    "--sensitivity",
    "sensitivity",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="A scan from 'edgeprof sensitivity' to draw as a heat map (repeatable).",
)
@json_option
@store_option
def command(
    out: str,
    png_dir: str | None,
    model: str | None,
    target: str | None,
    since: str | None,
    budget_file: str | None,
    sensitivity: tuple[str, ...],
    as_json: bool,
    store: str,
) -> None:
    """Write an HTML report of the stored runs: plots and figures of merit.

    Latency distributions per target and model, accuracy against p90 latency and against size with the Pareto
    front, size per layer, energy per inference where measured, and for each compressed model against its float32
    baseline: compression ratio, accuracy difference, efficiency improvement, throughput and space efficiency.
    Colours come from the verdict of 'results compare' and, with --budget, from the budget's limits.

    \b
    Examples:
      edgeprof report --out report.html
      edgeprof report --store /tmp/demo.db --out demo.html --png plots/
      edgeprof report --target local --since 1w --json
      edgeprof report --budget budget.toml --out report.html
    """
    from ..report import build_report
    from ..store import using_store

    with using_store(store) as db, _progress.bar("drawing plots", enabled=not as_json) as step:
        report = build_report(
            db, model=model, target=target, since=since, budget=budget_file, progress=step, sensitivity=sensitivity
        )
    Path(out).write_text(report.html(), encoding="utf-8")
    written = report.write_pngs(png_dir) if png_dir else []
    if as_json:
        emit_json({**report.to_dict(), "html": str(out), "pngs": [str(p) for p in written]})
        return
    click.echo(report.summary())
    click.echo(f"wrote {out}" + (f" and {len(written)} PNG files in {png_dir}" if written else ""))
