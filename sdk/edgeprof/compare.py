"""Is B really faster or slower than A, or is the difference noise?

Like pyperf's ``compare_to``, a change is reported only when it is significant; otherwise the answer is
"no significant change".

**One run a side.** Two tests must agree, both over the raw latency samples: a Mann–Whitney U rank test (two-sided,
no assumption of normality: latency is skewed) at level ``alpha`` (0.01), and a bootstrap 95 % interval of the
relative change of the median that lies wholly outside a noise band ``±min_change``. The band exists because a
run's samples share that run's process: the same model measured in two processes differs by a few percent (address
space layout, page placement, clocks, other load; 5–12 % on this class of VM), which a rank test over thousands of
samples calls "significant". One run cannot measure that, so the band is 10 %, unless the runs belong to groups
(``profile --repeat``): then the band is the difference two single processes of those groups exceed with
probability ``alpha`` only (their run medians' pooled standard deviation, times sqrt 2, by Student's t).

**Several runs a side** (groups, ``compare(group_a_runs, group_b_runs)``): the process is the unit, as in pyperf.
Each run gives one figure, its median; the test is Student's t over the logarithms of the run medians, paired
round by round when the two groups were interleaved on one board (``profile a b --repeat N``: a board's drift hits
both runs of a round alike and cancels in their ratio), Welch's otherwise, at level ``alpha`` (0.05, pyperf's). The
change is the ratio of the geometric means of the run medians, with its 95 % t interval. The noise band is what the
test needs to call a change real: the change that reaches ``alpha`` given the spread between processes; a change
must also be at least 2 % (``MIN_BAND``). Pass ``min_change`` to set the band yourself instead.

Runs whose samples were subsampled by the agent (``samples_subsampled``: an even subset of very many runs, plus a
histogram of all of them) are compared on the kept subset, which preserves the distribution and its drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeprof_agent.record import NOT_RECORDED, ProfileRecord

from . import _table
from .errors import StoreError

NO_CHANGE = "no significant change"


def _threads_used(rec: ProfileRecord) -> Any:
    threads = rec.conditions.threads if rec.conditions is not None else None
    return (threads.used if threads is not None else None) or "unknown"


def _sampler(rec: ProfileRecord) -> str:
    """Where power sampling and thermal watching ran (the agent's conditions.sampler), in a few words."""
    sampler = rec.conditions.sampler if rec.conditions is not None else None
    return NOT_RECORDED if sampler is None else sampler.text()


# Each condition as a reader wants it written, from the typed record: never Python's None.
CONDITIONS: tuple[tuple[str, Callable[[ProfileRecord], Any]], ...] = (
    ("target", lambda r: r.target or "unknown"),
    ("board", lambda r: (r.device.hostname if r.device else None) or "unknown"),
    ("machine", lambda r: (r.device.machine if r.device else None) or "unknown"),
    ("runtime", lambda r: r.runtime.text() if r.runtime else "unknown"),
    ("delegate", lambda r: r.delegate or "unknown"),
    ("threads", lambda r: r.threads or "the runtime's default"),
    ("threads used", _threads_used),
    ("sampler", _sampler),
    ("inputs", lambda r: r.inputs or "unknown"),
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
GROUP_ALPHA = 0.05  # the process-level t test's level (pyperf's); the sample-level rank test keeps 0.01
SAMPLE_ALPHA = 0.01


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
    median_ms: float  # one run: its median; several: the median of the run medians
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
        else:  # several processes: each figure the median of the runs' (as the group summary shows them)
            median, p90, mean, std = (
                float(np.median([float(r["latency_ms"][k]) for r in records])) for k in ("median", "p90", "mean", "std")
            )
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
            [run_median(r, x) for r, x in zip(records, samples, strict=True)],
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
    test: str = "Mann-Whitney U"  # or "paired t over N rounds", "Welch t over run medians"
    paired: bool = False
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
        ]
        if self.test == "Mann-Whitney U":
            lines += [
                f"  change {self.change:+.1%} (95% bootstrap interval {self.ci_low:+.1%} .. {self.ci_high:+.1%}), "
                f"p90 {self.p90_change:+.1%}; Mann-Whitney U p = {_p(self.p_value)}",
                f"  significant only if p < {self.alpha:g} and the whole interval is beyond ±{self.min_change:.1%} "
                f"({self.band_from})",
            ]
        else:
            lines += [
                f"  change of the run medians {self.change:+.1%} (95% interval {self.ci_low:+.1%} .. "
                f"{self.ci_high:+.1%}), p90 {self.p90_change:+.1%}; {self.test} p = {_p(self.p_value)}",
                f"  significant only if p < {self.alpha:g} and the change is beyond ±{self.min_change:.1%} "
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


def run_median(record: dict[str, Any], samples: np.ndarray) -> float:
    """A run's median: the agent's, from every inference; the kept samples' for a record without one."""
    value = (record.get("latency_ms") or {}).get("median")
    return float(value) if value is not None else float(np.median(samples))


@dataclass(frozen=True)
class ProcessTest:
    """Student's t over the logarithms of run medians: one figure per process."""

    change: float
    ci_low: float
    ci_high: float
    p_value: float
    band: float  # the smallest change this test calls significant at its level
    df: float
    paired: bool
    name: str


def process_test(
    medians_a: Sequence[float], medians_b: Sequence[float], *, paired: bool, alpha: float
) -> ProcessTest | None:
    """The change of B over A at the process level, or None when a side has fewer than 2 runs."""
    from scipy.stats import t

    la, lb = np.log(np.asarray(medians_a, float)), np.log(np.asarray(medians_b, float))
    if la.size < 2 or lb.size < 2 or (paired and la.size != lb.size):
        return None
    if paired:
        diffs = lb - la
        d, se, df = float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(diffs.size)), diffs.size - 1.0
        name = f"paired t over {diffs.size} rounds"
    else:
        va, vb = la.var(ddof=1) / la.size, lb.var(ddof=1) / lb.size
        d, se = float(lb.mean() - la.mean()), float(np.sqrt(va + vb))
        denominator = (va**2 / (la.size - 1) + vb**2 / (lb.size - 1)) or 1.0
        df = float((va + vb) ** 2 / denominator) if va + vb > 0 else float(la.size + lb.size - 2)
        name = "Welch t over run medians"
    p_value = (1.0 if d == 0 else 0.0) if se == 0 else float(2 * t.sf(abs(d) / se, df))
    half95 = float(t.ppf(0.975, df)) * se
    return ProcessTest(
        change=float(np.expm1(d)),
        ci_low=float(np.expm1(d - half95)),
        ci_high=float(np.expm1(d + half95)),
        p_value=p_value,
        band=float(np.expm1(float(t.ppf(1 - alpha / 2, df)) * se)),
        df=df,
        paired=paired,
        name=name,
    )


def single_process_band(medians_a: Sequence[float], medians_b: Sequence[float], alpha: float) -> float | None:
    """How far two single runs of these groups differ by process alone, but with probability ``alpha`` (Student's t
    over the pooled spread of the groups' log run medians, times sqrt 2 for a difference): None if unknown."""
    from scipy.stats import t

    la, lb = np.log(np.asarray(medians_a, float)), np.log(np.asarray(medians_b, float))
    df = la.size + lb.size - 2
    if la.size < 2 or lb.size < 2:
        return None
    pooled = np.sqrt(((la.size - 1) * la.var(ddof=1) + (lb.size - 1) * lb.var(ddof=1)) / df)
    return float(np.expm1(float(t.ppf(1 - alpha / 2, df)) * pooled * np.sqrt(2)))


def compare(
    a: dict[str, Any] | Sequence[dict[str, Any]],
    b: dict[str, Any] | Sequence[dict[str, Any]],
    *,
    alpha: float | None = None,
    min_change: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
    paired: bool | None = None,
    noise: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Comparison:
    """Compare stored profile records (the ``record`` JSON of ``edgeprof results``); A is the reference.

    ``a`` and ``b`` are one record each, or a list of records each (the runs of a group: one process each).
    ``paired`` (several runs a side): pair the runs round by round; by default they are paired when both sides
    are runs of groups interleaved in one batch, with the same rounds. ``noise`` (one run a side): the run medians
    of the groups the two runs belong to, for the noise band. ``alpha`` defaults to 0.01 for one run a side and
    0.05 for several.
    """
    from scipy.stats import mannwhitneyu

    runs_a = [a] if isinstance(a, dict) else list(a)
    runs_b = [b] if isinstance(b, dict) else list(b)
    if not runs_a or not runs_b:
        raise StoreError("compare needs at least one run on each side", "pass run ids, e.g. 3 4, or groups: g:1 g:2")
    for side, runs in (("A", runs_a), ("B", runs_b)):
        _one_thing(side, runs)
    samples_a, samples_b = [samples_of(r) for r in runs_a], [samples_of(r) for r in runs_b]
    xa, xb = np.concatenate(samples_a), np.concatenate(samples_b)
    if min(x.size for x in samples_a + samples_b) < 5:
        raise StoreError("a run with fewer than 5 samples is too small to compare", "profile with --runs 50 or more")
    side_a, side_b = RunSide.of(runs_a, samples_a), RunSide.of(runs_b, samples_b)
    several = len(runs_a) > 1 and len(runs_b) > 1
    if len(runs_a) > 1 or len(runs_b) > 1:
        p90_change = side_b.p90_ms / side_a.p90_ms - 1.0
    else:
        p90_change = float(np.percentile(xb, 90) / np.percentile(xa, 90) - 1.0)
    if paired is None:
        paired = several and interleaved(runs_a, runs_b)
    level = alpha if alpha is not None else (GROUP_ALPHA if several else SAMPLE_ALPHA)
    tested = process_test(side_a.run_medians_ms, side_b.run_medians_ms, paired=paired, alpha=level) if several else None
    if tested is not None:
        change, low, high, p_value = tested.change, tested.ci_low, tested.ci_high, tested.p_value
        test, paired = tested.name, tested.paired
        if min_change is not None:
            band, band_from = min_change, "--min-change"
        else:
            band = max(MIN_BAND, tested.band)
            band_from = (
                f"process-to-process noise of {len(runs_a)}+{len(runs_b)} runs"
                + (", paired by round" if paired else "")
                + f": the smallest change with p < {level:g}, at least {MIN_BAND:.0%}"
            )
        beyond_noise = abs(change) > band
    else:
        test, paired = "Mann-Whitney U", False
        p_value = float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
        change = float(np.median(xb) / np.median(xa) - 1.0)
        if len(runs_a) > 1 or len(runs_b) > 1:
            cap = max(500, 20000 // max(len(runs_a), len(runs_b)))
            boot_a, boot_b = [_thin(x, cap) for x in samples_a], [_thin(x, cap) for x in samples_b]
            low, high = _bootstrap_median_change(boot_a, boot_b, resamples=min(resamples, 1000), seed=seed)
        else:
            low, high = _bootstrap_median_change(samples_a, samples_b, resamples=resamples, seed=seed)
        from_groups = single_process_band(*noise, alpha=level) if noise is not None else None
        if min_change is not None:
            band, band_from = min_change, "--min-change"
        elif from_groups is not None:
            band = max(MIN_BAND, from_groups)
            band_from = (
                f"what two single processes differ by within their groups ({len(noise[0])}+{len(noise[1])} runs), "
                f"at least {MIN_BAND:.0%}"
                if noise is not None
                else ""
            )
        else:
            band = SINGLE_RUN_BAND
            band_from = "run-to-run noise with one run a side; compare groups (profile --repeat), or --min-change"
        beyond_noise = low > band or high < -band
    significant = p_value < level and beyond_noise
    if significant:
        ratio = 1.0 + change
        verdict = f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"
    else:
        verdict = NO_CHANGE
    from .energy import compare_energy

    energy = compare_energy(runs_a, runs_b)
    return Comparison(
        side_a,
        side_b,
        change,
        low,
        high,
        p90_change,
        p_value,
        level,
        band,
        band_from,
        significant,
        verdict,
        _notes(runs_a, runs_b),
        test,
        paired,
        energy.to_dict() if energy is not None else None,
    )


def interleaved(runs_a: Sequence[dict[str, Any]], runs_b: Sequence[dict[str, Any]]) -> bool:
    """Were the two sides measured round by round in one batch (``profile a b --repeat N``), with the same rounds?"""
    groups_a = [r.get("group") or {} for r in runs_a]
    groups_b = [r.get("group") or {} for r in runs_b]
    batches = {g.get("batch") for g in groups_a + groups_b}
    if len(batches) != 1 or None in batches:
        return False
    return [g.get("index") for g in groups_a] == [g.get("index") for g in groups_b]


def _notes(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]]) -> list[str]:
    """Conditions that differ between the runs, and the caveats of each run (as every view prints them)."""
    notes = []
    everything = [ProfileRecord.load(r) for r in runs_a + runs_b]
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
            for caveat in ProfileRecord.load(record).caveats():
                notes.append(f"run {label}: {caveat}")
            if record.get("samples_subsampled"):
                notes.append(
                    f"run {label} kept {len(record.get('samples_ms') or [])} of {record['latency_ms']['count']} "
                    "samples (an even subset); the tests use those"
                )
    return notes
