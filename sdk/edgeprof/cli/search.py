"""``edgeprof search``: run a search (``edgeprof search MODEL ...``), and ``show``, ``export`` and ``list`` studies."""

from __future__ import annotations

from typing import Any

import click

from edgeprof_agent.defaults import DEFAULTS

from ._common import emit_json, json_option, progress_printer, store_option
from .targets import config_option


class SearchGroup(click.Group):
    """``edgeprof search MODEL ...`` runs a search; ``edgeprof search show|export|list ...`` reads studies."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("search", cls=SearchGroup)
def command() -> None:
    """Find the best compression of a model for your boards: a search over recipes, every objective measured.

    Each trial compresses the model with a recipe drawn from the space file, evaluates the TFLite model with the
    agent, and profiles it against the float32 model on every target (interleaved, --repeat processes each). The
    study lives in the results store's database: Ctrl-C, then --resume, continues it.

    \b
    Examples:
      edgeprof search model.keras --data data.npz --space examples/search/cnn-latency.toml --trials 30
      edgeprof search model.keras --data data.npz --space space.toml --target pi5 --max-drop 1
      edgeprof search model.keras --data data.npz --space space.toml --sampler nsga2 \\
          --objectives accuracy_drop,median_ms,peak_memory_mib --budget budget.toml
      edgeprof search model.keras --data data.npz --space space.toml --resume
      edgeprof search show model-cnn-latency
      edgeprof search export model-cnn-latency --lambda 10 -o best
    """


@command.command("run")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--data", required=True, help="An .npz, module:function, or builtin:digits / builtin:mnist.")
@click.option("--space", required=True, type=click.Path(dir_okay=False), help="The search space (TOML).")
@click.option(
    "-t",
    "--target",
    multiple=True,
    default=("local",),
    show_default=True,
    help="Boards to measure on (names, globs, groups; repeat or comma-separate): the objectives measured on boards "
    "are one per board.",
)
@click.option(
    "--sampler", type=click.Choice(["grid", "random", "tpe", "nsga2"]), default="tpe", show_default=True,
    help="grid and random (baselines), TPE (Bayesian), NSGA-II (several objectives).",
)  # fmt: skip
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True, help="Trials in the study.")
@click.option(
    "--objectives",
    default="accuracy_drop,median_ms",
    show_default=True,
    help="Minimised: accuracy_drop, median_ms, p90_ms, peak_memory_mib, energy_mj, gzip_kib, macs.",
)
@click.option(
    "--budget", type=click.Path(dir_okay=False), default=None, help="Constraints: an 'edgeprof check' budget."
)
@click.option("--max-drop", type=float, default=None, metavar="PP", help="Constraint: accuracy drop at most PP.")
@click.option("--resume", is_flag=True, help="Continue the study (after Ctrl-C, a crash, or from another host).")
@click.option("--study", default=None, help="The study's name [MODEL-SPACE, from the file names].")
@click.option("-o", "--out", default=None, help="Where trials' models go [edgeprof-search/STUDY].")
@click.option(
    "-r", "--repeat", type=click.IntRange(min=2), default=3, show_default=True,
    help="Fresh agent processes per model and board each trial (the front needs the spread between them).",
)  # fmt: skip
@click.option("--executor", type=click.Choice(["in-process", "ray"]), default="in-process", show_default=True)
@click.option("--ray-address", default=None, help="The Ray cluster (ray://... or HOST:PORT) [a local Ray instance].")
@click.option("--parallel", type=click.IntRange(min=1), default=None, help="Ray: trials at once [the cluster's CPUs].")
@click.option("--seed", type=int, default=0, show_default=True, help="The sampler's seed.")
@click.option("--custom-objects", "custom_objects", multiple=True, metavar="MODULE:ATTR", help="As for compress.")
@click.option("-n", "--runs", type=click.IntRange(min=1), default=DEFAULTS["runs"], show_default=True)
@click.option("--min-seconds", type=click.FloatRange(min=0), default=DEFAULTS["min_seconds"], show_default=True)
@click.option("--warmup-seconds", type=click.FloatRange(min=0), default=DEFAULTS["warmup_seconds"], show_default=True)
@click.option("--max-seconds", type=click.FloatRange(min=0.001), default=DEFAULTS["max_seconds"], show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads [runtime default].")
@click.option("--energy", default=DEFAULTS["energy"], show_default=True, help="Power sensor, as for profile.")
@click.option(
    "--idle-seconds", type=click.FloatRange(min=0), default=None,
    help="Idle power before each process [1 with an energy objective or limit, else 0].",
)  # fmt: skip
@json_option
@store_option
@config_option
def run(
    model: str,
    data: str,
    space: str,
    target: tuple[str, ...],
    sampler: str,
    trials: int,
    objectives: str,
    budget: str | None,
    max_drop: float | None,
    resume: bool,
    study: str | None,
    out: str | None,
    repeat: int,
    executor: str,
    ray_address: str | None,
    parallel: int | None,
    seed: int,
    custom_objects: tuple[str, ...],
    runs: int,
    min_seconds: float,
    warmup_seconds: float,
    max_seconds: float,
    threads: int | None,
    energy: str,
    idle_seconds: float | None,
    as_json: bool,
    store: str,
) -> None:
    """Run (or --resume) a search; progress per trial on stderr, the study's table on stdout.

    'edgeprof search MODEL ...' is this command. Before the first trial trains, everything is checked: the space
    file, the data, the targets, and that every objective can be measured on every board (energy needs a power
    sensor). Each trial is stored like any run: results, compare and check work on it.

    \b
    Examples:
      edgeprof search run model.keras --data data.npz --space examples/search/cnn-latency.toml --trials 30
      edgeprof search run model.keras --data data.npz --space space.toml --max-drop 1 --target pi5,orin
      edgeprof search run model.keras --data data.npz --space space.toml --executor ray --ray-address HEAD:6379
    """
    from ..budget import Budget
    from ..profile import ProfileOptions
    from ..search import limits_energy, search

    # Idle power is only needed for energy's above-idle figure: without it, each process starts a second sooner.
    energy_wanted = "energy" in objectives or (budget is not None and limits_energy(Budget.from_file(budget)))
    options = ProfileOptions(
        runs=runs,
        min_seconds=min_seconds,
        warmup_seconds=warmup_seconds,
        max_seconds=max_seconds,
        threads=threads,
        energy=energy,
        idle_seconds=idle_seconds if idle_seconds is not None else (DEFAULTS["idle_seconds"] if energy_wanted else 0.0),
    )
    found = search(
        model,
        data,
        space=space,
        targets=target,
        sampler=sampler,
        trials=trials,
        objectives=objectives,
        budget=budget,
        max_drop=max_drop,
        resume=resume,
        study=study,
        out=out,
        store=store,
        repeat=repeat,
        options=options,
        executor=executor,
        ray_address=ray_address,
        parallel=parallel,
        custom_objects=list(custom_objects) or None,
        seed=seed,
        say=progress_printer(),
    )
    _print(found, as_json)


def _print(found: Any, as_json: bool) -> None:
    if as_json:
        emit_json(found.to_dict())
    else:
        click.echo(found.summary())


@command.command("show")
@click.argument("study")
@click.option("--lambda", "lam", type=click.FloatRange(min=0), default=None, help="Also name the optimum for this λ.")
@click.option("--importances", is_flag=True, help="Parameter importances per objective (fANOVA; slower).")
@json_option
@store_option
def show(study: str, lam: float | None, importances: bool, as_json: bool, store: str) -> None:
    """A study's trials, its noise-aware front, the λ-weighted optimum over λ, the knee (--json for all of it).

    \b
    Examples:
      edgeprof search show cnn-cnn-latency
      edgeprof search show cnn-cnn-latency --lambda 10 --importances
      edgeprof search show cnn-cnn-latency --json
    """
    from ..search import load_result
    from ..store import using_store

    with using_store(store) as db:
        _print(load_result(db, study, lam=lam, importances=importances or as_json), as_json)


@command.command("export")
@click.argument("study")
@click.option("--trial", type=click.IntRange(min=0), default=None, help="The trial's number.")
@click.option("--lambda", "lam", type=click.FloatRange(min=0), default=None, help="The λ-weighted optimum for λ.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder for model.tflite.")
@json_option
@store_option
def export_command(study: str, trial: int | None, lam: float | None, out: str, as_json: bool, store: str) -> None:
    """Write a trial's model.tflite and manifest.json to OUT: --trial N, or the optimum for --lambda L.

    \b
    Examples:
      edgeprof search export cnn-cnn-latency --trial 7 -o best
      edgeprof search export cnn-cnn-latency --lambda 10 -o best
    """
    from ..search import export
    from ..store import using_store

    with using_store(store) as db:
        written = export(db, study, out, trial=trial, lam=lam)
    if as_json:
        emit_json(written)
    else:
        chosen = f" (the optimum for λ = {lam:g})" if lam is not None else ""
        click.echo(f"trial {written['trial']}{chosen}: {written['recipe']}\nwrote {written['model']} and "
                   f"{written['manifest']}")  # fmt: skip


@command.command("list")
@json_option
@store_option
def list_command(as_json: bool, store: str) -> None:
    """The studies in the store.

    \b
    Examples:
      edgeprof search list
      edgeprof search list --json
    """
    from .. import _table
    from ..search.study import names
    from ..store import using_store

    with using_store(store) as db:
        found = names(db.url)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no study in this store (edgeprof search MODEL --data D --space S.toml starts one)")
        return
    rows = [
        [s["name"], s["settings"].get("sampler"), ", ".join(f"{n} {k}" for k, n in sorted(s["states"].items())),
         ", ".join(s["settings"].get("targets", [])),
         ", ".join(s["settings"].get("objectives", [])), str(s["started"] or "")[:19]]
        for s in found
    ]  # fmt: skip
    click.echo(_table.table(["study", "sampler", "trials", "targets", "objectives", "started"], rows, align="llllll"))
