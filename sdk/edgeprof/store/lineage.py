"""Which model came from which, and the figures of merit of each compressed model against its baseline.

Every compression manifest names its source (the Keras model's SHA-256), its recipe and the data it was evaluated on
(``data.test_sha256``: a hash of the test split alone). The baseline of a compressed model is the float32 TFLite
export of the same source: the compression run with an empty recipe and the same source hash (``edgeprof compress
SOURCE`` without steps, or the demo's ``baseline``), the newest one evaluated on the same test set, else the newest.

Accuracies are compared only on the same test set: two splits of one data set can differ by a point or more (one may
even hold samples the model was trained on). When the baseline was evaluated on another test set, its sizes and
latency still apply (the float32 export does not depend on the data) but the accuracy difference is taken against
the Keras source, which the compression run evaluated on its own test set, and the note says why. Stores written
before the test-set hash existed are judged by the whole data set's hash: equal means the same split.

Latency comes from the newest profile on the same target, preferring a run with the same runtime, delegate and
threads as the compressed model's run, so that like is compared with like; when that run belongs to a ``--repeat``
group, from the whole group (the median of its run medians, and ``compare``'s verdict over the groups). Every
latency figure of a row comes from the median, like the verdict of ``edgeprof results compare`` that goes with it.
Without a stored baseline export, sizes and accuracy still come from the manifest (which measured the source's
float32 export and the Keras source model), and the latency figures are reported as not measured.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from ..metrics import Figure, change
from .sql import Store, energy_mj


def _conditions(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("runtime"), row.get("runtime_version"), row.get("delegate"), row.get("threads"))


def latest_by_model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """model sha256 -> its newest row (rows come newest first)."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(row["model_sha256"], row)
    return found


