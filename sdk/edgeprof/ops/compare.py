"""Which operators got faster or slower between two runs or two groups: ``edgeprof results compare --ops A B``.

Operators are lined up by position when both sides measured the same graph (the same operators with the same output
shapes: the same file, or one whose weights alone changed, such as a pruned or clustered float model), otherwise by
the Keras layer each belongs to (a float model against its int8 child: ``names.py``), and what is left in order of
operator type. Each pair is judged like ``edgeprof results compare`` judges whole runs:

* one run a side: a Mann–Whitney U test over the two operators' per-invoke times, and a bootstrap 95 % interval of
  the change in their median that must lie wholly outside a noise band (10 % with one run a side: run-to-run noise);
* groups (``g:1 g:2``, every run profiled with ``--ops``): the process is the unit, so each run gives the operator
  one figure, its median, and Student's t over the logarithms of those run medians decides (paired by round when the
  groups were interleaved on one board), with the noise band the smallest change that test can call real given that
  operator's spread between processes (at least 2 %).

With dozens of operators, dozens of tests run at once, so the p-values are Holm-corrected: "significant" holds for the
whole table at level ``alpha``. An operator below the timer's resolution on either side gets no verdict.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeprof_agent.record import NOT_RECORDED, OperatorRow, Operators, ProfileRecord

from .. import _table
from ..compare import (
    GROUP_ALPHA,
    MIN_BAND,
    NO_CHANGE,
    SAMPLE_ALPHA,
    SINGLE_RUN_BAND,
    _bootstrap_median_change,
    _notes,
    _one_thing,
    _p,
    interleaved,
    process_test,
)
from ..errors import StoreError
from .names import layer_name

TIMED = ("timed", "below_resolution")
SHOWN = 25


@dataclass
class OpChange:
    a: int | None  # operator index in A's model
    b: int | None
    op: str
    layer: str
    a_ms: float | None  # one run: the operator's median; a group: the median of its run medians
    b_ms: float | None
    change: float | None  # relative change of the median, B over A, minus 1
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # Holm-adjusted
    significant: bool
    verdict: str
    band: float | None = None  # the noise band this pair was judged against


@dataclass
class OpsComparison:
    a_label: str
    b_label: str
    matched_by: str
    rows: list[OpChange]
    only_a: list[str]
    only_b: list[str]
    alpha: float
    min_change: float | None  # one band for every pair (one run a side, or --min-change); None: each pair's own
    band_from: str
    test: str = "Mann-Whitney U"
    runs: tuple[int, int] = (1, 1)
    whole: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> list[OpChange]:
        return [r for r in self.rows if r.significant]

    @property
    def tested(self) -> int:
        return sum(1 for r in self.rows if r.p_value is not None)

    def summary(self) -> str:
        faster = sum(1 for r in self.changed if (r.change or 0) < 0)
        slower = len(self.changed) - faster
        if self.min_change is None:
            beyond = f"the change is beyond the pair's own noise band (at least {MIN_BAND:.0%})"
        elif min(self.runs) > 1:
            beyond = f"the change is beyond ±{self.min_change:.0%}"
        else:
            beyond = f"the whole 95% interval is beyond ±{self.min_change:.0%}"
        lines = [
            f"operators of {self.a_label} (A) and {self.b_label} (B), matched {self.matched_by}: "
            f"{len(self.rows)} pairs; {faster} significantly faster, {slower} slower",
            f"  {self.test}; significant only if p < {self.alpha:g} (Holm-corrected over {self.tested} tests) and "
            f"{beyond} ({self.band_from})",
        ]
        whole = self.whole
        if whole.get("a") and whole.get("b"):
            lines.append(
                f"  whole model in the operator rounds: {_table.ms(whole['a'])} -> {_table.ms(whole['b'])} ms; "
                f"sum of operators {_table.ms(whole.get('a_sum'))} -> {_table.ms(whole.get('b_sum'))} ms"
                + (" (medians over the runs)" if max(self.runs) > 1 else "")
            )
        ordered = sorted(self.rows, key=lambda r: (not r.significant, -abs((r.b_ms or 0.0) - (r.a_ms or 0.0))))
        shown = ordered[:SHOWN]
        table = [
            [
                "-" if r.a is None else r.a,
                "-" if r.b is None else r.b,
                r.op,
                r.layer,
                _table.ms(r.a_ms),
                _table.ms(r.b_ms),
                "-" if r.change is None else f"{r.change:+.1%}",
                "-" if r.ci_low is None or r.ci_high is None else f"{r.ci_low:+.1%} .. {r.ci_high:+.1%}",
                r.verdict,
            ]
            for r in shown
        ]
        lines += [
            "",
            _table.table(
                ["A op", "B op", "operator", "layer", "A ms", "B ms", "change", "95% interval", "verdict"],
                table,
                align="rrllrrrrl",
            ),
        ]
        if len(ordered) > len(shown):
            hidden = ordered[len(shown) :]
            significant = sum(1 for r in hidden if r.significant)
            lines.append(
                f"... {len(hidden)} more pairs, {significant} of them significant, each smaller in ms than those "
                "above (--json has every one)"
            )
        if self.only_a:
            lines.append(f"only in A: {', '.join(self.only_a)}")
        if self.only_b:
            lines.append(f"only in B: {', '.join(self.only_b)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _signature(row: OperatorRow) -> tuple[Any, ...]:
    return (row.op, tuple(tuple(t.get("shape") or []) for t in row.outputs or []))


def align(a: Sequence[OperatorRow], b: Sequence[OperatorRow]) -> tuple[list[tuple[int, int]], str]:
    """Pairs of positions (in ``a``, in ``b``) and how they were found."""
    if [_signature(r) for r in a] == [_signature(r) for r in b]:
        return [(i, i) for i in range(len(a))], "by position (the same graph)"
    key_a = [(r.op, layer_name(r.name or "")) for r in a]
    key_b = [(r.op, layer_name(r.name or "")) for r in b]
    unique_b = {k: i for i, k in enumerate(key_b) if key_b.count(k) == 1}
    pairs = [(i, unique_b[k]) for i, k in enumerate(key_a) if key_a.count(k) == 1 and k in unique_b]
    used_a, used_b = {i for i, _ in pairs}, {j for _, j in pairs}
    rest_a = [i for i in range(len(a)) if i not in used_a]
    rest_b = [j for j in range(len(b)) if j not in used_b]
    matcher = difflib.SequenceMatcher(None, [a[i].op for i in rest_a], [b[j].op for j in rest_b], autojunk=False)
    by_order = [
        (rest_a[block.a + k], rest_b[block.b + k]) for block in matcher.get_matching_blocks() for k in range(block.size)
    ]
    how = "by layer name" + (f" ({len(by_order)} more in order of operator type)" if by_order else "")
    return sorted(pairs + by_order), how


def _holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def operators_of(record: dict[str, Any]) -> Operators:
    """A stored run's per-operator figures, or the error that says why it has none and what to do."""
    rec = ProfileRecord.load(record)
    ops = rec.ops
    if ops is not None and ops.available:
        return ops
    run = record.get("id", "?")
    if ops is not None:
        why = f"not measured: {ops.reason}"
    elif "ops" in (rec.options or {}):
        why = "it was profiled without --ops"
    else:
        why = f"{NOT_RECORDED}: agent {rec.agent_version} did not time operators"
    raise StoreError(
        f"run {run} has no per-operator figures ({why})",
        "profile the model again with 'edgeprof profile MODEL --ops' (--repeat N for a group), then compare that",
    )


