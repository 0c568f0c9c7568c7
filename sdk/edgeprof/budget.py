"""Budgets: limits a model must meet on each target before it ships, checked in CI.

A budget file (TOML) holds limits for every target in ``[limits]`` and overrides per target in
``[targets.NAME]`` (``NAME`` may use ``*`` globs; the most specific match wins)::

    [limits]
    p90_ms = 2.0            # p90 latency of the newest profile run on the target
    peak_memory_mib = 150   # peak RSS of the agent process (model + runtime) during that run
    energy_mj = 5.0         # energy per inference, where a sensor or a meter measured it
    gzip_kib = 64           # the .tflite file after gzip -9
    accuracy_drop_pp = 1.0  # accuracy lost against the float32 baseline, in percentage points

    [targets.local]
    p90_ms = 0.5

Every limit is an upper bound. A figure that was not measured (no power sensor, no compression manifest to take
accuracy from) is "unknown": reported with its reason, and a breach only with ``strict``.

On a shared machine one measurement is one draw of a noisy process (5-12 % between two processes, FIELD-NOTES).
So checks work on groups of runs (``profile --repeat N``, each run its own agent process): latency and energy
limits apply to the one-sided 95 % upper confidence bound of the mean over the runs (Student's t over the runs'
figures), and peak memory to the largest of them: a model passes only when it is within budget with 95 %
confidence, and a single lucky run cannot pass it. Which runs: with ``replicates=N`` (``check --repeat N``) the
newest N runs of the model on the target, the missing ones profiled now as one group; without, the newest run and
the rest of its group, and a model with no stored run is profiled as a group of ``DEFAULT_REPEAT`` processes. A
lone run stored by ``profile`` without ``--repeat`` is checked as it is (one draw, no bound), and the note says so;
but a lone run whose energy has its own 95 % interval (a power meter on the host) is checked by its one-sided 95 %
upper bound. A group of metered runs is bounded over the runs' figures, like latency.
Caveats of the runs (an emulated board, throttling) are in every row's note.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _table, _toml
from .energy import figure_of
from .errors import EdgeprofError
from .store import Store
from .store.labels import Labels
from .store.lineage import baseline_for, figures_of_merit, latest_by_model
from .store.schema import is_baseline
from .store.sql import energy_mj
from .views import energy_line, load

#: Confidence of the bound a replicated check compares with the limit (one-sided).
CONFIDENCE = 0.95


class BudgetError(EdgeprofError):
    """The budget file is missing or malformed."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    fmt: str


METRICS = {
    m.key: m
    for m in (
        Metric("p90_ms", "p90 latency", "ms", ".3f"),
        Metric("median_ms", "median latency", "ms", ".3f"),
        Metric("p99_ms", "p99 latency", "ms", ".3f"),
        Metric("peak_memory_mib", "peak memory", "MiB", ".1f"),
        Metric("energy_mj", "energy per inference", "mJ", ".3f"),
        Metric("gzip_kib", "gzip size", "KiB", ".1f"),
        Metric("size_kib", "file size", "KiB", ".1f"),
        Metric("accuracy_drop_pp", "accuracy drop", "pp", ".2f"),
    )
}


def _limits(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise BudgetError(f"{where} must be a table of limits", "write e.g. p90_ms = 2.0")
    limits = {}
    for key, value in table.items():
        if key not in METRICS:
            raise BudgetError(f"{where}: unknown limit {key!r}", f"use one of: {', '.join(METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BudgetError(f"{where}: {key} = {value!r} is not a number >= 0", f"write e.g. {key} = 2.0")
        limits[key] = float(value)
    return limits


@dataclass
class Budget:
    limits: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, float]] = field(default_factory=dict)  # pattern -> overrides

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "budget") -> Budget:
        unknown = set(data) - {"limits", "targets"}
        if unknown:
            raise BudgetError(
                f"{where}: unknown section(s) {', '.join(sorted(unknown))}",
                "a budget has [limits] and [targets.NAME] tables",
            )
        targets = data.get("targets", {})
        if not isinstance(targets, dict):
            raise BudgetError(f"{where}: 'targets' must hold [targets.NAME] tables", "see examples/ci/budget.toml")
        budget = cls(
            _limits(data.get("limits", {}), f"{where} [limits]"),
            {name: _limits(table, f"{where} [targets.{name}]") for name, table in targets.items()},
        )
        if not budget.limits and not any(budget.targets.values()):
            raise BudgetError(f"{where} sets no limit", "add e.g. p90_ms = 2.0 under [limits]")
        return budget

    @classmethod
    def from_file(cls, path: str | Path) -> Budget:
        path = Path(path)
        try:
            data = _toml.load(path)
        except FileNotFoundError:
            raise BudgetError(f"budget file {path} does not exist", "check the path given to --budget") from None
        except _toml.TOMLDecodeError as exc:
            raise BudgetError(
                f"{path} is not valid TOML ({exc})", "fix the file; see examples/ci/budget.toml"
            ) from None
        return cls.from_dict(data, str(path))

    def limits_for(self, target: str) -> dict[str, float]:
        """[limits], overridden by every matching [targets.*] table, exact names last (most specific wins)."""
        merged = dict(self.limits)
        matches = [p for p in self.targets if fnmatch.fnmatchcase(target, p)]
        for pattern in sorted(matches, key=lambda p: (p == target, len(p.replace("*", "")))):
            merged.update(self.targets[pattern])
        return merged

    def named_targets(self) -> list[str]:
        """Targets the budget names exactly (no glob)."""
        return [p for p in self.targets if not any(c in p for c in "*?[")]


