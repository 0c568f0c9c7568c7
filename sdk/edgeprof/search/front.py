"""Which trials are worth keeping: the Pareto front that takes noise into account, the λ-weighted optimum, the knee.

**Noise-aware dominance.** A trial dominates another only where the measurements can tell them apart: it is not
worse in any objective beyond the noise and better in at least one beyond it. For a figure measured on a board,
"beyond the noise" is ``edgeprof.compare``'s verdict on the two trials' ``--repeat`` groups: its process-level
test (Student's t over the logs of one figure per process: the run medians for the median latency, exactly what
``edgeprof results compare g:A g:B`` decides with; the runs' p90, peak RSS or energy for the others), significant
at p < 0.05 and beyond the noise band it derives (at least ``MIN_BAND``). Figures that do not vary from process to
process (the accuracy drop on the study's one test set, the file's gzip size, its MACs) are compared as measured.
A trial within noise of another on one figure and measurably better on another figure rules it out; two trials
within noise on everything are both kept. The plain front (every difference taken at face value) is given for
reference: it keeps a trial whose only advantage is a speed-up the measurements cannot resolve.

**λ-weighted optimum.** ``argmin(accuracy drop + λ · ratio)`` over the feasible trials, where the ratio is the
trial's primary efficiency figure over the float32 model's (0.6: 40 % faster, or smaller). λ is in accuracy points
per unit of ratio: λ = 10 trades 1 pp for 10 % of speed. :func:`lambda_curve` gives the optimum as λ sweeps, and
:func:`knee` the front's point of diminishing returns (the farthest below the chord between its two ends, axes
scaled to the front's range).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..compare import GROUP_ALPHA, MIN_BAND, SINGLE_RUN_BAND, process_test

#: The stored run column each noisy objective is tested on, one figure per process (as ``compare`` takes medians).
COLUMNS = {"median_ms": "median_ms", "p90_ms": "p90_ms", "peak_memory_mib": "peak_rss_kb", "energy_mj": "energy_mj"}
LAMBDAS = tuple(10 ** (e / 20) for e in range(-40, 61))  # 0.01 .. 1000, 20 a decade


@dataclass
class Point:
    """A complete trial as the front sees it."""

    number: int
    values: dict[str, float]  # objective name -> value (minimised)
    drop: float | None  # accuracy drop (pp, or % for error figures)
    ratio: float | None  # primary efficiency figure over the float32 model's
    feasible: bool = True
    groups: dict[str, int] = field(default_factory=dict)  # target -> the trial's group id


Runs = Callable[[int], list[dict[str, Any]]]  # group id -> its stored runs (rows with their record)


class Judge:
    """Decides, objective by objective, whether one trial is better than another beyond the noise."""

    def __init__(self, objectives: Sequence[Any], runs: Runs, alpha: float = GROUP_ALPHA) -> None:
        self.objectives = list(objectives)
        self._runs = runs
        self.alpha = alpha
        self._cache: dict[tuple[int, int, str], int] = {}

    def order(self, a: Point, b: Point, objective: Any) -> int:
        """-1: a is better, 1: a is worse, 0: the measurements cannot tell them apart."""
        key = (a.number, b.number, objective.name)
        if key not in self._cache:
            found = self._order(a, b, objective)
            self._cache[key] = found
            self._cache[(b.number, a.number, objective.name)] = -found
        return self._cache[key]

    def _order(self, a: Point, b: Point, objective: Any) -> int:
        va, vb = a.values[objective.name], b.values[objective.name]
        if not objective.kind.noisy:
            return 0 if math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12) else (-1 if va < vb else 1)
        ga, gb = a.groups.get(objective.target or ""), b.groups.get(objective.target or "")
        if ga is None or gb is None or ga == gb:
            return 0
        column = COLUMNS[objective.kind.key]
        xa = [float(r[column]) for r in self._runs(ga) if r.get(column)]
        xb = [float(r[column]) for r in self._runs(gb) if r.get(column)]
        if not xa or not xb:
            return 0
        # compare's process-level test, as `edgeprof results compare g:A g:B` runs it on two groups measured apart
        tested = process_test(xb, xa, paired=False, alpha=self.alpha)
        if tested is None:  # one run a side: no spread to test against, only the one-run band
            change = (sum(xa) / len(xa)) / (sum(xb) / len(xb)) - 1.0
            return 0 if abs(change) <= SINGLE_RUN_BAND else (-1 if change < 0 else 1)
        if tested.p_value < self.alpha and abs(tested.change) > max(MIN_BAND, tested.band):
            return -1 if tested.change < 0 else 1
        return 0

    def dominates(self, a: Point, b: Point) -> bool:
        better = False
        for objective in self.objectives:
            found = self.order(a, b, objective)
            if found > 0:
                return False
            better = better or found < 0
        return better


def front(points: Sequence[Point], judge: Judge) -> list[Point]:
    """The feasible trials that no feasible trial dominates beyond the noise (see the module's doc)."""
    candidates = [p for p in points if p.feasible]
    deterministic = [o for o in judge.objectives if not o.kind.noisy]

    def may_dominate(q: Point, p: Point) -> bool:  # cheap: worse on a figure without noise rules it out at once
        return all(q.values[o.name] <= p.values[o.name] + 1e-12 for o in deterministic)

    return [
        p for p in candidates
        if not any(judge.dominates(q, p) for q in candidates if q is not p and may_dominate(q, p))
    ]  # fmt: skip


def plain_front(points: Sequence[Point], objectives: Sequence[Any]) -> list[Point]:
    """Pareto front of the feasible points, every difference taken at face value."""
    names = [o.name for o in objectives]
    feasible = [p for p in points if p.feasible]

    def dominates(a: Point, b: Point) -> bool:
        pairs = [(a.values[n], b.values[n]) for n in names]
        return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)

    return [p for p in feasible if not any(dominates(q, p) for q in feasible if q is not p)]


