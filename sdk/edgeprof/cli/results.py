"""``edgeprof results``: list, show, compare and export what the store keeps."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from .. import _table
from ..store import using_store
from ..store.labels import Labels, model_label
from ..store.lineage import describe_baseline
from ..store.sql import energy_mj
from . import _progress
from ._common import emit_json, json_option, store_option


@click.group("results")
def command() -> None:
    """List, show, compare and export stored runs.

    \b
    Examples:
      edgeprof results list
      edgeprof results list --target local --since 2d --json
      edgeprof results list --compressions
      edgeprof results show 3
      edgeprof results compare 3 4
      edgeprof results export --format csv -o runs.csv
    """


def _filters(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--model", default=None, help="Model file name (* globs) or SHA-256 prefix."),
            click.option("--target", default=None, help="Target name (* globs)."),
            click.option(
                "--since", default=None, help="From this time: 2026-11-27, 2026-11-27T10:30 or an age: 12h, 3d."
            ),
            click.option("--until", default=None, help="Up to this time (same forms as --since)."),
        ]
    ):
        function = option(function)
    return function


def _columns(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "record"}


@command.command("list")
@_filters
@click.option("--compressions", is_flag=True, help="List compression runs instead of profile runs.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@store_option
def list_runs(
    model: str | None,
    target: str | None,
    since: str | None,
    until: str | None,
    compressions: bool,
    limit: int,
    as_json: bool,
    store: str,
) -> None:
    """Stored runs, newest first.

    \b
    Examples:
      edgeprof results list --model 'mobilenet*' --target local
      edgeprof results list --compressions --since 1w
    """
    with using_store(store) as db:
        if compressions:
            rows = db.compressions(limit=limit, model=model, since=since, until=until)
        else:
            rows = db.profiles(model=model, target=target, since=since, until=until, limit=limit)
        labels = Labels(db)
        where = db.location
    if as_json:
        emit_json([{**_columns(row), "label": labels.of_profile(row)} if not compressions else _columns(row)
                   for row in rows])  # fmt: skip
        return
    if not rows:
        what = "compression runs" if compressions else "runs"
        elsewhere = "(--store or $EDGEPROF_STORE name another store)"
        click.echo(
            f"no {what} match in {where} {elsewhere}"
            if (model or target or since or until)
            else f"no {what} stored yet in {where} {elsewhere}; try 'edgeprof profile MODEL.tflite'"
        )
        return
    if compressions:
        click.echo(
            _table.table(
                ["id", "when (UTC)", "model", "sha256", "recipe", "accuracy", "source acc.", "gzip ratio"],
                [
                    [
                        r["id"],
                        _when(r["created_at"]),
                        model_label(r["model_name"], (r.get("record") or {}).get("written_to")),
                        r["model_sha256"][:12],
                        r["recipe"] or "(float32 baseline)",
                        _table.pct(r["accuracy_tflite"]),
                        _table.pct(r["accuracy_source"]),
                        f"{r['gzip_ratio']:.1f}x" if r["gzip_ratio"] else "-",
                    ]
                    for r in rows
                ],
                align="rllllrrr",
            )
        )
        return
    click.echo(
        _table.table(
            ["id", "when (UTC)", "model", "sha256", "target", "runtime", "threads", "median ms", "p90 ms", "peak RSS"],
            [
                [
                    r["id"],
                    _when(r["created_at"]),
                    labels.of_profile(r),
                    r["model_sha256"][:12],
                    r["target"] + (" (throttled)" if r["throttled"] else ""),
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


def _when(created_at: str) -> str:
    return created_at[:19].replace("T", " ")


def _profile_text(row: dict[str, Any]) -> str:
    rec = row["record"]
    lat = rec["latency_ms"]
    dev = rec.get("device") or {}
    mem = rec.get("memory") or {}
    rt = rec.get("runtime") or {}
    energy = rec.get("energy")
    lines = [
        f"profile run {row['id']}, {_when(row['created_at'])} UTC, edgeprof {rec.get('edgeprof_version')}",
        f"model    {rec['model']['name']} ({_table.size(rec['model']['size_bytes'])}, "
        f"{_table.size(rec['model']['gzip_bytes'])} gzipped), sha256 {rec['model']['sha256']}",
        f"target   {rec['target']}: {dev.get('hostname', '?')}, {dev.get('machine', '?')}, "
        f"{dev.get('os') or dev.get('system') or '?'}",
        f"agent    {rec.get('agent_version')}, runtime {rt.get('name')} {rt.get('version')}, delegate "
        f"{rec.get('delegate')}, threads {rec.get('threads') or 'default'}, inputs {rec.get('inputs', '?')}",
        f"runs     {lat['count']} in {rec.get('measured_seconds', 0):.2f} s"
        + (f" ({len(rec.get('samples_ms') or [])} samples kept)" if rec.get("samples_subsampled") else ""),
        "",
        _table.table(
            ["latency (ms)", "min", "median", "mean", "p90", "p99", "max", "std"],
            [["", *(_table.ms(lat.get(k)) for k in ("min", "median", "mean", "p90", "p99", "max", "std"))]],
        ),
        "",
        f"init {_table.ms(rec.get('init_ms'))} ms, first inference {_table.ms(rec.get('first_inference_ms'))} ms, "
        f"peak RSS {_table.size(mem['peak_rss_kb'] * 1024 if mem.get('peak_rss_kb') else None)}",
    ]
    if energy is not None and energy.get("source") == "meter":
        from ..meters import words

        lines += [f"energy   {line[len('energy: '):]}" if line.startswith("energy: ") else f"       {line}"
                  for line in words.lines(energy)]  # fmt: skip
    elif energy is not None:
        value = energy_mj(rec)
        lines.append(
            f"energy   {value:.3f} mJ/inference"
            if value is not None
            else f"energy   unavailable ({energy.get('reason', 'no sensor')})"
        )
    if rec.get("throttled") is not None:
        lines.append(f"thermal  {'THROTTLED during the run' if rec['throttled'] else 'not throttled'}")
    elif rec.get("thermal"):
        lines.append(f"thermal  throttling unknown ({rec['thermal'].get('throttle_reason', 'no source')})")
    return "\n".join(lines)


@command.command("show")
@click.argument("run_id", type=int)
@click.option("--compression", "is_compression", is_flag=True, help="RUN_ID is a compression run.")
@json_option
@store_option
def show(run_id: int, is_compression: bool, as_json: bool, store: str) -> None:
    """One run: its conditions and figures (--json: everything recorded, raw samples included).

    \b
    Examples:
      edgeprof results show 3
      edgeprof results show 3 --json | jq .latency_ms
      edgeprof results show 1 --compression --json
    """
    with using_store(store) as db:
        row = db.compression(run_id) if is_compression else db.profile(run_id)
        lineage = describe_baseline(row, db.compressions()) if is_compression else ""
        manifest = None
        if not is_compression:
            linked = db.compressions(model=row["model_sha256"], limit=1)
            manifest = linked[0]["id"] if linked else None
    if as_json:
        emit_json({**row["record"], "id": run_id})
        return
    if is_compression:
        rec = row["record"]
        sizes = rec.get("sizes") or {}
        click.echo(
            f"compression run {run_id}, {_when(row['created_at'])} UTC: {row['recipe']}\n"
            f"model  {row['model_name']} sha256 {row['model_sha256']}\n"
            f"source {(rec.get('source') or {}).get('path')} sha256 {row['source_sha256']}\n"
            f"accuracy {_table.pct(row['accuracy_tflite'])} (source {_table.pct(row['accuracy_source'])}), "
            f"{_table.size(sizes.get('tflite_bytes'))} ({_table.size(sizes.get('tflite_gzip_bytes'))} gzipped), "
            f"{sizes.get('gzip_ratio', 0):.1f}x smaller gzipped than the float32 export\n"
            f"{lineage}\n"
            "the whole manifest: add --json"
        )
        return
    click.echo(_profile_text(row))
    if manifest is not None:
        click.echo(f"made by compression run {manifest} ('edgeprof results show {manifest} --compression')")


def _run_ids(text: str) -> list[int]:
    """``3``, ``3,5,7`` or ``3-6``: the runs on one side of a comparison."""
    from ..errors import StoreError

    ids: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                first, last = part.split("-", 1)
                ids.extend(range(int(first), int(last) + 1))
            else:
                ids.append(int(part))
    except ValueError:
        raise StoreError(f"cannot read {text!r} as run ids", "write e.g. 3, or 3,5,7, or 3-6") from None
    if not ids:
        raise StoreError(f"no run ids in {text!r}", "write e.g. 3, or 3,5,7, or 3-6")
    return ids


@command.command("compare")
@click.argument("runs_a")
@click.argument("runs_b")
@click.option(
    "--min-change",
    type=click.FloatRange(min=0),
    default=None,
    help="Percent change below which a difference is run-to-run noise [10 with one run a side; with several, "
    "the spread of their medians, at least 2].",
)
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01, show_default=True)
@json_option
@store_option
def compare_runs(runs_a: str, runs_b: str, min_change: float | None, alpha: float, as_json: bool, store: str) -> None:
    """Is B significantly faster or slower than A?

    A and B are one profile run each, or several runs of the same model (3,5,7 or 3-5) so that run-to-run noise
    is measured rather than assumed. A Mann-Whitney U test and a bootstrap interval of the change in median decide;
    a difference that is not significant, or within the run-to-run noise band, is reported as "no significant
    change" (like pyperf compare_to).

    \b
    Examples:
      edgeprof results compare 3 4
      edgeprof results compare 3,5,7 4,6,8 --json
      edgeprof results compare 3 4 --min-change 2
    """
    from ..compare import compare

    ids_a, ids_b = _run_ids(runs_a), _run_ids(runs_b)
    with using_store(store) as db:
        labels = Labels(db)
        a = [{**(row := db.profile(i))["record"], "id": i, "label": labels.of_profile(row)} for i in ids_a]
        b = [{**(row := db.profile(i))["record"], "id": i, "label": labels.of_profile(row)} for i in ids_b]
    result = compare(a, b, alpha=alpha, min_change=None if min_change is None else min_change / 100)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.summary())


CSV_COLUMNS = [
    "id",
    "created_at",
    "model_name",
    "model_sha256",
    "target",
    "board",
    "machine",
    "agent_version",
    "runtime",
    "runtime_version",
    "delegate",
    "threads",
    "runs",
    "min_ms",
    "median_ms",
    "mean_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "std_ms",
    "peak_rss_kb",
    "energy_mj",
    "throttled",
    "edgeprof_version",
]


@command.command("export")
@_filters
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, writable=True), default=None, help="File [stdout].")
@click.option("--samples", is_flag=True, help="CSV: one row per latency sample instead of one per run.")
@click.option(
    "--mlflow",
    "mlflow_uri",
    default=None,
    metavar="URI",
    help="Send the runs to this MLflow tracking server instead (runs already there are skipped).",
)
@store_option
def export(
    model: str | None,
    target: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    out: str | None,
    samples: bool,
    mlflow_uri: str | None,
    as_json: bool,
    store: str,
) -> None:
    """Write profile runs as CSV (one row per run, or per sample) or JSON (every record in full), oldest first,
    or send them to MLflow.

    \b
    Examples:
      edgeprof results export --format csv -o runs.csv
      edgeprof results export --format json --target local --since 1w -o runs.json
      edgeprof results export --samples --model mobilenet.tflite > samples.csv
      edgeprof results export --mlflow http://mlflow.lab:5000 --since 1w
    """
    if mlflow_uri:
        from .. import tracking

        tracker = tracking.Tracker(mlflow_uri)
        with using_store(store) as db:
            sent, skipped = tracking.export(
                tracker, db, db.iter_profiles(model=model, target=target, since=since, until=until)
            )
        click.echo(
            f"sent {sent} runs to MLflow at {mlflow_uri} (experiment {tracker.experiment_name})"
            + (f"; {skipped} were there already" if skipped else ""),
            err=True,
        )
        return
    fmt = "json" if as_json else fmt
    stream = io.StringIO() if out else sys.stdout
    count = 0
    with using_store(store) as db:
        total = len(db.profiles(model=model, target=target, since=since, until=until))
        rows = db.iter_profiles(model=model, target=target, since=since, until=until)
        with _progress.bar("exporting runs", enabled=out is not None) as step:
            if fmt == "json":
                stream.write("[")
                for row in rows:
                    stream.write(("," if count else "") + "\n" + json.dumps({**row["record"], "id": row["id"]}))
                    count += 1
                    step(count, total)
                stream.write("\n]\n")
            else:
                writer = csv.writer(stream, lineterminator="\n")
                writer.writerow(["run_id", "sample", "latency_ms"] if samples else CSV_COLUMNS)
                for row in rows:
                    if samples:
                        for i, value in enumerate(row["record"].get("samples_ms") or []):
                            writer.writerow([row["id"], i, value])
                    else:
                        writer.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
                    count += 1
                    step(count, total)
    if out:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            handle.write(stream.getvalue())
        click.echo(f"wrote {count} runs to {out}", err=True)
