"""Is B really faster or slower than A, or is the difference noise?

Like pyperf's ``compare_to``, a change is reported only when it is significant; otherwise the answer is
"no significant change". Two tests must agree, both over the raw latency samples:

* a Mann–Whitney U rank test (two-sided, no assumption of normality: latency is skewed) at level ``alpha``, and
* a bootstrap 95 % interval of the relative change of the median that lies wholly outside ``±min_change``.

The second condition exists because a run's samples share that run's conditions: the same model measured in two
processes differs by a few percent (memory layout, caches, other load; FIELD-NOTES saw 5–12 % on this class of VM,
and 8 % was seen here while other jobs loaded the machine), and a rank test over thousands of samples calls such a
difference "significant". One run a side cannot measure that run-to-run noise, so the band defaults to 10 %. With
several runs a side (``compare([a1, a2, a3], [b1, b2, b3])``) the noise is measured instead: the bootstrap
resamples runs and then samples within them, and the band defaults to the spread of the run medians within a side
(at least 2 %). Pass ``min_change`` to set the band yourself, e.g. lower on a quiet board with pinned CPUs.

Runs whose samples were subsampled by the agent (``samples_subsampled``: an even subset of very many runs, plus a
histogram of all of them) are compared on the kept subset, which preserves the distribution and its drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import _table
from .errors import StoreError

NO_CHANGE = "no significant change"


def _sampler(record: dict[str, Any]) -> str:
    """Where power sampling and thermal watching ran (the agent's conditions.sampler), in a few words."""
    found = (record.get("conditions") or {}).get("sampler")
    if found is None:
        return "not recorded"
    if not found.get("ran"):
        return "none"
    energy = found.get("energy") or {}
    return str(found.get("where")) + (f", {energy['sensor']} at {energy['target_rate_hz']:g} Hz" if energy else "")


# Each condition as a reader wants it written: never Python's None.
CONDITIONS = (
    ("target", lambda r: r.get("target") or "unknown"),
    ("board", lambda r: (r.get("device") or {}).get("hostname") or "unknown"),
    ("machine", lambda r: (r.get("device") or {}).get("machine") or "unknown"),
    (
        "runtime",
        lambda r: (
            " ".join(str(v) for v in ((r.get("runtime") or {}).get(k) for k in ("name", "version")) if v) or "unknown"
        ),
    ),
    ("delegate", lambda r: r.get("delegate") or "unknown"),
    ("threads", lambda r: r.get("threads") or "the runtime's default"),
    ("threads used", lambda r: ((r.get("conditions") or {}).get("threads") or {}).get("used") or "unknown"),
    ("sampler", _sampler),
    ("inputs", lambda r: r.get("inputs") or "unknown"),
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


SINGLE_RUN_BAND = 0.10
MIN_BAND = 0.02


@dataclass
class RunSide:
    """One side of a comparison: one run or several runs of the same thing, pooled."""

    ids: list[int | None]
    model: str
    sha256: str
    target: str
    count: int  # inferences measured, over all runs
    tested: int  # samples the tests used
    subsampled: bool
    median_ms: float  # of the pooled samples
    p90_ms: float
    mean_ms: float
    std_ms: float
    run_medians_ms: list[float]

    @classmethod
    def of(cls, records: list[dict[str, Any]], samples: list[np.ndarray]) -> RunSide:
        pooled = np.concatenate(samples)
        models = sorted({r.get("label") or (r.get("model") or {}).get("name", "?") for r in records})
        first = records[0]
        if len(records) == 1:  # one run: its exact statistics, computed by the agent from every inference
            lat = first["latency_ms"]
            median, p90, mean, std = (float(lat[k]) for k in ("median", "p90", "mean", "std"))
        else:
            median, p90 = (float(v) for v in np.percentile(pooled, [50, 90]))
            mean, std = float(pooled.mean()), float(pooled.std(ddof=1))
        return cls(
            [r.get("id") for r in records],
            ", ".join(models),
            (first.get("model") or {}).get("sha256", ""),
            ", ".join(sorted({str(r.get("target", "?")) for r in records})),
            int(sum(r["latency_ms"]["count"] for r in records)),
            int(pooled.size),
            any(bool(r.get("samples_subsampled")) for r in records),
            median,
            p90,
            mean,
            std,
            [float(np.median(x)) for x in samples],
        )

    def label(self) -> str:
        ids = ",".join(f"#{i}" for i in self.ids if i is not None)
        return f"{ids} {self.model}".strip()


@dataclass
class Comparison:
    """A verdict on two runs (or two groups of runs), with the evidence behind it."""

    a: RunSide
    b: RunSide
    change: float  # relative change of the median, B over A, minus 1 (+0.2 = 20 % slower)
    ci_low: float
    ci_high: float
    p90_change: float
    p_value: float
    alpha: float
    min_change: float
    band_from: str  # why the noise band is what it is
    significant: bool
    verdict: str
    notes: list[str] = field(default_factory=list)
    energy: dict[str, Any] | None = None  # energy per inference of B against A (energy.compare_energy)

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
            _table.table(["run", "target", "inferences", "median ms", "p90 ms", "std ms"], rows, align="llrrrr"),
            "",
            f"median {_table.ms(a.median_ms)} ms -> {_table.ms(b.median_ms)} ms: {self.verdict}",
            f"  change {self.change:+.1%} (95% bootstrap interval {self.ci_low:+.1%} .. {self.ci_high:+.1%}), "
            f"p90 {self.p90_change:+.1%}; Mann-Whitney U p = {_p(self.p_value)}",
            f"  significant only if p < {self.alpha:g} and the whole interval is beyond ±{self.min_change:.1%} "
            f"({self.band_from})",
        ]
        if self.energy is not None:
            from .energy import EnergyChange

            lines.append(EnergyChange(**self.energy).text())
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _one_thing(side: str, runs: list[dict[str, Any]]) -> None:
    """Runs pooled on one side must be repeats of one model on one target; anything else would be averaged away."""
    for what, key in (
        ("models", lambda r: (r.get("model") or {}).get("sha256")),
        ("targets", lambda r: r.get("target")),
    ):
        if len({key(r) for r in runs}) > 1:
            ids = ",".join(str(r.get("id", "?")) for r in runs)
            shown = "; ".join(
                f"#{r.get('id', '?')} {r.get('label') or (r.get('model') or {}).get('name', '?')} "
                f"({(r.get('model') or {}).get('sha256', '')[:12]}) on {r.get('target')}"
                for r in runs
            )
            raise StoreError(
                f"side {side} ({ids}) mixes different {what}: {shown}",
                "a side holds repeated runs of one model on one target; compare the others side by side, e.g. "
                f"'edgeprof results compare {runs[0].get('id', 'A')} {runs[-1].get('id', 'B')}'",
            )


def _p(value: float) -> str:
    return "< 1e-300" if value < 1e-300 else f"{value:.2g}"


def _bootstrap_median_change(
    a: list[np.ndarray], b: list[np.ndarray], *, resamples: int, seed: int, chunk: int = 50
) -> tuple[float, float]:
    """95 % interval of median(B) / median(A) − 1. With several runs a side, runs are resampled first, then samples
    within each chosen run (a two-level bootstrap), so that run-to-run differences widen the interval."""
    rng = np.random.default_rng(seed)

    def medians(runs: list[np.ndarray], n: int) -> np.ndarray:
        if len(runs) == 1:
            x = runs[0]
            return np.median(x[rng.integers(0, x.size, (n, x.size))], axis=1)
        out = np.empty(n)
        for i in range(n):
            chosen = rng.integers(0, len(runs), len(runs))
            out[i] = np.median(np.concatenate([runs[j][rng.integers(0, runs[j].size, runs[j].size)] for j in chosen]))
        return out

    ratios = []
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        ratios.append(medians(b, n) / medians(a, n) - 1.0)
    low, high = np.percentile(np.concatenate(ratios), [2.5, 97.5])
    return float(low), float(high)


def _thin(x: np.ndarray, cap: int) -> np.ndarray:
    """An even stride of at most ``cap`` samples (keeps drift), so that many runs a side stay quick to resample."""
    return x if x.size <= cap else x[np.linspace(0, x.size - 1, cap).astype(int)]


def compare(
    a: dict[str, Any] | Sequence[dict[str, Any]],
    b: dict[str, Any] | Sequence[dict[str, Any]],
    *,
    alpha: float = 0.01,
    min_change: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare stored profile records (the ``record`` JSON of ``edgeprof results``); A is the reference.

    ``a`` and ``b`` are one record each, or a list of records each (repeated runs of the same thing).
    """
    from scipy.stats import mannwhitneyu

    runs_a = [a] if isinstance(a, dict) else list(a)
    runs_b = [b] if isinstance(b, dict) else list(b)
    if not runs_a or not runs_b:
        raise StoreError("compare needs at least one run on each side", "pass run ids, e.g. 3 4 or 3,5,7 4,6,8")
    for side, runs in (("A", runs_a), ("B", runs_b)):
        _one_thing(side, runs)
    samples_a, samples_b = [samples_of(r) for r in runs_a], [samples_of(r) for r in runs_b]
    xa, xb = np.concatenate(samples_a), np.concatenate(samples_b)
    if min(x.size for x in samples_a + samples_b) < 5:
        raise StoreError("a run with fewer than 5 samples is too small to compare", "profile with --runs 50 or more")
    p_value = float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    change = float(np.median(xb) / np.median(xa) - 1.0)
    p90_change = float(np.percentile(xb, 90) / np.percentile(xa, 90) - 1.0)
    several = len(runs_a) > 1 or len(runs_b) > 1
    if several:
        cap = max(500, 20000 // max(len(runs_a), len(runs_b)))
        boot_a, boot_b = [_thin(x, cap) for x in samples_a], [_thin(x, cap) for x in samples_b]
        low, high = _bootstrap_median_change(boot_a, boot_b, resamples=min(resamples, 1000), seed=seed)
    else:
        low, high = _bootstrap_median_change(samples_a, samples_b, resamples=resamples, seed=seed)
    if min_change is not None:
        band, band_from = min_change, "--min-change"
    elif len(runs_a) > 1 and len(runs_b) > 1:
        spread = max(
            max(m) / min(m) - 1.0
            for m in ([float(np.median(x)) for x in samples_a], [float(np.median(x)) for x in samples_b])
        )
        band = max(MIN_BAND, spread)
        band_from = f"the spread of run medians within a side, at least {MIN_BAND:.0%}"
    else:
        band = SINGLE_RUN_BAND
        band_from = "run-to-run noise with one run a side; give several runs a side, or --min-change"
    beyond_noise = low > band or high < -band
    significant = p_value < alpha and beyond_noise
    if significant:
        ratio = np.median(xb) / np.median(xa)
        verdict = f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"
    else:
        verdict = NO_CHANGE
    notes = []
    everything = runs_a + runs_b
    for name, get in CONDITIONS:
        values = [get(r) for r in everything]
        if len(set(map(str, values))) > 1:
            if len(everything) == 2:
                notes.append(f"the runs differ in {name}: {values[0]} vs {values[1]}")
            else:
                notes.append(f"the runs differ in {name}: {', '.join(sorted(set(map(str, values))))}")
    for side, runs in (("A", runs_a), ("B", runs_b)):
        for record in runs:
            label = side if len(runs) == 1 else f"{side} #{record.get('id', '?')}"
            if record.get("throttled"):
                notes.append(f"run {label} was measured while the board throttled")
            if record.get("samples_subsampled"):
                notes.append(
                    f"run {label} kept {len(record.get('samples_ms') or [])} of {record['latency_ms']['count']} "
                    "samples (an even subset); the tests use those"
                )
    from .energy import compare_energy

    energy = compare_energy(runs_a, runs_b)
    return Comparison(
        RunSide.of(runs_a, samples_a),
        RunSide.of(runs_b, samples_b),
        change,
        low,
        high,
        p90_change,
        p_value,
        alpha,
        band,
        band_from,
        significant,
        verdict,
        notes,
        energy.to_dict() if energy is not None else None,
    )
