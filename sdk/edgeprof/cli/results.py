"""``edgeprof results``."""

from __future__ import annotations

import click

from .. import _table
from ..store import using_store
from ._common import emit_json, json_option, store_option


@click.group("results")
def command() -> None:
    """List and show stored runs.

    \b
    Examples:
      edgeprof results list
      edgeprof results list --target local --json
      edgeprof results show 3
    """


@command.command("list")
@click.option("--model", default=None, help="Model name or SHA-256 prefix.")
@click.option("--target", default=None, help="Target name.")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@store_option
def list_runs(model: str | None, target: str | None, limit: int, as_json: bool, store: str) -> None:
    """Profile runs, newest first."""
    with using_store(store) as db:
        rows = db.profiles(model=model, target=target, limit=limit)
    if as_json:
        emit_json([{k: v for k, v in row.items() if k != "record"} for row in rows])
        return
    if not rows:
        click.echo("no profile runs stored yet; try 'edgeprof profile MODEL.tflite'")
        return
    click.echo(
        _table.table(
            ["id", "when (UTC)", "model", "sha256", "target", "runtime", "threads", "median ms", "p90 ms", "peak RSS"],
            [
                [
                    r["id"],
                    r["created_at"][:19].replace("T", " "),
                    r["model_name"],
                    r["model_sha256"][:12],
                    r["target"],
                    f"{r['runtime']} {r['runtime_version']}",
                    r["threads"] or "default",
                    _table.ms(r["median_ms"]),
                    _table.ms(r["p90_ms"]),
                    _table.size(r["peak_rss_kb"] * 1024 if r["peak_rss_kb"] else None),
                ]
                for r in rows
            ],
            align="rllllllrrr",
        )
    )


@command.command("show")
@click.argument("run_id", type=int)
@store_option
def show(run_id: int, store: str) -> None:
    """One profile run, everything that was recorded, as JSON."""
    with using_store(store) as db:
        emit_json(db.profile(run_id)["record"])
