"""``edgeprof results``: list, show, compare and export what the store keeps."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from .. import _table, views
from ..store import using_store
from ..store.labels import Labels, model_label
from ..store.lineage import describe_baseline, headline_figure, headline_text
from . import _progress
from ._common import emit_json, json_option, store_option


@click.group("results")
def command() -> None:
    """List, show, compare and export stored runs.

    Runs are named by their id (3), groups of runs made by 'profile --repeat' by g: and theirs (g:2).

    \b
    Examples:
      edgeprof results list
      edgeprof results list --target local --since 2d --json
      edgeprof results list --compressions
      edgeprof results show 3
      edgeprof results show g:2
      edgeprof results compare g:1 g:2
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
                        headline_text(r.get("record") or {}, named=True),
                        headline_text(r.get("record") or {}, "source"),
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
            [
                "id",
                "group",
                "when (UTC)",
                "model",
                "sha256",
                "target",
                "runtime",
                "threads",
                "median ms",
                "p90 ms",
                "peak RSS",
                "note",
            ],
            [
                [
                    r["id"],
                    _group_cell(r),
                    _when(r["created_at"]),
                    labels.of_profile(r),
                    r["model_sha256"][:12],
                    r["target"],
                    f"{r['runtime']} {r['runtime_version']}",
                    r["threads"] or "default",
                    _table.ms(r["median_ms"]),
                    _table.ms(r["p90_ms"]),
                    _table.size(r["peak_rss_kb"] * 1024 if r["peak_rss_kb"] else None),
                    views.caveat_note(views.load(r["record"])).replace(" during the run", "")[:60],
                ]
                for r in rows
            ],
            align="rlllllllrrrl",
        )
    )


def _when(created_at: str) -> str:
    return created_at[:19].replace("T", " ")


def _group_cell(row: dict[str, Any]) -> str:
    """``g:2 3/5``: the group of a run and its round, or empty for a lone run."""
    if row.get("group_id") is None:
        return ""
    of = ((row.get("record") or {}).get("group") or {}).get("of")
    return f"g:{row['group_id']} {row.get('group_index')}/{of}" if of else f"g:{row['group_id']}"


def _profile_text(row: dict[str, Any]) -> str:
    """A stored run: when and by which edgeprof, then exactly what ``profile`` printed (views.run_lines)."""
    rec = views.load({**row["record"], "id": row["id"]})
    head = f"profile run {row['id']}, {_when(row['created_at'])} UTC, edgeprof {rec.edgeprof_version}"
    if rec.record_version == 0:
        head += f" (an older record: what agent {rec.agent_version} did not measure says 'not recorded')"
    lines = [head, *views.run_lines(rec)]
    if row.get("group_id") is not None:
        group = rec.group
        where = f"run {group.index} of {group.of}" if group is not None else "a run"
        lines.append(f"{where} of group g:{row['group_id']} ('edgeprof results show g:{row['group_id']}')")
    lines += views.operator_table_lines(rec)  # with --ops: every operator, under the top ones profile printed
    return "\n".join(lines)


def _group_text(found: dict[str, Any], labels: Labels) -> str:
    """A stored group as ``profile --repeat`` printed it (views.group_lines)."""
    records = [views.load({**r["record"], "id": r["id"]}) for r in found["runs"]]
    partners = [f"g:{p['id']} {p['model_name']}" for p in found["partners"]]
    error = (found.get("record") or {}).get("error")
    if found["status"] == "running":
        error = error or "still running, or its edgeprof process was killed before it could say why it stopped"
    info = views.GroupInfo(found["id"], found["planned"], error, partners)
    label = labels.of_profile(found["runs"][0]) if found["runs"] else found["model_name"]
    head = f"group g:{found['id']}, {_when(found['created_at'])} UTC: {label} on {found['target']}, {found['status']}"
    return "\n".join([head, *views.group_lines(records, info)])


@command.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--compression", "is_compression", is_flag=True, help="RUN is a compression run.")
@json_option
@store_option
def show(run_id: str, is_compression: bool, as_json: bool, store: str) -> None:
    """One run (3) or group (g:2): its conditions and figures (--json: everything recorded, raw samples included).

    \b
    Examples:
      edgeprof results show 3
      edgeprof results show g:2
      edgeprof results show 3 --json | jq .latency_ms
      edgeprof results show 1 --compression --json
    """
    group_id = _group_id(run_id)
    if group_id is not None:
        with using_store(store) as db:
            found = db.group(group_id)
            labels = Labels(db)
        if as_json:
            emit_json(
                {
                    **{k: v for k, v in found.items() if k not in ("runs", "partners")},
                    "partners": [p["id"] for p in found["partners"]],
                    "runs": [{**r["record"], "id": r["id"]} for r in found["runs"]],
                }
            )
        else:
            click.echo(_group_text(found, labels))
        return
    number = _one_id(run_id)
    with using_store(store) as db:
        row = db.compression(number) if is_compression else db.profile(number)
        lineage = describe_baseline(row, db.compressions()) if is_compression else ""
        manifest = None
        if not is_compression:
            linked = db.compressions(model=row["model_sha256"], limit=1)
            manifest = linked[0]["id"] if linked else None
    if as_json:
        emit_json({**row["record"], "id": number})
        return
    if is_compression:
        rec = row["record"]
        sizes = rec.get("sizes") or {}
        click.echo(
            f"compression run {number}, {_when(row['created_at'])} UTC: {row['recipe']}\n"
            f"model  {row['model_name']} sha256 {row['model_sha256']}\n"
            f"source {(rec.get('source') or {}).get('path')} sha256 {row['source_sha256']}\n"
            f"{headline_figure(rec).label} {headline_text(rec)}"
            f" (source {headline_text(rec, 'source')}), "
            f"{_table.size(sizes.get('tflite_bytes'))} ({_table.size(sizes.get('tflite_gzip_bytes'))} gzipped), "
            f"{sizes.get('gzip_ratio', 0):.1f}x smaller gzipped than the float32 export\n"
            f"{lineage}\n"
            "the whole manifest: add --json"
        )
        return
    click.echo(_profile_text(row))
    if manifest is not None:
        click.echo(f"made by compression run {manifest} ('edgeprof results show {manifest} --compression')")


