"""What a report shows, gathered from the store: latest runs, model facts and figures of merit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store import Store
from ..store.labels import Labels
from ..store.lineage import Merit, accuracy_of, all_merits, evaluated_samples, latest_by_model
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


@dataclass
class ReportData:
    store: str
    runs: list[dict[str, Any]]  # newest profile of each (model, target), oldest first; "caveats": as views say
    models: dict[str, ModelFacts]  # by sha256
    merits: list[Merit]
    energy_reasons: dict[str, str] = field(default_factory=dict)  # target -> why energy is unavailable
    total_runs: int = 0


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
        )
    reasons = {}
    for run in runs:
        if energy_mj(run["record"]) is None:  # why not, as profile and results show say it
            reasons.setdefault(run["target"], energy_line(load(run["record"])).removeprefix("energy: "))
    merits = [m for m in all_merits(store, model=model, target=target, since=since)]
    return ReportData(store.display_url, runs, models, merits, reasons, total_runs=len(profiles))


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
