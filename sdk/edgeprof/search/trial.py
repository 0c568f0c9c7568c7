"""One trial of a search: a recipe compressed on the host, evaluated by the agent, profiled on every board.

Nothing here is search-specific machinery: :func:`compress_trial` is ``edgeprof.compress`` (which evaluates the
TFLite model with the local agent and writes ``model.tflite`` and ``manifest.json``), :func:`measure_trial` is
``edgeprof.profile_fleet`` over the float32 baseline and the trial's model, interleaved round by round in
``repeat`` fresh agent processes on each board (so the trial's speed-up is a paired verdict of ``compare``, and a
board's drift hits both alike), and :func:`figures` reads the stored runs back the way ``results``, ``compare``
and ``check`` read them. Each trial is stored like any other run: a compression run whose manifest names the study
and trial, and one ``--repeat`` group per model and board, so ``edgeprof results``, ``compare`` and ``check`` work
on it unchanged.

The functions take and return plain, picklable values so that an executor can run them in another process or on
another machine (:mod:`edgeprof.search.executors`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgeprofError
from ..modelfile import sha256_bytes
from ..profile import ProfileOptions
from ..targets import Target

Say = Callable[[str], None]


@dataclass
class Context:
    """What every trial of a study shares; picklable, so a Ray worker gets it whole."""

    study: str
    model: str  # the Keras model, absolute path
    data: str  # the data spec (absolute path for a file)
    out: str  # the study's folder, absolute
    store: str  # the results store's URL (a Ray worker on another machine needs PostgreSQL or a shared disk)
    targets: list[Target]
    options: ProfileOptions
    repeat: int
    baseline_path: str  # the float32 export of the model, out/baseline/model.tflite
    baseline_compression: int  # its compression run
    custom_objects: list[str] | None = None

    def trial_dir(self, number: int) -> Path:
        return Path(self.out) / f"trial-{number}"


@dataclass
class Compressed:
    """A trial's model: its stored compression run, manifest and file (the bytes travel to other nodes)."""

    number: int
    compression_id: int
    manifest: dict[str, Any]
    tflite: bytes
    seconds: float


@dataclass
class Board:
    """A trial on one board: the two groups stored (float32 baseline, trial), or why it failed."""

    target: str
    trial_group: int | None = None
    baseline_group: int | None = None
    error: str | None = None
    seconds: float = 0.0
    node: str | None = None  # the Ray node that measured (the one declaring the board's resource)


@dataclass
class Outcome:
    """What an executor hands back for a trial: compressed and measured, or the reason it failed."""

    number: int
    compressed: Compressed | None = None
    boards: list[Board] = field(default_factory=list)
    error: str | None = None
    node: str | None = None  # where it ran (Ray)

    @property
    def failed(self) -> str | None:
        """The reason the trial has no complete measurement (compress failed, or a board did), else None."""
        if self.error:
            return self.error
        bad = [b for b in self.boards if b.error]
        if bad:
            return "; ".join(f"{b.target}: {b.error}" for b in bad)
        return None


