"""Budgets: limits a model must meet on each target before it ships, checked in CI.

A budget file (TOML) holds limits for every target in ``[limits]`` and overrides per target in
``[targets.NAME]`` (``NAME`` may use ``*`` globs; the most specific match wins)::

    [limits]
    p90_ms = 2.0            # p90 latency of the newest profile run on the target
    peak_memory_mib = 150   # peak RSS of the agent process (model + runtime) during that run
    energy_mj = 5.0         # energy per inference, where the board has a power sensor
    gzip_kib = 64           # the .tflite file after gzip -9
    accuracy_drop_pp = 1.0  # accuracy lost against the float32 baseline, in percentage points

    [targets.local]
    p90_ms = 0.5

Every limit is an upper bound. A figure that was not measured (no power sensor, no compression manifest to take
accuracy from) is "unknown": reported with its reason, and a breach only with ``strict``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _table, _toml
from .errors import EdgeprofError
from .store import Store
from .store.lineage import baseline_for, figures_of_merit, latest_by_model
from .store.sql import energy_mj


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
    model: str
    sha256: str
    target: str
    metric: str
    limit: float
    value: float | None
    status: str  # "pass", "FAIL" or "unknown"
    reason: str = ""
    profile_id: int | None = None

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
        verdict = (
            "PASS: every limit is met"
            if self.passed
            else f"FAIL: {len(self.breaches)} of {len(self.checks)} checks over budget"
            + (" or unknown (--strict)" if self.strict and any(c.status == "unknown" for c in self.breaches) else "")
        )
        return (
            _table.table(["model", "target", "metric", "value", "limit", "status", "note"], rows, align="llllrll")
            + "\n\n"
            + verdict
        )


def _evaluate(
    limits: dict[str, float],
    model: str,
    sha256: str,
    target: str,
    figures: dict[str, tuple[float | None, str]],
    profile_id: int | None,
) -> list[Check]:
    checks = []
    for key in METRICS:
        if key not in limits:
            continue
        value, reason = figures.get(key, (None, "not measured"))
        if value is None:
            status = "unknown"
        else:
            status = "pass" if value <= limits[key] + 1e-12 else "FAIL"
            reason = "" if status == "pass" and key != "accuracy_drop_pp" else reason  # say which figure
        checks.append(Check(model, sha256, target, key, limits[key], value, status, reason, profile_id))
    return checks


def _figures(
    model_row: dict[str, Any] | None,
    size_bytes: int | None,
    gzip_bytes: int | None,
    profile: dict[str, Any] | None,
    accuracy_drop: tuple[float | None, str],
    target: str,
) -> dict[str, tuple[float | None, str]]:
    none = f"no profile run on {target}"
    figures: dict[str, tuple[float | None, str]] = {
        "gzip_kib": (gzip_bytes / 1024 if gzip_bytes is not None else None, "size unknown"),
        "size_kib": (size_bytes / 1024 if size_bytes is not None else None, "size unknown"),
        "accuracy_drop_pp": accuracy_drop,
    }
    if profile is None:
        for key in ("p90_ms", "median_ms", "p99_ms", "peak_memory_mib", "energy_mj"):
            figures[key] = (None, none)
        return figures
    record = profile["record"]
    figures["p90_ms"] = (profile["p90_ms"], "")
    figures["median_ms"] = (profile["median_ms"], "")
    figures["p99_ms"] = (profile["p99_ms"], "")
    peak = profile.get("peak_rss_kb")
    figures["peak_memory_mib"] = (peak / 1024 if peak else None, "peak RSS not measured")
    energy = record.get("energy") or {}
    figures["energy_mj"] = (energy_mj(record), f"no energy measurement ({energy.get('reason', 'no sensor')})")
    if record.get("throttled"):
        for key in ("p90_ms", "median_ms", "p99_ms"):
            value, _ = figures[key]
            figures[key] = (value, "measured while the board throttled")
    return figures


def _accuracy_drop(store: Store, sha256: str) -> tuple[float | None, str]:
    compressions = store.compressions()
    mine = latest_by_model(compressions).get(sha256)
    if mine is None:
        return None, "no compression manifest for this model in the store"
    baseline = baseline_for(mine, compressions)  # on the same test set when one is stored
    merit = figures_of_merit(mine, baseline, [], None)
    if merit.accuracy_diff_pp is None:
        return None, "the manifest has no accuracy"
    unit = {"pp": "", "%": ", in % of the baseline's"}.get(merit.accuracy_diff_unit, ", in its own units")
    return -merit.accuracy_diff_pp, f"{merit.accuracy_metric}{unit} against the {merit.baseline_accuracy_from}"


def check_store(
    budget: Budget,
    store: Store,
    *,
    model: str | None = None,
    target: str | None = None,
    since: str | None = None,
    strict: bool = False,
) -> BudgetReport:
    """Check the newest stored run of every model on every target (filtered like ``edgeprof results list``)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in store.profiles(model=model, target=target, since=since):
        latest.setdefault((row["model_sha256"], row["target"]), row)
    models = store.models({sha for sha, _ in latest})
    checks = []
    for (sha, tgt), row in sorted(latest.items(), key=lambda kv: (kv[1]["model_name"], kv[0][1], kv[0][0])):
        info = models.get(sha, {})
        figures = _figures(info, info.get("size_bytes"), info.get("gzip_bytes"), row, _accuracy_drop(store, sha), tgt)
        checks += _evaluate(budget.limits_for(tgt), row["model_name"], sha, tgt, figures, row["id"])
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
) -> BudgetReport:
    """Check one .tflite file: its size now, its accuracy from the store, its runs on each target.

    Targets: ``targets``, else those the budget names, else those the model was profiled on, else ``local``.
    A target without a stored run of this exact file (same SHA-256) is profiled now, and so is every target when
    ``measure`` is set; those runs are stored like any other.
    """
    from .modelfile import open_tflite

    info, _data = open_tflite(model)
    profiles = store.profiles(model=info.sha256)
    chosen = targets or budget.named_targets() or sorted({p["target"] for p in profiles}) or ["local"]
    checks = []
    for tgt in chosen:
        row = next((p for p in profiles if p["target"] == tgt), None)
        if measure or row is None:
            from .profile import profile

            if say is not None:
                say(f"profiling {info.name} on {tgt}")
            result = profile(model, tgt, store=store, **(profile_options or {}))
            row = store.profile(result.id) if result.id is not None else None
        figures = _figures(None, info.size_bytes, info.gzip_bytes, row, _accuracy_drop(store, info.sha256), tgt)
        checks += _evaluate(
            budget.limits_for(tgt), info.name, info.sha256, tgt, figures, row["id"] if row is not None else None
        )
    return BudgetReport(checks, strict)