def _scored(points: Sequence[Point]) -> list[Point]:
    return [p for p in points if p.feasible and p.drop is not None and p.ratio is not None]


def weighted_optimum(points: Sequence[Point], lam: float) -> Point | None:
    """``argmin(drop + λ · ratio)`` over the feasible trials (ties: the smaller drop)."""
    scored = _scored(points)
    if not scored:
        return None
    return min(scored, key=lambda p: (p.drop + lam * p.ratio, p.drop, p.number))  # type: ignore[operator]


def lambda_curve(points: Sequence[Point], lambdas: Sequence[float] = LAMBDAS) -> list[dict[str, Any]]:
    """The optimum as λ sweeps: one entry per stretch of λ with the same optimal trial."""
    curve: list[dict[str, Any]] = []
    for lam in lambdas:
        best = weighted_optimum(points, lam)
        if best is None:
            return []
        if curve and curve[-1]["trial"] == best.number:
            curve[-1]["to"] = lam
        else:
            if curve:  # where the two lines drop + λ·ratio cross: the exact λ at which the optimum changes
                before = curve[-1]
                switch = (best.drop - before["drop"]) / (before["ratio"] - best.ratio)  # type: ignore[operator]
                before["to"] = switch
                lam = switch
            curve.append({"from": lam, "to": lam, "trial": best.number, "drop": best.drop, "ratio": best.ratio})
    curve[-1]["to"] = lambdas[-1]
    return curve


def knee(points: Sequence[Point]) -> Point | None:
    """The front's knee: in (ratio, drop), both scaled to the front's range, the point farthest below the chord
    between the fastest and the most accurate ends (Kneedle's idea on a Pareto front). None under 3 points."""
    scored = _scored(points)
    if len(scored) < 3:
        return None
    fast = min(scored, key=lambda p: (p.ratio, p.drop))
    exact = min(scored, key=lambda p: (p.drop, p.ratio))
    r0, r1 = min(p.ratio for p in scored), max(p.ratio for p in scored)  # type: ignore[type-var]
    d0, d1 = min(p.drop for p in scored), max(p.drop for p in scored)  # type: ignore[type-var]
    if r1 - r0 <= 0 or d1 - d0 <= 0 or fast is exact:
        return None

    def xy(p: Point) -> tuple[float, float]:
        return (p.ratio - r0) / (r1 - r0), (p.drop - d0) / (d1 - d0)  # type: ignore[operator]

    (x1, y1), (x2, y2) = xy(fast), xy(exact)
    length = math.hypot(x2 - x1, y2 - y1)
    best, distance = None, 0.0
    for p in scored:
        x, y = xy(p)
        # signed distance below the chord (towards the origin: better on both axes)
        below = ((x2 - x1) * (y1 - y) - (x1 - x) * (y2 - y1)) / length
        if below > distance + 1e-12:
            best, distance = p, below
    return best


def hypervolume(values: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``values`` (all minimised) up to ``reference``: exact, by slicing (fine for the few
    objectives and hundreds of points of a search)."""
    pts = [tuple(v) for v in values if all(x < r for x, r in zip(v, reference, strict=True))]
    if not pts:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in pts)
    pts.sort(key=lambda p: p[0])
    volume = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][0] if i + 1 < len(pts) else reference[0]
        if upper <= p[0]:
            continue
        volume += (upper - p[0]) * hypervolume([q[1:] for q in pts[: i + 1]], reference[1:])
    return volume


__all__ = ["LAMBDAS", "Judge", "Point", "front", "hypervolume", "knee", "lambda_curve", "plain_front",
           "weighted_optimum"]  # fmt: skip