def matching_profile(
    profiles: list[dict[str, Any]], sha256: str, target: str, like: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The newest profile of a model on a target, preferring the conditions of ``like``."""
    candidates = [p for p in profiles if p["model_sha256"] == sha256 and p["target"] == target]
    if like is not None:
        same = [p for p in candidates if _conditions(p) == _conditions(like)]
        candidates = same or candidates
    return max(candidates, key=lambda p: p["id"], default=None)


def headline_figure(record: dict[str, Any]) -> Figure:
    """The task's headline figure that a manifest's "accuracy" stands for (accuracy, ROC AUC, R², MSE, ...)."""
    head = record.get("headline") or {}
    key = head.get("metric", "accuracy")
    return Figure(key, head.get("label", key), head.get("higher_is_better", True), head.get("unit", "pp") == "pp")


def accuracy_of(record: dict[str, Any], model: str = "tflite") -> float | None:
    """The headline figure of a compression manifest (accuracy for classifiers; the task's own otherwise): of its
    exported TFLite model (``tflite``) or of the Keras source it was made from (``source``), both measured on the
    manifest's test set. Every reader goes through here."""
    key = headline_figure(record).key
    return ((record.get(model) or {}).get("metrics") or {}).get(key)


def format_headline(value: float | None, label: str, fraction: bool, *, named: bool = False) -> str:
    """A headline figure as a reader sees it: a percentage for fractions (accuracy, ROC AUC), the number otherwise
    (MSE, R²); ``named`` puts the metric's label in front when it is not plain accuracy."""
    text = "-" if value is None else (f"{100 * value:.1f}%" if fraction else f"{value:.4g}")
    return f"{label} {text}" if named and value is not None and label != "accuracy" else text


def headline_text(record: dict[str, Any], model: str = "tflite", *, named: bool = False) -> str:
    """A manifest's headline figure (of its TFLite model or its Keras source), formatted by :func:`format_headline`."""
    figure = headline_figure(record)
    return format_headline(accuracy_of(record, model), figure.label, figure.fraction, named=named)


def evaluated_samples(record: dict[str, Any]) -> int | None:
    """How many test samples the manifest's accuracies were measured on (their uncertainty depends on it)."""
    count = (record.get("data") or {}).get("test")
    return int(count) if isinstance(count, int) and count > 0 else None


def same_test_set(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Were two manifests evaluated on the same test split? None when one of them does not say."""
    da, db = a.get("data") or {}, b.get("data") or {}
    if da.get("test_sha256") and db.get("test_sha256"):
        return bool(da["test_sha256"] == db["test_sha256"])
    if da.get("sha256") and db.get("sha256"):  # stores from before the test-set hash: the whole data set
        return True if da["sha256"] == db["sha256"] else None
    return None


def describe_test_set(record: dict[str, Any]) -> str:
    """``digits.npz: 360 test samples (sha256 1a2b3c4d)``: enough to tell two test sets apart in a note."""
    data = record.get("data") or {}
    if not data:
        return "test set not recorded"
    where = data.get("path") or (f"builtin:{data['builtin']}" if data.get("builtin") else None) or data.get("name")
    seed = f", split seed {data['split_seed']}" if data.get("split_seed") is not None else ""
    digest = data.get("test_sha256") or ""
    return f"{where}: {data.get('test', '?')} test samples{seed}" + (f" (sha256 {digest[:8]})" if digest else "")


def baselines(compressions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """source sha256 -> its newest float32-export compression run (whatever data it was evaluated on)."""
    found: dict[str, dict[str, Any]] = {}
    for row in sorted(compressions, key=lambda r: r["id"], reverse=True):
        if row.get("is_baseline") and row["source_sha256"]:
            found.setdefault(row["source_sha256"], row)
    return found


def baseline_for(compression: dict[str, Any], compressions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The float32 export to judge ``compression`` by: of the same source, the newest evaluated on the same test
    set, else the newest (its sizes and latency still apply; :func:`figures_of_merit` then leaves its accuracy out)."""
    if compression.get("is_baseline"):
        return None
    candidates = [
        row
        for row in sorted(compressions, key=lambda r: r["id"], reverse=True)
        if row.get("is_baseline") and row["source_sha256"] and row["source_sha256"] == compression["source_sha256"]
    ]
    same = [row for row in candidates if same_test_set(row["record"], compression["record"])]
    return (same or candidates or [None])[0]


@dataclass
class Merit:
    """The figures of merit for one compressed model on one target, against its baseline."""

    model: str
    model_sha256: str
    recipe: str
    source_sha256: str
    target: str | None
    baseline_model: str | None  # the float32 export compared against (None: only the manifest's figures)
    size_bytes: int
    gzip_bytes: int
    baseline_size_bytes: int
    baseline_gzip_bytes: int
    compression_ratio: float | None  # raw bytes, float32 export over compressed
    gzip_compression_ratio: float | None
    accuracy: float | None
    baseline_accuracy: float | None
    baseline_accuracy_from: str  # "float32 TFLite" or "Keras source": always measured on the same test set
    accuracy_diff_pp: float | None  # compressed minus baseline, percentage points
    test_set: str  # where the accuracies were measured, e.g. "digits.npz: 360 test samples (sha256 1a2b3c4d)"
    test_samples: int | None  # how many: a 95 % interval of an accuracy near 98 % on 360 samples is about ±1.5 pp
    median_ms: float | None
    baseline_median_ms: float | None
    p90_ms: float | None
    baseline_p90_ms: float | None
    efficiency_improvement: float | None  # (before - after) / before, on the median latency
    efficiency_interval: tuple[float, float] | None  # its 95 % bootstrap interval (from compare)
    throughput_ips: float | None  # 1000 / median latency: inferences per second at the median
    baseline_throughput_ips: float | None
    space_efficiency: float | None  # gzip KiB per accuracy point (per 1 % of accuracy): lower is better
    baseline_space_efficiency: float | None
    energy_mj: float | None
    baseline_energy_mj: float | None
    profile_id: int | None
    baseline_profile_id: int | None
    latency_verdict: str | None = None  # edgeprof results compare of the two runs: is the change real?
    latency_significant: bool | None = None  # the verdict as a flag: the only thing that may colour the row
    latency_noise_band: float | None = None  # the band compare used (±, relative)
    note: str = ""
    accuracy_metric: str = "accuracy"  # the task's headline figure that "accuracy" stands for (e.g. ROC AUC, R²)
    accuracy_diff_unit: str = "pp"  # pp for fractions; % of the baseline for error figures (MSE, MAE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _space_efficiency(gzip_bytes: int | None, accuracy: float | None) -> float | None:
    if not gzip_bytes or not accuracy:
        return None
    return (gzip_bytes / 1024) / (100 * accuracy)


def _accuracy_reference(
    record: dict[str, Any], baseline: dict[str, Any] | None
) -> tuple[float | None, str, str | None]:
    """The accuracy to compare with, where it comes from, and why the float32 baseline's is not used (if so)."""
    if baseline is not None:
        same = same_test_set(baseline["record"], record)
        if same:
            return accuracy_of(baseline["record"]), "float32 TFLite", None
        why = (
            f"the float32 baseline (compression run #{baseline['id']}) was evaluated on another test set "
            f"({describe_test_set(baseline['record'])}) than this model ({describe_test_set(record)})"
            if same is False
            else f"the float32 baseline (compression run #{baseline['id']}) does not record its test set"
        )
        return accuracy_of(record, "source"), "Keras source", why + ": accuracy compared with the Keras source instead"
    return accuracy_of(record, "source"), "Keras source", None


def figures_of_merit(
    compression: dict[str, Any],
    baseline: dict[str, Any] | None,
    profiles: list[dict[str, Any]],
    target: str | None,
) -> Merit:
    """Figures of merit of ``compression`` (a compression row) against ``baseline`` on ``target``."""
    record = compression["record"]
    sizes = record.get("sizes") or {}
    tflite = record.get("tflite") or {}
    figure = headline_figure(record)
    accuracy = accuracy_of(record)
    base_accuracy, accuracy_from, accuracy_note = _accuracy_reference(record, baseline)
    if baseline is not None:
        base_tflite = baseline["record"].get("tflite") or {}
        base_size = base_tflite.get("size_bytes") or sizes.get("source_tflite_bytes")
        base_gzip = base_tflite.get("gzip_bytes") or sizes.get("source_tflite_gzip_bytes")
    else:
        base_size = sizes.get("source_tflite_bytes")
        base_gzip = sizes.get("source_tflite_gzip_bytes")
    size = int(tflite.get("size_bytes") or sizes.get("tflite_bytes") or 0)
    gzip_size = int(tflite.get("gzip_bytes") or sizes.get("tflite_gzip_bytes") or 0)
    after = matching_profile(profiles, compression["model_sha256"], target) if target else None
    before = (
        matching_profile(profiles, baseline["model_sha256"], target, like=after)
        if target and baseline is not None
        else None
    )
    note = []
    if accuracy_note:
        note.append(accuracy_note)
    if target and after is None:
        note.append(f"not profiled on {target}")
    if target and baseline is not None and before is None:
        note.append(f"baseline not profiled on {target}")
    if baseline is None:
        note.append("no stored float32 export of the source: latency gain not measured")
    if after is not None and before is not None and _conditions(after) != _conditions(before):
        note.append("baseline measured under other conditions (runtime, delegate or threads)")
    runs_after, runs_before = _group_of(profiles, after), _group_of(profiles, before)
    med = _median_of_runs(runs_after)
    base_med = _median_of_runs(runs_before)
    comparison = None
    if after is not None and before is not None:
        from ..compare import compare

        try:
            comparison = compare([r["record"] for r in runs_before], [r["record"] for r in runs_after], resamples=1000)
        except Exception as exc:  # noqa: BLE001 - a run without samples still has its figures
            note.append(f"no verdict on the latency change ({exc})")
    return Merit(
        model=compression["model_name"],
        model_sha256=compression["model_sha256"],
        recipe=compression["recipe"],
        source_sha256=compression["source_sha256"],
        target=target,
        baseline_model=baseline["model_name"] if baseline is not None else None,
        size_bytes=size,
        gzip_bytes=gzip_size,
        baseline_size_bytes=int(base_size or 0),
        baseline_gzip_bytes=int(base_gzip or 0),
        compression_ratio=(base_size / size) if base_size and size else None,
        gzip_compression_ratio=(base_gzip / gzip_size) if base_gzip and gzip_size else None,
        accuracy=accuracy,
        baseline_accuracy=base_accuracy,
        baseline_accuracy_from=accuracy_from,
        accuracy_diff_pp=change(base_accuracy, accuracy, figure)[0]
        if accuracy is not None and base_accuracy is not None
        else None,
        test_set=describe_test_set(record),
        test_samples=evaluated_samples(record),
        median_ms=med,
        baseline_median_ms=base_med,
        p90_ms=after["p90_ms"] if after else None,
        baseline_p90_ms=before["p90_ms"] if before else None,
        efficiency_improvement=(base_med - med) / base_med if med and base_med else None,
        # compare's change is median(after) / median(before) - 1; the improvement is its negative.
        efficiency_interval=(-comparison.ci_high, -comparison.ci_low) if comparison is not None else None,
        throughput_ips=1000.0 / med if med else None,
        baseline_throughput_ips=1000.0 / base_med if base_med else None,
        space_efficiency=_space_efficiency(gzip_size, accuracy) if figure.fraction else None,
        baseline_space_efficiency=_space_efficiency(base_gzip, base_accuracy) if figure.fraction else None,
        energy_mj=energy_mj(after["record"]) if after else None,
        baseline_energy_mj=energy_mj(before["record"]) if before else None,
        profile_id=after["id"] if after else None,
        baseline_profile_id=before["id"] if before else None,
        latency_verdict=comparison.verdict if comparison is not None else None,
        latency_significant=comparison.significant if comparison is not None else None,
        latency_noise_band=comparison.min_change if comparison is not None else None,
        note="; ".join(note),
        accuracy_metric=figure.label,
        accuracy_diff_unit=change(1.0, 1.0, figure)[1],
    )


def _group_of(profiles: list[dict[str, Any]], run: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A run and the other runs of its ``--repeat`` group (a lone run alone), in round order."""
    if run is None:
        return []
    if run.get("group_id") is None:
        return [run]
    members = [p for p in profiles if p.get("group_id") == run["group_id"]]
    return sorted(members, key=lambda p: (p.get("group_index") or 0, p["id"]))


def _median_of_runs(runs: list[dict[str, Any]]) -> float | None:
    """A run's median, or a group's: the median of its run medians (as ``results show g:N`` prints it)."""
    medians = [float(r["median_ms"]) for r in runs if r.get("median_ms") is not None]
    return statistics.median(medians) if medians else None


def all_merits(
    store: Store, *, model: str | None = None, target: str | None = None, since: str | None = None
) -> list[Merit]:
    """Figures of merit of every stored compressed model (not the baselines themselves), per target profiled."""
    compressions = store.compressions()
    profiles = store.profiles(target=target)
    merits = []
    for row in latest_by_model(store.compressions(model=model, since=since)).values():
        if row.get("is_baseline"):
            continue
        targets = sorted({p["target"] for p in profiles if p["model_sha256"] == row["model_sha256"]}) or [None]
        for tgt in targets:
            merits.append(figures_of_merit(row, baseline_for(row, compressions), profiles, tgt))
    return merits


def describe_baseline(compression: dict[str, Any], compressions: list[dict[str, Any]]) -> str:
    """For ``edgeprof results show --compression``: what the model's accuracy is judged against, and why."""
    record = compression["record"]
    if compression.get("is_baseline"):
        return f"a float32 baseline itself, evaluated on {describe_test_set(record)}"
    baseline = baseline_for(compression, compressions)
    base_accuracy, accuracy_from, why = _accuracy_reference(record, baseline)
    accuracy = accuracy_of(record)
    if accuracy is None or base_accuracy is None:
        return f"accuracy difference not available: the manifest has no accuracy ({describe_test_set(record)})"
    against = f"the float32 baseline, compression run #{baseline['id']}" if baseline and not why else "the Keras source"
    line = f"accuracy {100 * (accuracy - base_accuracy):+.2f} pp against {against} ({accuracy_from}), "
    line += f"on {describe_test_set(record)}"
    if baseline is None:
        line += "\n  (no float32 export of this source is stored: edgeprof compress SOURCE -o base --data DATA)"
    return line + (f"\n  ({why})" if why else "")