def compress_trial(ctx: Context, number: int, recipe: dict[str, Any], say: Say | None = None) -> Compressed:
    """Compress the model with ``recipe`` into the trial's folder and store the run (its manifest names the trial)."""
    import time

    from ..compress import Recipe, compress
    from ..store import using_store

    started = time.perf_counter()
    made = Recipe.from_dict(recipe, where=f"trial {number}")
    out = ctx.trial_dir(number)
    result = compress(
        ctx.model,
        made,
        data=ctx.data,
        out=out,
        store=None,  # stored below, with the study named in the manifest
        progress=say,
        custom_objects=ctx.custom_objects,
        latency=False,  # the search measures on its own boards, interleaved with the baseline
    )
    manifest = {**result.manifest, "search": {"study": ctx.study, "trial": number}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    with using_store(ctx.store) as db:
        compression_id = db.add_compression(manifest, result.model_file.to_dict())
    return Compressed(number, compression_id, manifest, result.tflite_path.read_bytes(), time.perf_counter() - started)


def place(path: Path, data: bytes) -> Path:
    """Make sure ``path`` holds ``data`` (another node of a Ray cluster has the bytes, not the file)."""
    if not path.is_file() or sha256_bytes(path.read_bytes()) != sha256_bytes(data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def measure_trial(
    ctx: Context,
    number: int,
    tflite: bytes,
    baseline: bytes,
    targets: list[Target] | None = None,
    on_progress: Any = None,
) -> list[Board]:
    """Profile the float32 baseline and the trial's model on each board, interleaved, ``repeat`` processes each.

    A board that fails (lost mid-run, unreachable) is a :class:`Board` with its error; what it measured before is
    stored, and the other boards finish.
    """
    from ..fleet import profile_fleet

    model = place(ctx.trial_dir(number) / "model.tflite", tflite)
    base = place(Path(ctx.baseline_path), baseline)
    fleet = profile_fleet(
        [str(base), str(model)],
        targets or ctx.targets,
        repeat=ctx.repeat,
        options=ctx.options,
        store=ctx.store,
        on_progress=on_progress,
    )
    boards = []
    for outcome in fleet.outcomes:  # one group per file given, in that order (even for two equal files)
        base_group = next((g for g in outcome.groups if g.model.path == str(base)), None)
        trial_group = next((g for g in outcome.groups if g.model.path == str(model)), None)
        boards.append(
            Board(
                outcome.target,
                trial_group.id if trial_group is not None else None,
                base_group.id if base_group is not None else None,
                outcome.error,
                outcome.seconds,
            )
        )
    return boards


# -- figures ------------------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    from ..views import median_of

    return median_of(values)


def _board_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One group's figures as the views and ``check`` read them: medians of the runs' figures, the largest peak
    RSS (``check``'s rule), energy where a sensor measured every run."""
    from ..store.sql import energy_mj

    peaks = [r.get("peak_rss_kb") for r in runs]
    energies = [energy_mj(r["record"]) for r in runs]
    found: dict[str, Any] = {
        "median_ms": _median([float(r["median_ms"]) for r in runs]),
        "p90_ms": _median([float(r["p90_ms"]) for r in runs]),
        "peak_memory_mib": max(peaks) / 1024 if peaks and all(peaks) else None,  # type: ignore[type-var]
        "energy_mj": _median([float(e) for e in energies]) if energies and all(e is not None for e in energies)
        else None,
        "runs": [int(r["id"]) for r in runs],
    }  # fmt: skip
    if found["energy_mj"] is None:
        reason = next(
            ((r["record"].get("energy") or {}).get("reason") for r in runs if energy_mj(r["record"]) is None), ""
        )
        found["energy_reason"] = reason or "no energy measured"
    return found


def figures(ctx: Context, compressed: Compressed, boards: list[Board], store: Any) -> dict[str, Any]:
    """Every figure a trial can be judged by, from what is stored (JSON-able: it is kept with the trial)."""
    from ..compare import compare
    from ..store.lineage import figures_of_merit

    row = store.compression(compressed.compression_id)
    baseline = store.compression(ctx.baseline_compression)
    merit = figures_of_merit(row, baseline, [], None)
    manifest = compressed.manifest
    macs = manifest.get("macs") or {}
    found: dict[str, Any] = {
        "compression": compressed.compression_id,
        "recipe": manifest.get("recipe_text"),
        "accuracy": merit.accuracy,
        "baseline_accuracy": merit.baseline_accuracy,
        "accuracy_drop": -merit.accuracy_diff_pp if merit.accuracy_diff_pp is not None else None,
        "accuracy_unit": merit.accuracy_diff_unit,
        "accuracy_metric": merit.accuracy_metric,
        "accuracy_from": merit.baseline_accuracy_from,
        "gzip_kib": merit.gzip_bytes / 1024,
        "baseline_gzip_kib": merit.baseline_gzip_bytes / 1024 if merit.baseline_gzip_bytes else None,
        "size_kib": merit.size_bytes / 1024,
        "macs": macs.get("tflite"),
        "baseline_macs": macs.get("source"),
        "sha256": row["model_sha256"],
        "boards": {},
    }
    for board in boards:
        if board.error or board.trial_group is None or board.baseline_group is None:
            found["boards"][board.target] = {"error": board.error or "not measured"}
            continue
        trial_runs = store.group(board.trial_group)["runs"]
        base_runs = store.group(board.baseline_group)["runs"]
        mine, base = _board_figures(trial_runs), _board_figures(base_runs)
        entry = {**mine, "trial_group": board.trial_group, "baseline_group": board.baseline_group, "node": board.node}
        entry.update({f"baseline_{k}": v for k, v in base.items() if k != "runs"})
        verdict = compare([r["record"] for r in base_runs], [r["record"] for r in trial_runs])
        entry["speed"] = {
            "ratio": 1.0 + verdict.change,  # trial over float32, geometric mean of run medians, paired by round
            "low": 1.0 + verdict.ci_low,
            "high": 1.0 + verdict.ci_high,
            "significant": verdict.significant,
            "verdict": verdict.verdict,
            "band": verdict.min_change,
            "test": verdict.test,
        }
        found["boards"][board.target] = entry
    return found


def ratio(figures_: dict[str, Any], objective: Any) -> float | None:
    """The trial's figure over the float32 model's for one efficiency objective: latency from ``compare``'s paired
    verdict (geometric mean over the boards), everything else as measured. 0.6 = 40 % less."""
    if objective.kind.key == "median_ms":
        ratios = [
            (b.get("speed") or {}).get("ratio")
            for name, b in (figures_.get("boards") or {}).items()
            if objective.target in (None, name)
        ]
        ratios = [r for r in ratios if r]
        return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    value, base = objective.value(figures_), objective.baseline(figures_)
    return value / base if value is not None and base else None


def constraints(
    figures_: dict[str, Any],
    *,
    max_drop: float | None,
    budget: Any,
    model_path: str,
    store: Any,
    targets: list[str],
) -> tuple[list[float], list[str]]:
    """Optuna's constraint values (≤ 0 is met) and a line per limit broken: ``--max-drop`` and the budget file,
    checked by ``edgeprof check``'s own code on the runs just stored."""
    values: list[float] = []
    broken: list[str] = []
    if max_drop is not None:
        drop = figures_.get("accuracy_drop")
        if drop is None:
            values.append(1.0)
            broken.append("accuracy drop unknown")
        else:
            values.append(drop - max_drop)
            if drop > max_drop + 1e-12:
                broken.append(f"accuracy drop {drop:.2f} > {max_drop:g} {figures_.get('accuracy_unit', 'pp')}")
    if budget is not None:
        from ..budget import METRICS, check_model

        report = check_model(budget, model_path, store, targets=targets)
        for check in report.checks:
            if check.status == "unknown":
                values.append(1.0)
                broken.append(f"{METRICS[check.metric].label} on {check.target} unknown ({check.reason})")
                continue
            scale = check.limit or 1.0
            values.append(((check.value or 0.0) - check.limit) / scale)
            if check.status == "FAIL":
                metric = METRICS[check.metric]
                broken.append(f"{metric.label} on {check.target}: {check.reason}")
    return values, broken


def run_inline(ctx: Context, number: int, recipe: dict[str, Any], baseline: bytes, say: Say | None = None,
               on_progress: Any = None) -> Outcome:  # fmt: skip
    """Compress, then measure, in this process (the in-process executor; a Ray task runs the same two calls)."""
    outcome = Outcome(number)
    try:
        outcome.compressed = compress_trial(ctx, number, recipe, say)
    except EdgeprofError as exc:
        outcome.error = f"compress: {exc}"
        return outcome
    if say is not None:
        say(f"measuring on {', '.join(t.name for t in ctx.targets)}: float32 and trial interleaved, {ctx.repeat} "
            "processes each")  # fmt: skip
    try:
        outcome.boards = measure_trial(ctx, number, outcome.compressed.tflite, baseline, on_progress=on_progress)
    except EdgeprofError as exc:
        outcome.error = f"profile: {exc}"
    return outcome


__all__ = ["Board", "Compressed", "Context", "Outcome", "compress_trial", "figures", "measure_trial", "ratio"]
