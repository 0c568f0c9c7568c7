"""Energy per inference as every view reads it: the figure, its 95 % interval where it has one, and comparisons.

A run's energy is the typed record's ``Energy`` (``edgeprof_agent/record.py``): from a power sensor on the board
(the agent's figure: gross, no interval) or from a meter on the host (edgeprof.meters: above idle, with a 95 %
interval). ``compare``, ``check`` and the report all read it through :func:`figure_of`, so a figure with an interval
is judged with it: two runs differ only when the interval of their difference excludes zero, and a budget is met
only when the one-sided 95 % upper bound is within it. With several runs a side (``profile --repeat``: each process
metered on its own) the runs' figures are the sample: Student's t over them holds each run's noise and the
run-to-run noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from edgeprof_agent.record import METER, ProfileRecord

CONFIDENCE = 0.95


@dataclass(frozen=True)
class EnergyFigure:
    mj: float  # per inference
    u95: float | None  # half-width of the 95 % interval; None when the source gives none (board sensors)
    basis: str  # "above idle" or "gross"
    source: str  # "meter" or the board sensor's name
    dof: float | None = None

    def upper(self, confidence: float = CONFIDENCE) -> float:
        """One-sided upper bound (the figure itself when it has no interval)."""
        if self.u95 is None:
            return self.mj
        from scipy.stats import t

        dof = self.dof if self.dof and math.isfinite(self.dof) else 1e9
        standard = self.u95 / float(t.ppf(0.975, dof))
        return self.mj + float(t.ppf(confidence, dof)) * standard

    def text(self) -> str:
        from .views import mj_text

        return f"{mj_text(self.mj, self.u95)} mJ ({self.basis}, {self.source})"


def figure_of(record: ProfileRecord | dict[str, Any]) -> EnergyFigure | None:
    """The energy per inference of a run (a typed record, or a stored one), or None when none was measured."""
    rec = record if isinstance(record, ProfileRecord) else ProfileRecord.load(record)
    energy = rec.energy
    value = energy.mj() if energy is not None else None
    if energy is None or value is None:
        return None
    source = "meter" if energy.origin() == METER else str(energy.sensor or "sensor")
    return EnergyFigure(value, energy.u95(), energy.basis_text(), source, energy.dof)


@dataclass
class EnergyChange:
    """Energy per inference of B against A (each one run or several)."""

    a_mj: float
    b_mj: float
    a_u95: float | None
    b_u95: float | None
    change: float  # B / A - 1
    difference_mj: float
    difference_u95: float | None
    significant: bool | None  # None: no interval to judge by
    verdict: str
    basis: str
    a_runs: int = 1
    b_runs: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        from .views import mj_text

        def side(mj: float, u95: float | None, runs: int) -> str:
            return mj_text(mj, u95) + " mJ" + (f" (mean of {runs} runs)" if runs > 1 else "")

        interval = (
            f"; difference {self.difference_mj:+.3g} ± {self.difference_u95:.2g} mJ (95 %)"
            if self.difference_u95 is not None
            else ""
        )
        return (
            f"energy {side(self.a_mj, self.a_u95, self.a_runs)} -> {side(self.b_mj, self.b_u95, self.b_runs)} "
            f"per inference ({self.basis}): {self.verdict}{interval}"
        )


def _side(figures: list[EnergyFigure]) -> tuple[float, float | None]:
    """Mean figure of a side and its 95 % half-width: one run's own interval, or (several runs) Student's t over
    the runs' figures (their spread holds each run's noise and the run-to-run noise)."""
    if len(figures) == 1:
        return figures[0].mj, figures[0].u95
    from scipy.stats import t

    values = [f.mj for f in figures]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def compare_energy(runs_a: list[Any], runs_b: list[Any]) -> EnergyChange | None:
    """None unless every run on both sides measured energy on one basis."""
    a = [figure_of(r) for r in runs_a]
    b = [figure_of(r) for r in runs_b]
    if any(f is None for f in a + b):
        return None
    figures_a = [f for f in a if f is not None]
    figures_b = [f for f in b if f is not None]
    bases = {f.basis for f in figures_a + figures_b}
    if len(bases) > 1:
        return None
    a_mj, a_u = _side(figures_a)
    b_mj, b_u = _side(figures_b)
    change = b_mj / a_mj - 1.0 if a_mj else math.inf
    difference = b_mj - a_mj
    if a_u is None or b_u is None:
        u = None
        significant = None
        verdict = "not judged (a board sensor gives no interval: profile several runs a side to judge)"
    else:
        u = math.hypot(a_u, b_u)
        significant = abs(difference) > u
        if significant:
            ratio = b_mj / a_mj if a_mj else math.inf
            verdict = f"{ratio:.2f}x the energy ({change:+.1%})" if ratio > 1 else f"{ratio:.2f}x ({change:+.1%})"
        else:
            verdict = "no significant change in energy per inference"
    return EnergyChange(
        a_mj, b_mj, a_u, b_u, change, difference, u, significant, verdict, bases.pop(), len(figures_a), len(figures_b)
    )
