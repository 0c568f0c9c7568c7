"""Energy per inference from a slow meter's readings, with its uncertainty: the arithmetic, nothing else.

Windows (on the host's clock, each known to within the clock map's error): idle before the model loads, the
measured loop, and idle after it. A reading counts for a window only when the whole span it may describe lies
inside the window (sampler.py: ``[sent - 2 / rate, received]``, shrunk further by the clock's error), so the
edges, where power ramps and readings mix two states, never enter a mean. Each window gives the mean of its
readings and the standard error of that mean, with the effective count reduced when successive readings are
correlated (lag-1 autocorrelation, and the spread of 10 batch means, whichever is wider: the degrees of freedom
follow) and a floor of ``resolution / sqrt(12)`` when readings barely move off one step.

The idle baseline is the precision-weighted mean of the idle before and after the loop when the two agree (within
2 standard errors); when they do not, it is interpolated to the loop's centre (a linear drift cancels). A drift
larger than the noise (4 standard errors) adds ``|drift| / sqrt(12)`` to the uncertainty when it is small next to
the model's power, and makes the figure unavailable when it is not (more than ``DRIFT_SHARE`` of it). Then

    power above idle     dP = mean(loop) - idle baseline
    energy / inference   E  = dP x window / inferences     (window and inferences are exact: the agent counts them)

and the 95 % interval of E is Student's t (Welch-Satterthwaite degrees of freedom) times the combined standard
uncertainty of dP (loop, baseline, drift, the meter's stated calibration accuracy), scaled the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .sampler import Log

MIN_READINGS = 5  # fewer usable readings in a window than this: no figure
DRIFT_SIGMAS = 4.0  # a false alarm once in ~10,000 runs with white noise
DRIFT_SHARE = 0.2
BATCHES = 10  # batch means over windows of at least twice this many readings
POOL_SIGMAS = 2.0  # idles before and after within this many standard errors: one pooled baseline
CONFIDENCE = 0.95


@dataclass
class WindowStats:
    name: str
    start: float  # host clock
    end: float
    readings: int  # readings wholly inside the window
    mean_w: float | None = None
    sd_w: float | None = None
    se_w: float | None = None  # standard error of the mean
    n_eff: float | None = None
    distinct: int = 0

    @property
    def centre(self) -> float:
        return 0.5 * (self.start + self.end)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = self.seconds
        return out


def usable(log: Log, start: float, end: float, span_s: float, guard_s: float) -> np.ndarray:
    """Indexes of the readings whose possible span lies wholly in ``[start, end]`` shrunk by ``guard_s``."""
    sent = np.asarray(log.sent, dtype=float)
    received = np.asarray(log.received, dtype=float)
    inside = (sent - span_s >= start + guard_s) & (received <= end - guard_s)
    return np.nonzero(inside)[0]


def window_stats(name: str, log: Log, start: float, end: float, span_s: float, guard_s: float,
                 resolution_w: float) -> WindowStats:  # fmt: skip
    found = WindowStats(name, start, end, 0)
    idx = usable(log, start, end, span_s, guard_s)
    found.readings = int(idx.size)
    if idx.size == 0:
        return found
    x = np.asarray(log.watts, dtype=float)[idx]
    found.mean_w = float(x.mean())
    found.distinct = len(set(x.tolist()))
    if idx.size < 2:
        return found
    sd = float(x.std(ddof=1))
    n_eff = float(idx.size)
    if idx.size >= 4 and sd > 0:
        d = x - x.mean()
        r1 = float(np.dot(d[:-1], d[1:]) / np.dot(d, d))
        # Correlated readings (a load that wanders slower than the meter reads) carry less information than their
        # count says; white noise gives r1 around 0 +- 1/sqrt(n), which is no reason to widen the interval.
        if r1 > 2.0 / math.sqrt(idx.size):
            n_eff = max(2.0, idx.size * (1 - r1) / (1 + r1))
    se = sd / math.sqrt(n_eff)
    if idx.size >= 2 * BATCHES:
        # Batch means: a load that wanders over seconds (other work on the board) makes readings correlated well
        # beyond lag 1; the spread of the means of consecutive batches sees that, whatever the correlation's form.
        batches = np.array_split(x, BATCHES)
        se_batch = float(np.std([b.mean() for b in batches], ddof=1)) / math.sqrt(BATCHES)
        if se_batch > se:
            se, n_eff = se_batch, float(BATCHES)
    if resolution_w > 0 and (found.distinct <= 2 or sd < 0.25 * resolution_w):
        # Readings that barely leave one step do not average the rounding away (noise of a quarter step or
        # more dithers it: the rounding is then part of the spread of the readings).
        se = math.sqrt(se**2 + resolution_w**2 / 12.0)
    found.sd_w, found.se_w, found.n_eff = sd, se, n_eff
    return found


@dataclass
class Component:
    name: str
    u_w: float  # standard uncertainty of the power above idle, in W
    dof: float  # degrees of freedom (inf for type-B components)


@dataclass
class Estimate:
    """The figures of one metered run, or ``reason`` why there are none."""

    available: bool
    reason: str | None = None
    fix: str | None = None
    final: bool = False  # unavailable for a reason more readings cannot change (a plug that is off, a drift)
    idle: WindowStats | None = None
    run: WindowStats | None = None
    idle_after: WindowStats | None = None
    idle_w: float | None = None
    above_idle_w: float | None = None
    above_idle_w_u95: float | None = None
    mj_per_inference: float | None = None
    mj_per_inference_u95: float | None = None
    gross_mj_per_inference: float | None = None
    gross_mj_per_inference_u95: float | None = None
    relative_u95: float | None = None
    dof: float | None = None
    coverage_factor: float | None = None
    drift_w: float | None = None
    drift_u95_w: float | None = None
    components: list[Component] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _t_factor(dof: float) -> float:
    if not math.isfinite(dof) or dof > 1e6:
        return 1.959963984540054
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, max(dof, 1.0)))


def _too_few(stats: WindowStats, rate_hz: float, what: str) -> tuple[str, str]:
    return (
        f"too few meter readings: {stats.readings} usable in the {what} ({stats.seconds:.1f} s at {rate_hz:g} Hz; "
        f"a reading counts only when its whole span lies in the window), at least {MIN_READINGS} needed",
        "run longer (--max-seconds, --idle-seconds) or use a faster meter",
    )


def estimate(
    log: Log,
    windows: dict[str, tuple[float, float]],
    *,
    rate_hz: float,
    resolution_w: float,
    guard_s: float,
    inferences: int,
    window_s: float,
    accuracy_pct: float | None = None,
    assumed_after: WindowStats | None = None,
) -> Estimate:
    """Energy per inference from ``log`` over ``windows`` (host clock: ``idle``, ``measure``, ``idle_after``).

    ``window_s`` and ``inferences`` are the agent's (exact); ``guard_s`` the clock map's error bound. While the run
    is still going (to decide when to stop), ``assumed_after`` stands for the idle after it that is not read yet.
    """
    span = 2.0 / rate_hz
    stats = {
        name: window_stats(name, log, start, end, span, guard_s, resolution_w) for name, (start, end) in windows.items()
    }
    idle, run, after = stats.get("idle"), stats.get("measure"), stats.get("idle_after")
    out = Estimate(False, idle=idle, run=run, idle_after=after)
    everything = np.asarray(log.watts, dtype=float)
    if everything.size and not np.any(np.abs(everything) > max(resolution_w, 1e-9) / 2):
        off = any(r is False for r in log.relay_on)
        out.reason = (
            "the meter read 0 W throughout"
            + (" and says its relay is off (output: false)" if off else "")
            + ": the plug is switched off or the board is not plugged into it"
        )
        out.fix = "switch the plug on and plug the board into it, then profile again"
        out.final = True
        return out
    if run is None or run.readings < MIN_READINGS or run.se_w is None:
        out.reason, out.fix = _too_few(run or WindowStats("measure", 0, 0, 0), rate_hz, "measured loop")
        return out
    if idle is None or idle.readings < MIN_READINGS or idle.se_w is None:
        out.reason, out.fix = _too_few(idle or WindowStats("idle", 0, 0, 0), rate_hz, "idle before the load")
        return out
    live = assumed_after is not None
    if live and (after is None or after.readings < MIN_READINGS):
        after = assumed_after
    components: list[Component] = []
    if after is not None and after.readings >= MIN_READINGS and after.se_w is not None:
        drift = after.mean_w - idle.mean_w  # type: ignore[operator]
        se_drift = math.hypot(idle.se_w, after.se_w)
        out.drift_w, out.drift_u95_w = drift, 1.96 * se_drift
        if abs(drift) <= POOL_SIGMAS * se_drift:
            # The two idles agree: one baseline from both, each weighted by its precision (a long idle after
            # makes up for a short one before).
            w = idle.se_w**2 / (idle.se_w**2 + after.se_w**2) if idle.se_w + after.se_w > 0 else 0.5
        else:  # the baseline moved: take it where the loop ran, on the line between the two
            w = (run.centre - idle.centre) / (after.centre - idle.centre) if after.centre > idle.centre else 0.5
            w = min(max(w, 0.0), 1.0)
        idle_w = (1 - w) * idle.mean_w + w * after.mean_w  # type: ignore[operator]
        components.append(Component("idle before", (1 - w) * idle.se_w, (idle.n_eff or 2) - 1))
        components.append(Component("idle after", w * after.se_w, (after.n_eff or 2) - 1))
    else:
        idle_w = idle.mean_w
        components.append(Component("idle before", idle.se_w, (idle.n_eff or 2) - 1))
        drift, se_drift = None, None
        out.notes.append("no idle after the run: a drifting baseline could not be seen")
    assert idle_w is not None and run.mean_w is not None
    above = run.mean_w - idle_w
    components.insert(0, Component("measured loop", run.se_w, (run.n_eff or 2) - 1))
    if drift is not None and se_drift is not None and abs(drift) > DRIFT_SIGMAS * se_drift:
        if abs(drift) > DRIFT_SHARE * abs(above):
            out.reason = (
                f"the idle baseline drifted: {idle.mean_w:.3f} W before the run, {after.mean_w:.3f} W after "  # type: ignore[union-attr]
                f"({drift:+.3f} W, {abs(drift) / max(abs(above), 1e-12):.0%} of the {above:.3f} W the model adds)"
            )
            out.fix = "let the board settle (a longer --idle-seconds), keep other loads off it, and profile again"
            out.final = True
            return out
        components.append(Component("baseline drift", abs(drift) / math.sqrt(12.0), math.inf))
        out.notes.append(f"the idle baseline moved {drift:+.3f} W over the run (interpolated; counted in the interval)")
    if accuracy_pct:
        components.append(Component("meter calibration", abs(above) * accuracy_pct / 100.0 / math.sqrt(3.0), math.inf))
    u = math.sqrt(sum(c.u_w**2 for c in components))
    denominator = sum(c.u_w**4 / c.dof for c in components if c.u_w > 0 and math.isfinite(c.dof) and c.dof > 0)
    dof = (u**4 / denominator) if denominator > 0 else math.inf
    k = _t_factor(dof)
    per = window_s / max(inferences, 1) * 1000.0  # W -> mJ per inference
    out.available = True
    out.idle_w, out.above_idle_w, out.above_idle_w_u95 = idle_w, above, k * u
    out.mj_per_inference, out.mj_per_inference_u95 = above * per, k * u * per
    k_run = _t_factor((run.n_eff or 2) - 1)
    out.gross_mj_per_inference, out.gross_mj_per_inference_u95 = run.mean_w * per, k_run * run.se_w * per
    out.relative_u95 = (k * u / abs(above)) if above != 0 else math.inf
    out.dof, out.coverage_factor, out.components = dof, k, components
    return out


def counter_check(
    log: Log, start: float, end: float, rate_hz: float, guard_s: float, step_wh: float
) -> dict[str, Any] | None:
    """Mean power over the loop from the meter's own energy counter (Shelly ``aenergy.total``), when it has one:
    a check of the sampled mean that does not depend on sampling. None without counter readings in the window."""
    idx = [i for i in usable(log, start, end, 2.0 / rate_hz, guard_s) if log.counter_wh[i] is not None]
    if len(idx) < 2:
        return None
    first, last = idx[0], idx[-1]
    seconds = log.received[last] - log.received[first]
    if seconds <= 0:
        return None
    delta_wh = float(log.counter_wh[last]) - float(log.counter_wh[first])  # type: ignore[arg-type]
    mean_w = delta_wh * 3600.0 / seconds
    return {
        "mean_w": mean_w,
        "resolution_w": step_wh * 3600.0 / seconds,  # one step of the counter over the span
        "timing_w": abs(mean_w) * (2.0 / rate_hz) / seconds,  # each end's update time is known to one period
        "step_wh": step_wh,
        "seconds": seconds,
        "counter_wh": [float(log.counter_wh[first]), float(log.counter_wh[last])],  # type: ignore[arg-type]
    }
