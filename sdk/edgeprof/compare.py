"""Is B really faster or slower than A, or is the difference noise?

Like pyperf's ``compare_to``, a change is reported only when it is significant; otherwise the answer is
"no significant change". Two tests must agree, both over the raw latency samples of the two runs:

* a Mann–Whitney U rank test (two-sided, no assumption of normality: latency is skewed) at level ``alpha``, and
* a bootstrap 95 % interval of the relative change of the median that lies wholly outside ``±min_change``.

The second condition exists because samples within one run are not independent of the run: the same model
measured in two processes differs by a few percent (memory layout, caches, other load; FIELD-NOTES saw 5–12 % on
this class of VM), and a rank test over thousands of samples calls such a difference "significant". The
``min_change`` band (5 % by default) is that run-to-run noise floor; lower it on a quiet, pinned board.

Runs whose samples were subsampled by the agent (``samples_subsampled``: an even subset of very many runs, plus a
histogram of all of them) are compared on the kept subset, which preserves the distribution and its drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import _table
from .errors import StoreError

NO_CHANGE = "no significant change"
CONDITIONS = (
    ("target", lambda r: r.get("target")),
    ("board", lambda r: (r.get("device") or {}).get("hostname")),
    ("machine", lambda r: (r.get("device") or {}).get("machine")),
    ("runtime", lambda r: " ".join(str(v) for v in ((r.get("runtime") or {}).get(k) for k in ("name", "version")))),
    ("delegate", lambda r: r.get("delegate")),
    ("threads", lambda r: r.get("threads")),
    ("inputs", lambda r: r.get("inputs")),
)


def samples_of(record: dict[str, Any]) -> np.ndarray:
    """The latency samples (ms) of a stored run; from its histogram's bin centres if it kept no samples."""
    samples = record.get("samples_ms") or []
    if samples:
        return np.asarray(samples, dtype=np.float64)
    hist = record.get("histogram") or {}
    edges, counts = hist.get("edges_ms"), hist.get("counts")
    if edges and counts:
        centres = np.sqrt(np.asarray(edges[:-1]) * np.asarray(edges[1:]))  # log-spaced bins: geometric centre
        return np.repeat(centres, counts)
    raise StoreError(
        f"run {record.get('id', '?')} has no latency samples to compare", "profile the model again with edgeprof"
    )


@dataclass
class RunSide:
    id: int | None
    model: str
    sha256: str
    target: str
    count: int  # runs measured
    tested: int  # samples the tests used
    subsampled: bool
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float

    @classmethod
    def of(cls, record: dict[str, Any], tested: int) -> RunSide:
        lat = record["latency_ms"]
        model = record.get("model") or {}
        return cls(
            record.get("id"),
            model.get("name", "?"),
            model.get("sha256", ""),
            record.get("target", "?"),
            int(lat["count"]),
            tested,
            bool(record.get("samples_subsampled")),
            float(lat["median"]),
            float(lat["p90"]),
            float(lat["mean"]),
            float(lat["std"]),
        )

    def label(self) -> str:
        return f"#{self.id} {self.model}" if self.id is not None else self.model


@dataclass
class Comparison:
    """A verdict on two runs, with the evidence behind it."""

    a: RunSide
    b: RunSide
    change: float  # relative change of the median, B over A, minus 1 (+0.2 = 20 % slower)
    ci_low: float
    ci_high: float
    p90_change: float
    p_value: float
    alpha: float
    min_change: float
    significant: bool
    verdict: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        a, b = self.a, self.b
        rows = [
            [
                side.label(),
                side.target,
                side.count,
                _table.ms(side.median_ms),
                _table.ms(side.p90_ms),
                _table.ms(side.std_ms),
            ]
            for side in (a, b)
        ]
        lines = [
            _table.table(["run", "target", "runs", "median ms", "p90 ms", "std ms"], rows, align="llrrrr"),
            "",
            f"median {_table.ms(a.median_ms)} ms -> {_table.ms(b.median_ms)} ms: {self.verdict}",
            f"  change {self.change:+.1%} (95% bootstrap interval {self.ci_low:+.1%} .. {self.ci_high:+.1%}), "
            f"p90 {self.p90_change:+.1%}; Mann-Whitney U p = {_p(self.p_value)}",
            f"  significant only if p < {self.alpha:g} and the whole interval is beyond ±{self.min_change:.0%} "
            "(run-to-run noise; --min-change)",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _p(value: float) -> str:
    return "< 1e-300" if value < 1e-300 else f"{value:.2g}"


def _bootstrap_median_change(
    a: np.ndarray, b: np.ndarray, *, resamples: int, seed: int, chunk: int = 100
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        med_a = np.median(a[rng.integers(0, a.size, (n, a.size))], axis=1)
        med_b = np.median(b[rng.integers(0, b.size, (n, b.size))], axis=1)
        ratios.append(med_b / med_a - 1.0)
    values = np.concatenate(ratios)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def compare(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    alpha: float = 0.01,
    min_change: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare two stored profile records (``record`` JSON of ``edgeprof results``); A is the reference."""
    from scipy.stats import mannwhitneyu

    xa, xb = samples_of(a), samples_of(b)
    if xa.size < 5 or xb.size < 5:
        raise StoreError(
            f"runs with {xa.size} and {xb.size} samples are too few to compare", "profile with --runs 50 or more"
        )
    p_value = float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    change = float(np.median(xb) / np.median(xa) - 1.0)
    p90_change = float(np.percentile(xb, 90) / np.percentile(xa, 90) - 1.0)
    low, high = _bootstrap_median_change(xa, xb, resamples=resamples, seed=seed)
    beyond_noise = low > min_change or high < -min_change
    significant = p_value < alpha and beyond_noise
    if significant:
        ratio = np.median(xb) / np.median(xa)
        verdict = f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"
    else:
        verdict = NO_CHANGE
    notes = []
    for name, get in CONDITIONS:
        va, vb = get(a), get(b)
        if va != vb:
            notes.append(f"the runs differ in {name}: {va} vs {vb}")
    for side, record in (("A", a), ("B", b)):
        if record.get("throttled"):
            notes.append(f"run {side} was measured while the board throttled")
        if record.get("samples_subsampled"):
            notes.append(
                f"run {side} kept {len(record.get('samples_ms') or [])} of {record['latency_ms']['count']} samples "
                "(an even subset); the tests use those"
            )
    return Comparison(
        RunSide.of(a, int(xa.size)),
        RunSide.of(b, int(xb.size)),
        change,
        low,
        high,
        p90_change,
        p_value,
        alpha,
        min_change,
        significant,
        verdict,
        notes,
    )
