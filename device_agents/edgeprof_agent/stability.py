"""Is this measurement stable enough to trust? pyperf-style checks, computed on the board and kept with the run.

Each check keeps its figures; each one that fails adds a sentence to ``warnings`` that the host prints under the
summary as it is. The checks:

* percentiles: a percentile q of n samples has n x (1 - q/100) samples beyond it. Below one, it is interpolated
  between the slowest samples (p99 of 50 samples rests on the two slowest): it says how many it rests on.
* spread: the sample standard deviation over 10 % of the mean (pyperf's limit).
* outliers: samples above Q3 + 3 IQR (Tukey's "far out" fence); a warning when they are 1 % or more.
* timer: what one timed call of nothing costs on this board (the loop around ``invoke()`` with an empty callable,
  and two back-to-back ``perf_counter_ns`` reads); a warning when it is 1 % of the median or more.
* threads: the threads the interpreter really used (threads.py) against the number asked for.
* sampler: a power sampler or thermal watcher that ran inside the timed process (sidecar.py's fallback), or one
  that starts a process (``vcgencmd``) while the model's threads fill every CPU: the sibling then preempts an
  inference thread at each start, and the tail carries it (scripts/bench-agent, 2 threads on 2 CPUs with a Pi 5
  sensor at 10 Hz: median within 1 %, p99 +43-54 %; 1 thread: both within 2 %).
"""

import math

import numpy as np

SPREAD_LIMIT = 0.10
OUTLIER_FENCE_IQR = 3.0
OUTLIER_SHARE = 0.01
TIMER_SHARE = 0.01
PERCENTILES = (90, 95, 99)


def percentiles(count):
    out = {}
    for q in PERCENTILES:
        beyond = count * (1.0 - q / 100.0)
        rank = (count - 1) * q / 100.0  # linear interpolation between closest ranks (stats.py)
        out["p%d" % q] = {
            "samples_beyond": round(beyond, 3),
            "interpolated": beyond < 1.0,
            "rests_on_slowest": count - math.floor(rank),
            "samples_needed": math.ceil(100.0 / (100 - q)),
        }
    return out


def outliers(data, resolution_ms):
    q1, q3 = np.percentile(data, [25, 75])
    iqr = max(float(q3 - q1), resolution_ms)  # a coarse clock can make the IQR 0
    fence = float(q3) + OUTLIER_FENCE_IQR * iqr
    count = int(np.count_nonzero(data > fence))
    return {
        "rule": "above Q3 + 3 IQR",
        "fence_ms": fence,
        "count": count,
        "share": count / float(data.size),
        "max_ms": float(data.max()),
    }


def _ms(value):
    return "%.4g" % value


def _spawner(sampler):
    """What in the sibling sampler starts a process, and how often a second; None when nothing does."""
    energy = sampler.get("energy") or {}
    thermal = sampler.get("thermal") or {}
    if energy.get("spawns_process"):
        return "the power sensor %s" % energy.get("sensor"), energy.get("rate_hz") or energy.get("target_rate_hz")
    if thermal.get("spawns_process") and thermal.get("polls"):
        interval = thermal.get("interval_s")
        return "the throttle watch (vcgencmd get_throttled)", (1.0 / interval) if interval else None
    return None


def check(samples_ms, summary, timer, threads, sampler, cpus=None):
    """The ``stability`` record of a run (``cpus``: how many CPUs the process may run on)."""
    data = np.asarray(samples_ms, dtype=np.float64)
    count = int(data.size)
    warnings = []
    support = percentiles(count)
    for name, found in sorted(support.items()):
        if found["interpolated"]:
            warnings.append(
                "%s of %d samples is interpolated between the %d slowest: it needs %d samples to rest on one "
                "beyond it (raise --runs or --min-seconds)"
                % (name, count, found["rests_on_slowest"], found["samples_needed"])
            )
    mean, std = summary["mean"], summary["std"]
    spread = {"std_over_mean": (std / mean) if mean > 0 else None, "limit": SPREAD_LIMIT}
    if spread["std_over_mean"] is not None and spread["std_over_mean"] > SPREAD_LIMIT:
        warnings.append(
            "unstable: the standard deviation (%s ms) is %.0f %% of the mean (%s ms), over %.0f %% (stop other "
            "load, pin CPUs with --cpus, or measure longer)"
            % (_ms(std), 100 * spread["std_over_mean"], _ms(mean), 100 * SPREAD_LIMIT)
        )
    resolution_ms = (timer or {}).get("resolution_ns", 0.0) / 1e6
    far = outliers(data, resolution_ms)
    if far["count"] and far["share"] >= OUTLIER_SHARE:
        warnings.append(
            "%d outlier(s) (%.1f %%) above Q3 + 3 IQR = %s ms, the slowest %s ms (other load, throttling or "
            "page faults: see the samples)"
            % (far["count"], 100 * far["share"], _ms(far["fence_ms"]), _ms(far["max_ms"]))
        )
    timer = dict(timer or {})
    median = summary["median"]
    if timer.get("empty_call_ns") is not None and median > 0:
        timer["share_of_median"] = timer["empty_call_ns"] / 1e6 / median
        if timer["share_of_median"] >= TIMER_SHARE:
            warnings.append(
                "the timer costs %.3g us a call on this board, %.1f %% of the median: the model is too fast to time "
                "one call at a time" % (timer["empty_call_ns"] / 1e3, 100 * timer["share_of_median"])
            )
    if threads and threads.get("requested") and threads.get("used") and threads["used"] != threads["requested"]:
        warnings.append(
            "threads: %d requested, %d used (CPU time per thread during the measured loop)"
            % (threads["requested"], threads["used"])
        )
    if sampler and sampler.get("ran") and sampler.get("where") == "in-process":
        warnings.append(
            "the power sampler and thermal watcher ran inside the timed process (%s): their cost is in the figures"
            % sampler.get("reason", "fallback")
        )
    busy = (threads or {}).get("used") or (threads or {}).get("requested")
    if sampler and sampler.get("ran") and sampler.get("where") != "in-process" and cpus and busy and busy >= cpus:
        spawner = _spawner(sampler)
        if spawner is not None:
            what, rate = spawner
            warnings.append(
                "%d thread(s) ran the model on %d CPU(s) while %s started a process%s: with no CPU free, the slowest "
                "runs (p99) carry those starts; leave a CPU free (--threads %d) or measure latency with --energy off"
                % (busy, cpus, what, (" %.3g times a second" % rate) if rate else "", max(1, cpus - 1))
            )
    return {
        "stable": not warnings,
        "warnings": warnings,
        "samples": count,
        "percentiles": support,
        "spread": spread,
        "outliers": far,
        "timer": timer,
    }
