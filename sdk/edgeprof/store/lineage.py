"""Which model came from which, and the figures of merit of each compressed model against its baseline.

Every compression manifest names its source (the Keras model's SHA-256) and its recipe. The baseline of a
compressed model is the float32 TFLite export of the same source: the compression run with an empty recipe and the
same source hash (``edgeprof compress SOURCE`` without steps, or the demo's ``baseline``). When several exist, the
newest wins. Its latency is that of its newest profile on the same target, preferring a run with the same runtime,
delegate and threads as the compressed model's run, so that like is compared with like.

Without a stored baseline export, sizes and accuracy still come from the manifest (which measured the source's
float32 export and the Keras source model), and the latency figures are reported as not measured.
"""

from __future__ import annotations

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


def baselines(compressions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """source sha256 -> its newest float32-export compression run."""
    found: dict[str, dict[str, Any]] = {}
    for row in sorted(compressions, key=lambda r: r["id"], reverse=True):
        if row.get("is_baseline") and row["source_sha256"]:
            found.setdefault(row["source_sha256"], row)
    return found


@dataclass
class Merit:
    """The seed's figures of merit for one compressed model on one target, against its baseline."""

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
    baseline_accuracy_from: str  # "float32 TFLite" or "Keras source"
    accuracy_diff_pp: float | None  # compressed minus baseline, percentage points
    median_ms: float | None
    baseline_median_ms: float | None
    p90_ms: float | None
    baseline_p90_ms: float | None
    efficiency_improvement: float | None  # (before - after) / before, on the median latency
    throughput_ips: float | None  # 1000 / mean latency: back-to-back inferences per second
    baseline_throughput_ips: float | None
    space_efficiency: float | None  # gzip KiB per accuracy point (per 1 % of accuracy): lower is better
    baseline_space_efficiency: float | None
    energy_mj: float | None
    baseline_energy_mj: float | None
    profile_id: int | None
    baseline_profile_id: int | None
    latency_verdict: str | None = None  # edgeprof results compare of the two runs: is the change real?
    note: str = ""
    accuracy_metric: str = "accuracy"  # the task's headline figure that "accuracy" stands for (e.g. ROC AUC, R²)
    accuracy_diff_unit: str = "pp"  # pp for fractions; % of the baseline for error figures (MSE, MAE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _space_efficiency(gzip_bytes: int | None, accuracy: float | None) -> float | None:
    if not gzip_bytes or not accuracy:
        return None
    return (gzip_bytes / 1024) / (100 * accuracy)


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
    head = record.get("headline") or {}
    key = head.get("metric", "accuracy")
    figure = Figure(key, head.get("label", key), head.get("higher_is_better", True), head.get("unit", "pp") == "pp")
    accuracy = (tflite.get("metrics") or {}).get(key)
    if baseline is not None:
        base_record = baseline["record"]
        base_accuracy = ((base_record.get("tflite") or {}).get("metrics") or {}).get(key)
        accuracy_from = "float32 TFLite"
        base_size = (base_record.get("tflite") or {}).get("size_bytes") or sizes.get("source_tflite_bytes")
        base_gzip = (base_record.get("tflite") or {}).get("gzip_bytes") or sizes.get("source_tflite_gzip_bytes")
    else:
        base_accuracy = ((record.get("source") or {}).get("metrics") or {}).get(key)
        accuracy_from = "Keras source"
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
    if target and after is None:
        note.append(f"not profiled on {target}")
    if target and baseline is not None and before is None:
        note.append(f"baseline not profiled on {target}")
    if baseline is None:
        note.append("no stored float32 export of the source: latency gain not measured")
    if after is not None and before is not None and _conditions(after) != _conditions(before):
        note.append("baseline measured under other conditions (runtime, delegate or threads)")
    med = after["median_ms"] if after else None
    base_med = before["median_ms"] if before else None
    verdict = None
    if after is not None and before is not None:
        from ..compare import compare

        try:
            verdict = compare(before["record"], after["record"], resamples=1000).verdict
        except Exception:  # noqa: BLE001 - a run without samples still has its figures
            verdict = None
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
        median_ms=med,
        baseline_median_ms=base_med,
        p90_ms=after["p90_ms"] if after else None,
        baseline_p90_ms=before["p90_ms"] if before else None,
        efficiency_improvement=(base_med - med) / base_med if med and base_med else None,
        throughput_ips=1000.0 / after["mean_ms"] if after and after["mean_ms"] else None,
        baseline_throughput_ips=1000.0 / before["mean_ms"] if before and before["mean_ms"] else None,
        space_efficiency=_space_efficiency(gzip_size, accuracy) if figure.fraction else None,
        baseline_space_efficiency=_space_efficiency(base_gzip, base_accuracy) if figure.fraction else None,
        energy_mj=energy_mj(after["record"]) if after else None,
        baseline_energy_mj=energy_mj(before["record"]) if before else None,
        profile_id=after["id"] if after else None,
        baseline_profile_id=before["id"] if before else None,
        latency_verdict=verdict,
        note="; ".join(note),
        accuracy_metric=figure.label,
        accuracy_diff_unit=change(1.0, 1.0, figure)[1],
    )


def all_merits(
    store: Store, *, model: str | None = None, target: str | None = None, since: str | None = None
) -> list[Merit]:
    """Figures of merit of every stored compressed model (not the baselines themselves), per target profiled."""
    compressions = store.compressions()
    profiles = store.profiles(target=target)
    base = baselines(compressions)
    merits = []
    for row in latest_by_model(store.compressions(model=model, since=since)).values():
        if row.get("is_baseline"):
            continue
        targets = sorted({p["target"] for p in profiles if p["model_sha256"] == row["model_sha256"]}) or [None]
        for tgt in targets:
            merits.append(figures_of_merit(row, base.get(row["source_sha256"]), profiles, tgt))
    return merits
