"""The figures of a per-operator run (operators.py), from the invoke times of its units.

* Per operator: the median of its warm invokes (the two right after its first one in a round) minus what an empty
  invoke costs, and, for an operator that ran on a delegate, minus what one delegate node costs by itself (alone,
  an operator is a node of its own; in the model it shares one). p10 and p90 of the same differences, the standard
  error of the median (from the MAD), and ``cold``: the same for the first invokes.
* Below resolution: a median within twice its standard error (the empty's and the node's included) of zero, or under
  the clock's own cost. Flagged, so the host merges those operators into one line.
* The check: the operators plus one empty invoke and one node cost per delegate node of the model's plan, against
  the whole model's median in the same rounds (``sum_ratio``); and the ranking's stability: Spearman's correlation of
  the operators' medians in the odd and in the even rounds, and the top 5 of each.

Python 3.8 and numpy.
"""

import math

import numpy as np

KEPT_SAMPLES = 200  # per operator in the record: an even stride of its warm invokes (the figures use all of them)


def median(values):
    return float(np.median(values)) if len(values) else None


def se_median(values):
    """Standard error of a median, from the median absolute deviation (normal approximation)."""
    n = len(values)
    if n < 2:
        return None
    data = np.asarray(values, dtype=np.float64)
    mad = float(np.median(np.abs(data - np.median(data))))
    return 1.2533 * 1.4826 * mad / math.sqrt(n)


def spearman(a, b):
    if len(a) < 3:
        return None
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def round6(value):
    return None if value is None else float("%.6f" % value)


def _even(values, count):
    """At most ``count`` values at an even stride: the distribution and its drift over the run, in less space."""
    if len(values) <= count:
        return list(values)
    stride = len(values) / float(count)
    return [values[int(i * stride)] for i in range(count)]


def _net(samples, offset):
    return [s - offset for s in samples]


class Baseline(object):
    """What an invoke costs by itself (the empty sub-model), and what one delegate node adds (the probe)."""

    def __init__(self, empty, dispatch):
        self.empty = median(empty.samples)
        self.empty_cold = median(empty.first)
        self.empty_se = se_median(empty.samples) or 0.0
        self.node = self.node_cold = self.node_se = 0.0
        if dispatch is not None:
            self.node = max(0.0, median(dispatch.samples) - self.empty)
            self.node_cold = max(0.0, median(dispatch.first) - self.empty_cold)
            self.node_se = se_median(dispatch.samples) or 0.0

    def offset(self, delegated, cold=False):
        if cold:
            return self.empty_cold + (self.node_cold if delegated else 0.0)
        return self.empty + (self.node if delegated else 0.0)

    def se(self, delegated):
        return math.sqrt(self.empty_se**2 + (self.node_se**2 if delegated else 0.0))


def operator_figures(unit, base, rounds, clock_ms):
    """(``ms`` record, resolution, net warm samples, medians of the odd and of the even rounds) of one operator."""
    delegated = bool(unit.delegated)
    net = _net(unit.samples, base.offset(delegated))
    mid = median(net)
    se = se_median(unit.samples) or 0.0
    resolution = max(clock_ms, 2.0 * math.sqrt(se * se + base.se(delegated) ** 2))
    figures = {
        "median": round6(mid),
        "p10": round6(float(np.percentile(net, 10))),
        "p90": round6(float(np.percentile(net, 90))),
        "se": round6(se),
        "cold": round6(median(_net(unit.first, base.offset(delegated, cold=True)))),
    }
    per_round = max(1, len(unit.samples) // max(rounds, 1))
    odd = median([v for i, v in enumerate(net) if (i // per_round) % 2 == 0])
    even = median([v for i, v in enumerate(net) if (i // per_round) % 2 == 1])
    return figures, resolution, net, (odd, even)


def summarize(rows, plan, units, empty, dispatch, whole, rounds, timer):
    """Fill the operators' rows and the plan's nodes in place; return the run's own figures."""
    base = Baseline(empty, dispatch)
    clock_ms = float((timer or {}).get("back_to_back_ns") or 0.0) / 1e6
    halves = ([], [])
    timed = []
    for unit in (u for u in units if u.kind == "op"):
        row = rows[unit.key]
        figures, resolution, net, (odd, even) = operator_figures(unit, base, rounds, clock_ms)
        row["ms"] = figures
        row["resolution_ms"] = round6(resolution)
        row["samples_ms"] = [round6(s) for s in _even(net, KEPT_SAMPLES)]
        if figures["median"] < resolution:
            row["status"] = "below_resolution"
        halves[0].append(odd)
        halves[1].append(even)
        timed.append(row)
    op_sum = sum(r["ms"]["median"] for r in timed)
    cold_sum = sum(r["ms"]["cold"] for r in timed)
    for r in timed:
        r["share"] = round6(r["ms"]["median"] / op_sum) if op_sum > 0 else None
    nodes = dict((u.key, u) for u in units if u.kind == "node")
    for node in plan:
        members = [rows[i] for i in node["ops"] if "ms" in rows[i]]
        node["ops_sum_ms"] = round6(sum(r["ms"]["median"] for r in members)) if members else None
        unit = nodes.get(node["node"])
        if unit is not None:
            node["ms"] = round6(median(_net(unit.samples, base.offset(True))))
            node["cold_ms"] = round6(median(_net(unit.first, base.offset(True, cold=True))))
    delegate_nodes = sum(1 for n in plan if n["kind"] == "delegate")
    total = op_sum + base.empty + delegate_nodes * base.node
    cold_total = cold_sum + base.empty_cold + delegate_nodes * base.node_cold
    whole_median = median(whole.samples)
    order = sorted(range(len(timed)), key=lambda i: -timed[i]["ms"]["median"])
    rank = {"spearman": None, "top5_first_half": None, "top5_second_half": None, "halves": "odd and even rounds"}
    if rounds >= 4 and len(timed) >= 3:
        first, second = halves
        rank["spearman"] = round6(spearman(first, second))
        rank["top5_first_half"] = [timed[i]["index"] for i in sorted(range(len(first)), key=lambda i: -first[i])[:5]]
        rank["top5_second_half"] = [timed[i]["index"] for i in sorted(range(len(second)), key=lambda i: -second[i])[:5]]
    return {
        "overhead_ms": round6(base.empty),
        "overhead_cold_ms": round6(base.empty_cold),
        "node_ms": round6(base.node),
        "delegate_nodes": delegate_nodes,
        "whole_ms": {
            "median": round6(whole_median),
            "p10": round6(float(np.percentile(whole.samples, 10))),
            "p90": round6(float(np.percentile(whole.samples, 90))),
            "cold": round6(median(whole.first)),
        },
        "sum_ms": round6(total),
        "sum_ratio": round6(total / whole_median) if whole_median else None,
        "cold_sum_ms": round6(cold_total),
        "cold_sum_ratio": round6(cold_total / whole_median) if whole_median else None,
        "top": [timed[i]["index"] for i in order[:5]],
        "rank_stability": rank,
    }
