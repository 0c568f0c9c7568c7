"""What a report shows, gathered from the store: latest runs, model facts and figures of merit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store import Store
from ..store.labels import Labels
from ..store.lineage import (
    Merit,
    accuracy_of,
    all_merits,
    evaluated_samples,
    headline_figure,
    headline_text,
    latest_by_model,
)
from ..store.sql import energy_mj
from ..views import caveat_note, energy_line, load


@dataclass
class ModelFacts:
    sha256: str
    name: str
    size_bytes: int
    gzip_bytes: int
    accuracy: float | None  # of the TFLite model, from its compression manifest
    test_samples: int | None  # the test samples that accuracy was measured on (for its interval)
    recipe: str | None
    source_sha256: str | None
    is_baseline: bool
    inspection: dict[str, Any] | None
    display: str = ""  # the one label of the model in every table (store/labels.py): folder, file, recipe
    headline: str = "accuracy"  # the task's headline figure that ``accuracy`` stands for (ROC AUC, MSE, ...)
    accuracy_text: str = "-"  # as a reader sees it: "97.2%", or "ROC AUC 88.1%", "MSE 0.0123"

    @property
    def plotted_accuracy(self) -> float | None:
        """The accuracy plots show classifiers' accuracy only: a Wilson interval holds for a proportion of correct
        answers, not for ROC AUC or an error figure, and one axis cannot hold figures of different kinds."""
        return self.accuracy if self.headline == "accuracy" else None


@dataclass
class ReportData:
    store: str
    runs: list[dict[str, Any]]  # newest profile of each (model, target), oldest first; "caveats": as views say
    models: dict[str, ModelFacts]  # by sha256
    merits: list[Merit]
    energy_reasons: dict[str, str] = field(default_factory=dict)  # target -> why energy is unavailable
    total_runs: int = 0
    ops_runs: list[dict[str, Any]] = field(default_factory=list)  # newest run with --ops of each (model, target)


def collect(
    store: Store, *, model: str | None = None, target: str | None = None, since: str | None = None
) -> ReportData:
    profiles = store.profiles(model=model, target=target, since=since)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in profiles:  # newest first
        latest.setdefault((row["model_sha256"], row["target"]), row)
    runs = sorted(latest.values(), key=lambda r: r["id"])
    for run in runs:
        run["caveats"] = caveat_note(load(run["record"]))
    names = Labels(store)
    shown = {r["model_sha256"]: names.of_profile(r) for r in runs}
    compressions = latest_by_model(store.compressions())
    shas = {r["model_sha256"] for r in runs} | set(compressions)
    rows = store.models(shas)
    models = {}
    for sha, row in rows.items():
        comp = compressions.get(sha)
        record = comp["record"] if comp else {}
        models[sha] = ModelFacts(
            sha256=sha,
            name=row["name"],
            size_bytes=row["size_bytes"],
            gzip_bytes=row["gzip_bytes"],
            accuracy=accuracy_of(record) if comp else None,
            test_samples=evaluated_samples(record) if comp else None,
            recipe=comp["recipe"] if comp else None,
            source_sha256=comp["source_sha256"] if comp else None,
            is_baseline=bool(comp and comp.get("is_baseline")),
            inspection=row.get("inspection"),
            display=shown.get(sha) or names.of(row["name"], sha),
            headline=headline_figure(record).key if comp else "accuracy",
            accuracy_text=headline_text(record, named=True) if comp else "-",
        )
    reasons = {}
    for run in runs:
        if energy_mj(run["record"]) is None:  # why not, as profile and results show say it
            reasons.setdefault(run["target"], energy_line(load(run["record"])).removeprefix("energy: "))
    merits = [m for m in all_merits(store, model=model, target=target, since=since)]
    with_ops: dict[tuple[str, str], dict[str, Any]] = {}
    for row in profiles:  # newest first
        if (row.get("record") or {}).get("ops"):  # cheap test first; the typed part decides
            ops = load(row["record"]).ops
            if ops is not None and ops.available:
                with_ops.setdefault((row["model_sha256"], row["target"]), row)
    ops_runs = sorted(with_ops.values(), key=lambda r: r["id"])
    return ReportData(store.display_url, runs, models, merits, reasons, total_runs=len(profiles), ops_runs=ops_runs)


def label(facts: ModelFacts | None, fallback: str) -> str:
    """The model's label in plots and tables: the store's one label (folder, file, recipe), as `results list`,
    `compare` and `check` print it."""
    if facts is None:
        return fallback
    if facts.display:
        return facts.display
    if facts.is_baseline:
        return f"{facts.name} (float32 baseline)"
    if facts.recipe:
        return f"{facts.name} ({facts.recipe})"
    return facts.name
