"""The threads the interpreter really used, counted on the board, not the number that was asked for.

``--threads 4`` is a request: LiteRT's XNNPACK delegate sizes its thread pool from it, builtin kernels have their
own pool, a small op may run on the calling thread alone, and a board may have fewer cores. So the agent reads the
CPU time of each of its threads (Linux ``/proc/self/task/<tid>/schedstat``, nanoseconds; ``stat`` in clock ticks
where schedstat is missing) just before and just after the measured loop. A thread counts as used when it ran for
at least a tenth of the busiest thread's time in the window; threads the agent itself runs beside the loop (a
fallback in-process sampler) are left out. ``created`` is how many threads loading the model and the first
inferences added to the process: the interpreter's pools.
"""

import os

TASKS = "/proc/self/task"  # this process's own threads: the real /proc, never a fake board root
BUSY_SHARE = 0.10
MIN_WINDOW_S = 0.05  # the kernel accounts CPU time at scheduler ticks: a shorter loop shows too little
METHOD = (
    "threads with CPU time in the measured loop of at least 10 % of the busiest thread's, from "
    "/proc/self/task/*/schedstat"
)


def _ticks_per_s():
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def _cpu_s(tid):
    base = "%s/%s/" % (TASKS, tid)
    try:
        with open(base + "schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(base + "stat") as f:
            text = f.read()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _ticks_per_s()
    except (OSError, ValueError, IndexError):
        return None


def snapshot():
    """``{tid: cpu seconds}`` for every thread of this process, or None where there is no /proc."""
    try:
        tids = os.listdir(TASKS)
    except OSError:
        return None
    found = {}
    for tid in tids:
        value = _cpu_s(tid)
        if value is not None:
            found[int(tid)] = value
    return found


def used(requested, baseline, before, after, window_s, exclude=()):
    """The ``conditions.threads`` record: requested, used, created, and each used thread's CPU time in the loop."""
    out = {"requested": requested, "used": None, "created": None, "method": METHOD}
    if before is None or after is None:
        out["reason"] = "no /proc/self/task on this board: the threads used cannot be counted"
        return out
    skip = set(exclude)
    if baseline is not None:
        out["created"] = len(set(after) - set(baseline) - skip)
    if window_s < MIN_WINDOW_S:
        out["reason"] = "the measured loop (%.1f ms) was too short to count threads by their CPU time" % (
            window_s * 1000
        )
        return out
    deltas = dict((tid, after[tid] - before.get(tid, 0.0)) for tid in after if tid not in skip)
    busiest = max(list(deltas.values()) + [0.0])
    busy = sorted((d for d in deltas.values() if busiest > 0 and d >= BUSY_SHARE * busiest), reverse=True)
    out["used"] = len(busy)
    out["busy_cpu_s"] = [round(d, 6) for d in busy]
    out["process_threads"] = len([tid for tid in after if tid not in skip])
    return out
