"""The timed loop, benchmark_model-style.

A warm-up of at least N runs and at least S seconds, then measured runs: at least N and at least S seconds, at most
a maximum duration. Each sample is one ``invoke()`` between two ``perf_counter`` reads and nothing else; inputs are
set once before the loop, as benchmark_model does. An optional pause between runs gives a duty cycle (a camera at
10 fps leaves the SoC idle between frames, which changes clocks, temperature and energy per inference), and a duty
cycle does the same in proportion to each run's own length.
"""

import array
import os
import time

from .protocol import BAD_REQUEST, AgentError


def timed_loop(
    invoke,
    min_runs,
    min_seconds,
    max_seconds,
    pause_s=0.0,
    keep=True,
    tick=None,
    tick_every=0.5,
    duty=None,
    hold=None,
):
    """``(samples_ms, started, ended)``; ``started``/``ended`` are perf_counter values bounding the loop.

    Samples go into an ``array('d')`` (8 bytes each, not a 32-byte Python float in a list), so that a fast model's
    millions of samples barely move the peak RSS we report. With ``keep=False`` (the warm-up) only the count and
    the sum are kept: ``samples_ms`` is then ``(count, total_ms)``. ``tick(runs, seconds)`` is called every
    ``tick_every`` seconds, between two runs and outside the timed region, so the host can show progress and tell
    a long measurement from a hung agent.

    ``duty`` (0 < duty <= 1) sleeps after each run for as long as keeps the model busy that share of the time
    (a run of 5 ms at 0.1 sleeps 45 ms), whatever each run took. With a pause or a duty cycle the loop ends after
    the last run's pause, so the window holds whole periods (energy per inference = mean power x window / runs).
    ``hold()`` (asked at each tick) keeps the loop running past its minimum until it returns True or the maximum
    is reached: a power meter on the host decides when it has read enough.
    """
    clock = time.perf_counter
    sleep = time.sleep
    samples = array.array("d")
    append = samples.append
    count = 0
    total = 0.0
    released = hold is None
    started = clock()
    next_tick = started + tick_every if (tick is not None or hold is not None) else float("inf")
    if min_runs <= 0 and min_seconds <= 0:  # no warm-up asked for: none done
        return (samples if keep else (0, 0.0)), started, started
    idle_share = (1.0 / duty - 1.0) if duty else 0.0
    while True:
        t0 = clock()
        invoke()
        t1 = clock()
        if keep:
            append((t1 - t0) * 1000.0)
        else:
            total += (t1 - t0) * 1000.0
        count += 1
        if pause_s:
            sleep(pause_s)
        elif idle_share:
            sleep((t1 - t0) * idle_share)
        end = clock() if (pause_s or idle_share) else t1
        elapsed = end - started
        if (count >= min_runs and elapsed >= min_seconds and released) or elapsed >= max_seconds:
            return (samples if keep else (count, total)), started, end
        if end >= next_tick:
            if tick is not None:
                tick(count, elapsed)
            if not released and hold():
                released = True
            next_tick = clock() + tick_every


def pin(cpus):
    """Pin this process (and the interpreter threads it starts) to ``cpus``; returns the affinity now in force."""
    if not cpus:
        return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        wanted = [int(c) for c in cpus]
        os.sched_setaffinity(0, wanted)
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError, ValueError, TypeError) as exc:
        raise AgentError(
            BAD_REQUEST,
            "cannot pin to CPUs %s: %s" % (cpus, exc),
            "name CPUs that exist on the board (see the cpu facts in hello)",
        )


def _nothing():
    return None


def timer_overhead(calls=2000):
    """What timing costs on this board, measured here: the timed loop around a callable that does nothing (the bias
    in every sample), and two back-to-back ``perf_counter_ns`` reads (the clock alone)."""
    clock = time.perf_counter_ns
    pairs = []
    for _ in range(calls):
        a = clock()
        b = clock()
        pairs.append(b - a)
    pairs.sort()
    empty, _started, _ended = timed_loop(_nothing, calls, 0.0, 1.0)
    empty_ns = sorted(s * 1e6 for s in empty)
    info = time.get_clock_info("perf_counter")
    return {
        "clock": "time.perf_counter (%s)" % info.implementation,
        "resolution_ns": info.resolution * 1e9,
        "back_to_back_ns": float(pairs[len(pairs) // 2]),
        "back_to_back_min_ns": float(pairs[0]),
        "empty_call_ns": empty_ns[len(empty_ns) // 2],
        "calls": calls,
    }