@dataclass
class Check:
    model: str  # the model's label: folder, file name and recipe (every compressed file is model.tflite)
    sha256: str
    target: str
    metric: str
    limit: float
    value: float | None  # the figure compared with the limit (with replicates: the upper confidence bound)
    status: str  # "pass", "FAIL" or "unknown"
    reason: str = ""  # unknown: why; FAIL: by how much; pass: a note about the figure, if any
    profile_id: int | None = None  # the newest run the figure comes from
    profile_ids: list[int] = field(default_factory=list)  # every run it comes from (replicates)
    mean: float | None = None  # replicates: the mean of the runs' figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BudgetReport:
    checks: list[Check]
    strict: bool = False

    @property
    def breaches(self) -> list[Check]:
        return [c for c in self.checks if c.status == "FAIL" or (self.strict and c.status == "unknown")]

    @property
    def passed(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "strict": self.strict,
            "breaches": len(self.breaches),
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> str:
        if not self.checks:
            return "nothing to check"
        rows = []
        for c in self.checks:
            m = METRICS[c.metric]
            rows.append(
                [
                    c.model,
                    c.target,
                    m.label,
                    f"{format(c.value, m.fmt)} {m.unit}" if c.value is not None else "-",
                    f"<= {format(c.limit, m.fmt)} {m.unit}",
                    c.status,
                    c.reason,
                ]
            )
        unknown = [c for c in self.checks if c.status == "unknown"]
        if not self.passed:
            verdict = f"FAIL: {len(self.breaches)} of {len(self.checks)} checks over budget" + (
                " or unknown (--strict)" if self.strict and any(c.status == "unknown" for c in self.breaches) else ""
            )
        elif unknown:
            verdict = (
                f"PASS: {len(self.checks) - len(unknown)} of {len(self.checks)} limits met; {len(unknown)} unknown "
                "(not measured: see the notes; --strict counts an unknown limit as a breach)"
            )
        else:
            verdict = "PASS: every limit is met"
        return (
            _table.table(["model", "target", "metric", "value", "limit", "status", "note"], rows, align="llllrll")
            + "\n\n"
            + verdict
        )


@dataclass(frozen=True)
class Figure:
    """A figure to check, or why there is none (``unknown``), and what a reader should know about it (``note``)."""

    value: float | None
    unknown: str = ""
    note: str = ""
    mean: float | None = None
    runs: tuple[int, ...] = ()


def _evaluate(
    limits: dict[str, float],
    model: str,
    sha256: str,
    target: str,
    figures: dict[str, Figure],
) -> list[Check]:
    checks = []
    for key in METRICS:
        if key not in limits:
            continue
        figure = figures.get(key, Figure(None, "not measured"))
        metric, limit = METRICS[key], limits[key]
        if figure.value is None:
            status, reason = "unknown", figure.unknown
        elif figure.value <= limit + 1e-12:
            status, reason = "pass", figure.note
        else:
            over = f"{format(figure.value - limit, metric.fmt)} {metric.unit} over"
            status, reason = "FAIL", "; ".join(r for r in (over, figure.note) if r)
        newest = max(figure.runs) if figure.runs else None
        runs = list(figure.runs)
        checks.append(Check(model, sha256, target, key, limit, figure.value, status, reason, newest, runs, figure.mean))
    return checks


def upper_bound(values: list[float], confidence: float = CONFIDENCE) -> float:
    """One-sided upper confidence bound of the mean of ``values`` (Student's t); the value itself for one run."""
    if len(values) == 1:
        return values[0]
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean + float(t.ppf(confidence, n - 1)) * sd / math.sqrt(n)


def _replicated(values: list[float], runs: tuple[int, ...], unit: str, fmt: str, note: str = "") -> Figure:
    if len(values) == 1:
        return Figure(values[0], note=note, runs=runs)
    mean = sum(values) / len(values)
    spread = f"{format(min(values), fmt)}-{format(max(values), fmt)}"
    said = f"{CONFIDENCE:.0%} upper bound over {len(values)} runs (mean {format(mean, fmt)} {unit}, runs {spread})"
    return Figure(upper_bound(values), note="; ".join(n for n in (said, note) if n), mean=mean, runs=runs)


def _figures(
    size_bytes: int | None,
    gzip_bytes: int | None,
    profiles: list[dict[str, Any]],
    accuracy_drop: tuple[float | None, str],
    target: str,
) -> dict[str, Figure]:
    """The figures of one model on one target: sizes from the file, accuracy from its manifest, the rest from
    ``profiles`` (its newest stored runs there, newest first; several with replicates)."""
    drop, why = accuracy_drop
    figures: dict[str, Figure] = {
        "gzip_kib": Figure(gzip_bytes / 1024 if gzip_bytes is not None else None, "size unknown"),
        "size_kib": Figure(size_bytes / 1024 if size_bytes is not None else None, "size unknown"),
        "accuracy_drop_pp": Figure(drop, why) if drop is None else Figure(drop, note=why),
    }
    if not profiles:
        for key in ("p90_ms", "median_ms", "p99_ms", "peak_memory_mib", "energy_mj"):
            figures[key] = Figure(None, f"no profile run on {target}")
        return figures
    runs = tuple(int(p["id"]) for p in profiles)
    caveats = sorted({c for p in profiles for c in load(p["record"]).caveats()})
    note = "; ".join(caveats)
    if len(profiles) == 1:
        note = "; ".join(n for n in ("one run, no bound: --repeat N (or profile --repeat N) for one", note) if n)
    for key, column in (("p90_ms", "p90_ms"), ("median_ms", "median_ms"), ("p99_ms", "p99_ms")):
        figures[key] = _replicated([float(p[column]) for p in profiles], runs, "ms", ".3f", note)
    peaks = [p.get("peak_rss_kb") for p in profiles]
    if all(peaks):
        note = f"the largest of {len(peaks)} runs" if len(peaks) > 1 else ""
        figures["peak_memory_mib"] = Figure(max(peaks) / 1024, note=note, runs=runs)  # type: ignore[type-var]
    else:
        figures["peak_memory_mib"] = Figure(None, "peak RSS not measured")
    energies = [energy_mj(p["record"]) for p in profiles]
    metered = figure_of(profiles[0]["record"]) if len(profiles) == 1 else None
    if metered is not None and metered.u95 is not None:
        # One run with an interval (a meter): within budget only when its one-sided 95 % upper bound is.
        said = f"{CONFIDENCE:.0%} upper bound of {metered.text()}"
        figures["energy_mj"] = Figure(metered.upper(), note="; ".join([said, *caveats]), mean=metered.mj, runs=runs)
    elif all(e is not None for e in energies):
        figures["energy_mj"] = _replicated([float(e) for e in energies if e is not None], runs, "mJ", ".3f", note)
    else:
        without = next(load(p["record"]) for p in profiles if energy_mj(p["record"]) is None)
        said = energy_line(without).removeprefix("energy: ")  # as profile and results show say it
        figures["energy_mj"] = Figure(None, f"no energy measurement: {said}")
    return figures


def manifest_beside(model: str | Path, sha256: str) -> dict[str, Any] | None:
    """The compression run (as the store keeps one) from the ``manifest.json`` written next to ``model`` by
    ``edgeprof compress``, if that manifest describes this very file."""
    path = Path(model).with_name("manifest.json")
    try:
        manifest = json.loads(path.read_text())
        if (manifest.get("tflite") or {}).get("sha256") != sha256:
            return None
        return {
            "record": manifest,
            "model_sha256": sha256,
            "model_name": Path(model).name,
            "recipe": manifest.get("recipe_text", ""),
            "source_sha256": (manifest.get("source") or {}).get("sha256", ""),
            "is_baseline": is_baseline(manifest),
            "manifest_path": str(path),
        }
    except (OSError, ValueError, AttributeError):
        return None


def _accuracy_drop(store: Store, sha256: str, beside: dict[str, Any] | None = None) -> tuple[float | None, str]:
    compressions = store.compressions()
    mine = latest_by_model(compressions).get(sha256) or beside
    if mine is None:
        return None, "no compression manifest for this model (none in the store, none beside the file)"
    baseline = baseline_for(mine, compressions)  # on the same test set when one is stored
    merit = figures_of_merit(mine, baseline, [], None)
    if merit.accuracy_diff_pp is None:
        return None, "the manifest has no accuracy"
    unit = {"pp": "", "%": ", in % of the baseline's"}.get(merit.accuracy_diff_unit, ", in its own units")
    where = f" ({mine['manifest_path']})" if mine.get("manifest_path") else ""
    return -merit.accuracy_diff_pp, f"{merit.accuracy_metric}{unit} against the {merit.baseline_accuracy_from}{where}"


def _chosen_runs(rows: list[dict[str, Any]], replicates: int | None) -> list[dict[str, Any]]:
    """From one model's runs on one target (newest first): the newest ``replicates``, or the newest run and the
    other runs of its group."""
    if replicates is not None:
        return rows[:replicates]
    if not rows:
        return []
    newest = rows[0]
    if newest.get("group_id") is None:
        return [newest]
    return [r for r in rows if r.get("group_id") == newest["group_id"]]


def check_store(
    budget: Budget,
    store: Store,
    *,
    model: str | None = None,
    target: str | None = None,
    since: str | None = None,
    strict: bool = False,
    replicates: int | None = None,
) -> BudgetReport:
    """Check the newest stored group or run (or the newest ``replicates`` runs) of every model on every target,
    filtered like ``edgeprof results list``."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in store.profiles(model=model, target=target, since=since):  # newest first
        runs.setdefault((row["model_sha256"], row["target"]), []).append(row)
    latest = {key: _chosen_runs(rows, replicates) for key, rows in runs.items()}
    models = store.models({sha for sha, _ in latest})
    labels = Labels(store)
    checks = []
    for (sha, tgt), rows in sorted(latest.items(), key=lambda kv: (kv[1][0]["model_name"], kv[0][1], kv[0][0])):
        info = models.get(sha, {})
        figures = _figures(info.get("size_bytes"), info.get("gzip_bytes"), rows, _accuracy_drop(store, sha), tgt)
        checks += _evaluate(budget.limits_for(tgt), labels.of_profile(rows[0]), sha, tgt, figures)
    return BudgetReport(checks, strict)


def check_model(
    budget: Budget,
    model: str | Path,
    store: Store,
    *,
    targets: list[str] | None = None,
    measure: bool = False,
    strict: bool = False,
    profile_options: dict[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
    replicates: int | None = None,
) -> BudgetReport:
    """Check one .tflite file: its size now, its accuracy from its manifest, its runs on each target.

    Targets: ``targets``, else those the budget names, else those the model was profiled on, else ``local``.
    The runs of this exact file (same SHA-256) on a target: the newest ``replicates`` (the missing ones profiled
    now, as one group of fresh agent processes), else the newest run with the rest of its group; a target
    without any (or every target with ``measure``) gets a new group of ``replicates`` or ``DEFAULT_REPEAT`` runs.
    Those runs are stored like any other. The accuracy comes from the store's compression manifest, else from
    ``manifest.json`` beside the file.
    """
    from .modelfile import open_tflite
    from .profile import DEFAULT_REPEAT, profile

    info, _data = open_tflite(model)
    profiles = store.profiles(model=info.sha256)
    chosen = targets or budget.named_targets() or sorted({p["target"] for p in profiles}) or ["local"]
    beside = manifest_beside(model, info.sha256)
    drop = _accuracy_drop(store, info.sha256, beside)
    label = Labels(store).of(info.name, info.sha256, str(model), recipe=beside["recipe"] if beside else None)
    checks = []
    for tgt in chosen:
        rows = [] if measure else _chosen_runs([p for p in profiles if p["target"] == tgt], replicates)
        wanted = replicates if replicates is not None else (len(rows) or DEFAULT_REPEAT)
        missing = wanted - len(rows)
        if missing > 0:
            if say is not None:
                more = f"{missing} more process(es) for {wanted}" if rows else f"{missing} process(es)"
                say(f"profiling {info.name} on {tgt} ({more}, each a fresh agent)")
            made = profile(model, tgt, store=store, repeat=missing, **(profile_options or {}))
            new = made.runs if missing > 1 else [made]
            rows = [store.profile(r.id) for r in reversed(new) if r.id is not None] + rows
        figures = _figures(info.size_bytes, info.gzip_bytes, rows, drop, tgt)
        checks += _evaluate(budget.limits_for(tgt), label, info.sha256, tgt, figures)
    return BudgetReport(checks, strict)