def _group_id(text: str) -> int | None:
    """``g:2`` -> 2; None for anything that does not start with ``g:``."""
    from ..errors import StoreError

    if not text.strip().lower().startswith("g:"):
        return None
    try:
        return int(text.strip()[2:])
    except ValueError:
        raise StoreError(f"cannot read {text!r} as a group", "write e.g. g:2 (see 'edgeprof results list')") from None


def _one_id(text: str) -> int:
    from ..errors import StoreError

    try:
        return int(text)
    except ValueError:
        raise StoreError(f"cannot read {text!r} as a run id", "write e.g. 3, or g:2 for a group") from None


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
    help="Percent change below which a difference is noise [groups: the change the process-level test needs; one "
    "run a side: 10, or what single processes of their groups differ by].",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Test level [0.05 for groups (t over run medians), 0.01 for one run a side (Mann-Whitney U)].",
)
@click.option(
    "--ops",
    "by_operator",
    is_flag=True,
    help="Line up the operators of runs or groups profiled with --ops (the same graph, or a model and its "
    "compressed child by layer name) and say which got significantly faster or slower.",
)
@json_option
@store_option
def compare_runs(
    runs_a: str,
    runs_b: str,
    min_change: float | None,
    alpha: float | None,
    by_operator: bool,
    as_json: bool,
    store: str,
) -> None:
    """Is B significantly faster or slower than A?

    A and B are groups (g:1 g:2, made by 'profile --repeat N'), one profile run each (3 4), or run ids of one
    model (3,5,7 or 3-5). With groups the process is the unit, as in pyperf: a t-test over the runs' medians,
    paired round by round when the groups were interleaved on one board ('profile a b --repeat N'), so the
    process-to-process noise is measured, not assumed. With one run a side, a Mann-Whitney U test and a bootstrap
    interval of the change in median decide, against a 10 % noise band (or, when the runs belong to groups, the
    difference single processes of those groups show). A difference within the noise is "no significant change".

    \b
    Examples:
      edgeprof results compare g:1 g:2
      edgeprof results compare g:1 g:2 --json
      edgeprof results compare 3 4
      edgeprof results compare 3,5,7 4,6,8
      edgeprof results compare 3 4 --min-change 2
      edgeprof results compare 3 4 --ops          # operator by operator (runs profiled with --ops)
      edgeprof results compare g:1 g:2 --ops      # ... over groups (profile --repeat N --ops)
    """
    from ..compare import compare

    with using_store(store) as db:
        labels = Labels(db)
        a, group_a = _side(db, labels, runs_a)
        b, group_b = _side(db, labels, runs_b)
        if by_operator:
            from ..ops import compare_ops

            found = compare_ops(a, b, alpha=alpha, min_change=None if min_change is None else min_change / 100)
            if as_json:
                emit_json({**found.to_dict(), "groups": [group_a, group_b]})
            else:
                click.echo(found.summary())
            return
        noise = None
        if len(a) == 1 and len(b) == 1:  # single runs of groups: the band from their groups' spread
            medians = [_group_medians(db, run.get("group")) for run in (a[0], b[0])]
            if all(m and len(m) > 1 for m in medians):
                noise = (medians[0], medians[1])
    result = compare(a, b, alpha=alpha, min_change=None if min_change is None else min_change / 100, noise=noise)
    if as_json:
        emit_json({**result.to_dict(), "groups": [group_a, group_b]})
    else:
        click.echo(result.summary())


def _side(db: Any, labels: Labels, text: str) -> tuple[list[dict[str, Any]], int | None]:
    """The runs of one side: a group's (``g:2``) or the listed ids'."""
    from ..errors import StoreError

    group_id = _group_id(text)
    if group_id is not None:
        found = db.group(group_id)
        if not found["runs"]:
            raise StoreError(f"group g:{group_id} has no stored run", "profile again with --repeat N")
        return [{**r["record"], "id": r["id"], "label": labels.of_profile(r)} for r in found["runs"]], group_id
    return [
        {**(row := db.profile(i))["record"], "id": i, "label": labels.of_profile(row)} for i in _run_ids(text)
    ], None


def _group_medians(db: Any, group: dict[str, Any] | None) -> list[float] | None:
    if not group or group.get("id") is None:
        return None
    return [float(r["median_ms"]) for r in db.group(int(group["id"]))["runs"] if r["median_ms"] is not None]


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
    "energy_u95_mj",
    "energy_source",
    "throttled",
    "group_id",
    "group_index",
    "edgeprof_version",
]


def _energy_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The 95 % half-width of a run's energy per inference (a meter's) and where the figure came from."""
    energy = views.load(row["record"]).energy
    if energy is None or energy.mj() is None:
        return {}
    return {"energy_u95_mj": energy.u95(), "energy_source": energy.origin()}


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
    help="Send the runs to this MLflow tracking server instead (runs already there are skipped; a group's runs go "
    "under one parent run).",
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
                        cells = {**row, **_energy_columns(row)}
                        writer.writerow(["" if cells.get(c) is None else cells.get(c) for c in CSV_COLUMNS])
                    count += 1
                    step(count, total)
    if out:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            handle.write(stream.getvalue())
        click.echo(f"wrote {count} runs to {out}", err=True)