def _label(records: Sequence[dict[str, Any]]) -> str:
    first = records[0]
    name = first.get("label") or (first.get("model") or {}).get("name", "?")
    groups = {(r.get("group") or {}).get("id") for r in records}
    if len(records) > 1 and len(groups) == 1 and None not in groups:
        return f"g:{groups.pop()} {name}"
    ids = ",".join(f"#{r['id']}" for r in records if r.get("id") is not None)
    return f"{ids} {name}".strip()


def _side_rows(side: list[Operators], position: int) -> list[OperatorRow]:
    """The operator at ``position`` in each run of a side (runs of one model share their graph)."""
    return [ops.rows()[position] for ops in side if position < len(ops.rows())]


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def compare_ops(
    a: dict[str, Any] | Sequence[dict[str, Any]],
    b: dict[str, Any] | Sequence[dict[str, Any]],
    *,
    alpha: float | None = None,
    min_change: float | None = None,
    paired: bool | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> OpsComparison:
    """Compare the operators of stored profile records (A is the reference): one record a side, or the runs of a
    group (or of one model) a side. ``alpha`` defaults to 0.05 for groups and 0.01 for one run a side."""
    from scipy.stats import mannwhitneyu

    runs_a = [a] if isinstance(a, dict) else list(a)
    runs_b = [b] if isinstance(b, dict) else list(b)
    if not runs_a or not runs_b:
        raise StoreError("compare --ops needs at least one run on each side", "pass run ids or groups, e.g. g:1 g:2")
    for side, runs in (("A", runs_a), ("B", runs_b)):
        _one_thing(side, runs)
    ops_a, ops_b = [operators_of(r) for r in runs_a], [operators_of(r) for r in runs_b]
    several = len(runs_a) > 1 and len(runs_b) > 1
    if paired is None:
        paired = several and interleaved(runs_a, runs_b)
    level = alpha if alpha is not None else (GROUP_ALPHA if several else SAMPLE_ALPHA)
    rows_a, rows_b = ops_a[0].rows(), ops_b[0].rows()
    pairs, how = align(rows_a, rows_b)
    test = "Mann-Whitney U over the invokes"
    if several:
        test = (f"paired t over {len(runs_a)} rounds" if paired else "Welch t") + " over the operators' run medians"
    if min_change is not None:
        band_from = "--min-change"
    elif several:
        band_from = f"process-to-process noise of each operator over {len(runs_a)}+{len(runs_b)} runs"
    else:
        band_from = (
            f"run-to-run noise with {'one run a side' if len(runs_a) == len(runs_b) == 1 else 'a single run on a side'}"
            "; compare groups (profile --repeat N --ops), or --min-change"
        )
    changes: list[OpChange] = []
    raw_p: list[float] = []
    tested: list[int] = []
    for ia, ib in pairs:
        ra, rb = rows_a[ia], rows_b[ib]
        side_a, side_b = _side_rows(ops_a, ia), _side_rows(ops_b, ib)
        medians_a = [m for m in (r.median_ms() for r in side_a) if m is not None]
        medians_b = [m for m in (r.median_ms() for r in side_b) if m is not None]
        op = ra.op if ra.op == rb.op else f"{ra.op} -> {rb.op}"
        change = OpChange(ra.index, rb.index, op or "?", layer_name(ra.name or rb.name or ""), _median(medians_a),
                          _median(medians_b), None, None, None, None, False, NO_CHANGE)  # fmt: skip
        statuses = {r.status for r in side_a + side_b}
        samples_a = [np.asarray(r.samples_ms or [], dtype=np.float64) for r in side_a]
        samples_b = [np.asarray(r.samples_ms or [], dtype=np.float64) for r in side_b]
        complete = len(medians_a) == len(runs_a) and len(medians_b) == len(runs_b)
        if not complete or not statuses <= set(TIMED) or min(x.size for x in samples_a + samples_b) < 5:
            change.verdict = "not timed in both"
        elif "below_resolution" in statuses:
            change.verdict = "below resolution"
        elif several:
            found = process_test(medians_a, medians_b, paired=paired, alpha=level)
            if found is None or min(medians_a + medians_b) <= 0:
                change.verdict = "not timed in both"
            else:
                change.change, change.ci_low, change.ci_high = found.change, found.ci_low, found.ci_high
                change.band = min_change if min_change is not None else max(MIN_BAND, found.band)
                raw_p.append(found.p_value)
                tested.append(len(changes))
        else:
            xa, xb = np.concatenate(samples_a), np.concatenate(samples_b)
            change.change = float(np.median(xb) / np.median(xa) - 1.0)
            change.ci_low, change.ci_high = _bootstrap_median_change(
                samples_a, samples_b, resamples=resamples, seed=seed
            )
            change.band = SINGLE_RUN_BAND if min_change is None else min_change
            raw_p.append(float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue))
            tested.append(len(changes))
        changes.append(change)
    for position, p in zip(tested, _holm(raw_p), strict=True):
        change = changes[position]
        change.p_value = p
        band = change.band or 0.0
        if several:
            beyond = abs(change.change or 0.0) > band
        else:
            beyond = (change.ci_low or 0.0) > band or (change.ci_high or 0.0) < -band
        if p < level and beyond:
            change.significant = True
            ratio = (change.b_ms or 0.0) / (change.a_ms or 1.0)
            change.verdict = f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"
        else:
            change.verdict = f"{NO_CHANGE} (p {_p(p)})" if p >= level else NO_CHANGE
    matched_a, matched_b = {ia for ia, _ in pairs}, {ib for _, ib in pairs}
    only_a = [f"op {r.index} {r.op}" for i, r in enumerate(rows_a) if i not in matched_a]
    only_b = [f"op {r.index} {r.op}" for i, r in enumerate(rows_b) if i not in matched_b]

    def whole(side: list[Operators]) -> tuple[float | None, float | None]:
        wholes = [o.whole_ms.median for o in side if o.whole_ms and o.whole_ms.median is not None]
        sums = [o.sum_ms for o in side if o.sum_ms is not None]
        return _median(wholes), _median(sums)

    (whole_a, sum_a), (whole_b, sum_b) = whole(ops_a), whole(ops_b)
    return OpsComparison(
        _label(runs_a),
        _label(runs_b),
        how,
        changes,
        only_a,
        only_b,
        level,
        min_change if min_change is not None else (None if several else SINGLE_RUN_BAND),
        band_from,
        test,
        (len(runs_a), len(runs_b)),
        {"a": whole_a, "b": whole_b, "a_sum": sum_a, "b_sum": sum_b},
        _notes(runs_a, runs_b),
    )
