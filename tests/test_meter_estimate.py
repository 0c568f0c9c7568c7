"""The estimator's arithmetic on a simulated slow meter (this machine has no plug): a known step of power, a meter that
averages each period, adds noise and rounds to its step, read by a poller whose phase and latency vary. The 95 %
interval must hold the true energy per inference about 95 times in 100; the clock map must invert what it maps."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprof.meters import MeterConfig
from edgeprof.meters.clock import ClockMap, Exchange
from edgeprof.meters.estimate import MIN_READINGS, estimate
from edgeprof.meters.sampler import Log
from edgeprof.meters.session import planned_idle_seconds


def simulate(rng, *, rate, idle_w, above_w, noise, step, idle_s, run_s, after_s, drift_w_per_s=0.0):
    """Readings of a plug around idle -> run -> idle; returns (log, windows)."""
    period = 1.0 / rate
    t0, run0 = 0.0, idle_s + 1.0  # one second of load + warm-up between idle and the loop, at the loop's power
    run1 = run0 + run_s
    end = run1 + after_s
    phase = rng.uniform(0, period)

    def true_mean(a, b):  # mean power over [a, b]
        busy = max(0.0, min(b, run1) - max(a, idle_s)) / (b - a)
        mid = 0.5 * (a + b)
        return idle_w + drift_w_per_s * mid + above_w * busy

    updates = np.arange(phase, end + period, period)
    values = [true_mean(u - period, u) + rng.normal(0, noise) for u in updates]
    if step:
        values = [round(v / step) * step for v in values]
    log = Log()
    t = rng.uniform(0, period)
    while t < end:
        latency = rng.uniform(0.005, 0.03)
        arrive = t + latency / 2
        i = int(np.searchsorted(updates, arrive, side="right")) - 1
        if i >= 0:
            from edgeprof.meters.base import Reading

            log.add(t, t + latency, Reading(watts=float(values[i])))
        t += period
    return log, {"idle": (t0, idle_s), "measure": (run0, run1), "idle_after": (run1, end)}


@pytest.mark.parametrize("rate, above_w", [(1.0, 1.5), (1.0, 0.15), (10.0, 1.5), (10.0, 0.15)])
def test_the_95_percent_interval_holds_the_truth_about_95_times_in_100(rate: float, above_w: float) -> None:
    """1 Hz and 10 Hz meters; 1.5 W above idle (a model running back to back) and 0.15 W (10 % duty cycle)."""
    rng = np.random.default_rng(7)
    hits, widths = 0, []
    trials = 200
    inferences, run_s = 4000, 40.0 if rate == 1.0 else 8.0
    for _ in range(trials):
        log, windows = simulate(
            rng,
            rate=rate,
            idle_w=3.0,
            above_w=above_w,
            noise=0.05,
            step=0.1,
            idle_s=15.0 / rate if rate > 1 else 15.0,
            run_s=run_s,
            after_s=15.0 if rate == 1 else 3,
        )
        found = estimate(
            log, windows, rate_hz=rate, resolution_w=0.1, guard_s=0.001, inferences=inferences, window_s=run_s
        )
        assert found.available, found.reason
        truth = above_w * run_s / inferences * 1000.0
        hits += abs(found.mj_per_inference - truth) <= found.mj_per_inference_u95
        widths.append(found.relative_u95)
    assert 0.91 <= hits / trials <= 0.995, hits / trials  # 95 % within the binomial spread of 200 trials
    assert np.median(widths) < 0.5


def test_a_quiet_meter_that_rounds_to_whole_watts_still_covers_the_truth() -> None:
    """Tasmota's default WattRes 0: 1 W steps, no noise to dither them; the interval falls back on the step."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(100):
        log, windows = simulate(
            rng, rate=1.0, idle_w=3.2, above_w=1.7, noise=0.0, step=1.0, idle_s=15, run_s=30, after_s=15
        )
        found = estimate(log, windows, rate_hz=1.0, resolution_w=1.0, guard_s=0.001, inferences=300, window_s=30)
        hits += abs(found.mj_per_inference - 1.7 * 30 / 300 * 1000) <= found.mj_per_inference_u95
    assert hits >= 95


def test_a_drifting_baseline_is_refused_and_a_short_window_is_too_few() -> None:
    rng = np.random.default_rng(1)
    log, windows = simulate(
        rng,
        rate=1.0,
        idle_w=3.0,
        above_w=0.5,
        noise=0.02,
        step=0.01,
        idle_s=15,
        run_s=20,
        after_s=15,
        drift_w_per_s=0.02,
    )
    found = estimate(log, windows, rate_hz=1.0, resolution_w=0.01, guard_s=0.001, inferences=100, window_s=20)
    assert not found.available and found.final and "the idle baseline drifted" in found.reason
    windows["measure"] = (windows["measure"][0], windows["measure"][0] + 5.5)
    found = estimate(log, windows, rate_hz=1.0, resolution_w=0.01, guard_s=0.001, inferences=100, window_s=5.5)
    assert not found.available and f"at least {MIN_READINGS} needed" in found.reason and "--max-seconds" in found.fix


def test_planned_idle_gives_the_readings_it_plans_for() -> None:
    rng = np.random.default_rng(5)
    config = MeterConfig(kind="shelly", address="x", rate_hz=1.0)
    idle_s = planned_idle_seconds(config)
    log, windows = simulate(
        rng, rate=1.0, idle_w=3, above_w=1, noise=0.05, step=0.1, idle_s=idle_s, run_s=20, after_s=idle_s
    )
    found = estimate(log, windows, rate_hz=1.0, resolution_w=0.1, guard_s=0.05, inferences=100, window_s=20)
    assert found.idle is not None and found.idle.readings >= 9


def test_clock_map_follows_a_drifting_board_clock() -> None:
    # The board's clock runs 50 ppm fast and started 1000 s later than the host's.
    def board(host: float) -> float:
        return 1000.0 + host * (1 + 50e-6)

    first = Exchange(10.0, 10.002, board(10.001))
    last = Exchange(110.0, 110.004, board(110.002))
    clock = ClockMap.fit(first, last)
    assert clock.drift_ppm == pytest.approx(50, abs=0.5) and clock.error_s == pytest.approx(0.002)
    for host in (10.0, 60.0, 110.0):
        assert clock.to_host(board(host)) == pytest.approx(host, abs=clock.error_s)
    jumped = ClockMap.fit(first, Exchange(110.0, 110.004, board(110.002) + 0.5))  # the board slept: not a drift
    assert jumped.drift_ppm == 0 and jumped.error_s > 0.25
