"""Summary statistics of latency samples, with the percentile definition written down.

Percentiles use linear interpolation between closest ranks (numpy's default, and the "R-7" definition of
Hyndman and Fan), so p50 equals the median.
"""

import math

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize(samples_ms):
    """min / mean / median / p90 / p95 / p99 / max / std (sample std, ddof=1) of a list of milliseconds."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no samples")
    p50, p90, p95, p99 = np.percentile(data, PERCENTILES)
    std = float(np.std(data, ddof=1)) if data.size > 1 else 0.0
    return {
        "count": int(data.size),
        "min": float(data.min()),
        "mean": float(data.mean()),
        "median": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data.max()),
        "std": std,
    }


def histogram(samples_ms, bins=200):
    """A faithful, compact form of very many samples: log-spaced bins with exact counts."""
    data = np.asarray(samples_ms, dtype=np.float64)
    low = max(float(data.min()), 1e-6)
    high = max(float(data.max()), low * 1.000001)
    edges = np.geomspace(low, high, bins + 1)
    counts, edges = np.histogram(data, bins=edges)
    return {"edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def round_ms(value):
    """Keep nanosecond resolution (6 decimals of a millisecond) without float noise in the JSON."""
    return float("%.6f" % value) if not math.isnan(value) else value
