"""``edgeprof check``: exit 0 when every limit is met, 1 on a breach, 2 on an error (bad budget, bad model)."""

from __future__ import annotations

import fnmatch

import click

from ..profile import DEFAULT_REPEAT
from . import _progress
from ._common import emit_json, json_option, store_option

BREACH_EXIT = 1


@click.command("check")
@click.argument("model", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--budget",
    "budget_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Budget file (TOML): [limits] and [targets.NAME] overrides.",
)
@click.option("--from-store", is_flag=True, help="Check the newest stored run of every model instead of MODEL.")
@click.option("-t", "--target", "targets", multiple=True, help="Target(s) to check MODEL on [the budget's targets].")
@click.option("--model", "model_filter", default=None, help="With --from-store: only this model (name or hash).")
@click.option("--since", default=None, help="With --from-store: only runs from this time (e.g. 1d).")
@click.option("--measure", is_flag=True, help="Profile MODEL now on every target, even if a run is stored.")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True, help="Runs when profiling.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads when profiling.")
@click.option(
    "-r",
    "--repeat",
    "--replicates",
    "replicates",
    type=click.IntRange(min=1),
    default=None,
    help="Runs per target: the newest N stored, the missing ones profiled now as one group of fresh agents "
    "[the newest run and the rest of its group; a model with none is profiled in "
    f"{DEFAULT_REPEAT} processes]. Latency and energy limits apply to the 95%% upper confidence bound of the "
    "runs' mean, peak memory to the largest run.",
)
@click.option("--strict", is_flag=True, help="A limit whose figure was not measured counts as a breach.")
@json_option
@store_option
def command(
    model: str | None,
    budget_path: str,
    from_store: bool,
    targets: tuple[str, ...],
    model_filter: str | None,
    since: str | None,
    measure: bool,
    runs: int,
    threads: int | None,
    replicates: int | None,
    strict: bool,
    as_json: bool,
    store: str,
) -> None:
    """Check a model, or the stored results, against a budget; exit 1 on any breach.

    Limits (upper bounds, per target): p90_ms, median_ms, p99_ms, peak_memory_mib, energy_mj, gzip_kib, size_kib,
    accuracy_drop_pp. Latency, memory and energy come from the newest stored group of runs of the model on each
    target ('profile --repeat N'; a lone run counts as it is); MODEL is profiled first, in fresh agent processes,
    on targets where it has none (or everywhere with --measure). Accuracy comes from the compression manifest (in
    the store, or manifest.json beside MODEL). One run is one noisy draw: the bound needs several.
    Exit codes: 0 all limits met, 1 a limit broken, 2 an error.

    \b
    Examples:
      edgeprof check --budget budget.toml model.tflite
      edgeprof check --budget budget.toml model.tflite --target local --measure --json
      edgeprof check --budget budget.toml model.tflite --repeat 5      # the newest 5 runs: a 95% bound
      edgeprof check --budget budget.toml --from-store --since 1d
    """
    from ..budget import Budget, BudgetError, check_model, check_store
    from ..store import using_store

    budget = Budget.from_file(budget_path)
    if (model is None) == (not from_store):
        raise BudgetError(
            "check needs either MODEL or --from-store" if model is None else "pass MODEL or --from-store, not both",
            "e.g. 'edgeprof check --budget budget.toml model.tflite'",
        )
    with using_store(store) as db, _progress.display(not as_json) as shown:
        if from_store:
            report = check_store(budget, db, model=model_filter, since=since, strict=strict, replicates=replicates)
            if targets:  # --target narrows the stored runs checked (globs allowed)
                report.checks = [c for c in report.checks if any(fnmatch.fnmatchcase(c.target, p) for p in targets)]
        else:
            report = check_model(
                budget,
                model,  # type: ignore[arg-type]
                db,
                targets=list(targets) or None,
                measure=measure,
                strict=strict,
                profile_options={"runs": runs, "threads": threads, "on_progress": shown},
                say=None if as_json else _progress.say_line(shown),
                replicates=replicates,
            )
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(report.summary())
    if not report.passed:
        click.get_current_context().exit(BREACH_EXIT)
