"""Which operators got faster or slower between two runs: ``edgeprof results compare --ops A B``.

Operators are lined up by position when both runs measured the same graph (the same operators with the same output
shapes: the same file, or one whose weights alone changed, such as a pruned or clustered float model), otherwise by
the Keras layer each belongs to (a float model against its int8 child: ``names.py``), and what is left in order of
operator type. Each pair is judged like ``edgeprof results compare`` judges whole runs: a Mann–Whitney U test over
the two operators' per-invoke times, and a bootstrap 95 % interval of the change in their median that must lie
wholly outside a noise band (10 % with one run a side: run-to-run noise). With dozens of operators, dozens of tests
run at once, so the p-values are Holm-corrected: "significant" holds for the whole table at level ``alpha``. An
operator below the timer's resolution on either side gets no verdict.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import _table
from ..compare import NO_CHANGE, SINGLE_RUN_BAND, _bootstrap_median_change, _p
from ..errors import StoreError
from .names import layer_name

TIMED = ("timed", "below_resolution")
SHOWN = 25


@dataclass
class OpChange:
    a: int | None  # operator index in run A's model
    b: int | None
    op: str
    layer: str
    a_ms: float | None
    b_ms: float | None
    change: float | None  # relative change of the median, B over A, minus 1
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # Holm-adjusted
    significant: bool
    verdict: str


@dataclass
class OpsComparison:
    a_label: str
    b_label: str
    matched_by: str
    rows: list[OpChange]
    only_a: list[str]
    only_b: list[str]
    alpha: float
    min_change: float
    band_from: str
    whole: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> list[OpChange]:
        return [r for r in self.rows if r.significant]

    def summary(self) -> str:
        faster = sum(1 for r in self.changed if (r.change or 0) < 0)
        slower = len(self.changed) - faster
        lines = [
            f"operators of {self.a_label} (A) and {self.b_label} (B), matched {self.matched_by}: "
            f"{len(self.rows)} pairs; {faster} significantly faster, {slower} slower",
            f"  significant only if p < {self.alpha:g} (Holm-corrected over {self.tested} tests) and the whole 95% "
            f"interval is beyond ±{self.min_change:.0%} ({self.band_from})",
        ]
        whole = self.whole
        if whole.get("a") and whole.get("b"):
            lines.append(
                f"  whole model in the operator rounds: {_table.ms(whole['a'])} -> {_table.ms(whole['b'])} ms; "
                f"sum of operators {_table.ms(whole.get('a_sum'))} -> {_table.ms(whole.get('b_sum'))} ms"
            )
        ordered = sorted(
            self.rows,
            key=lambda r: (not r.significant, -abs((r.b_ms or 0.0) - (r.a_ms or 0.0))),
        )
        shown = ordered[:SHOWN] if len(ordered) > SHOWN else ordered
        table = [
            [
                "-" if r.a is None else r.a,
                "-" if r.b is None else r.b,
                r.op,
                r.layer,
                _table.ms(r.a_ms),
                _table.ms(r.b_ms),
                "-" if r.change is None else f"{r.change:+.1%}",
                "-" if r.ci_low is None else f"{r.ci_low:+.1%} .. {r.ci_high:+.1%}",
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

    @property
    def tested(self) -> int:
        return sum(1 for r in self.rows if r.p_value is not None)


def _signature(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["op"], tuple(tuple(t.get("shape") or []) for t in row.get("outputs") or []))


def align(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[list[tuple[int, int]], str]:
    """Pairs of positions (in ``a``, in ``b``) and how they were found."""
    if [_signature(r) for r in a] == [_signature(r) for r in b]:
        return [(i, i) for i in range(len(a))], "by position (the same graph)"
    key_a = [(r["op"], layer_name(r.get("name") or "")) for r in a]
    key_b = [(r["op"], layer_name(r.get("name") or "")) for r in b]
    unique_b = {k: i for i, k in enumerate(key_b) if key_b.count(k) == 1}
    pairs = [(i, unique_b[k]) for i, k in enumerate(key_a) if key_a.count(k) == 1 and k in unique_b]
    used_a, used_b = {i for i, _ in pairs}, {j for _, j in pairs}
    rest_a = [i for i in range(len(a)) if i not in used_a]
    rest_b = [j for j in range(len(b)) if j not in used_b]
    matcher = difflib.SequenceMatcher(None, [a[i]["op"] for i in rest_a], [b[j]["op"] for j in rest_b], autojunk=False)
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


def _ops_of(record: dict[str, Any], side: str) -> dict[str, Any]:
    ops = record.get("ops") or {}
    if not ops.get("available"):
        run = record.get("id", side)
        why = ops.get("reason") if ops else "it was profiled without --ops"
        raise StoreError(
            f"run {run} has no per-operator figures ({why})",
            "profile the model again with 'edgeprof profile MODEL --ops', then compare that run",
        )
    return ops


def _label(record: dict[str, Any]) -> str:
    name = record.get("label") or (record.get("model") or {}).get("name", "?")
    return f"#{record['id']} {name}" if record.get("id") is not None else name


def compare_ops(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    alpha: float = 0.01,
    min_change: float | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> OpsComparison:
    """Compare the operators of two stored profile records (A is the reference)."""
    from scipy.stats import mannwhitneyu

    ops_a, ops_b = _ops_of(a, "A"), _ops_of(b, "B")
    rows_a, rows_b = ops_a.get("ops") or [], ops_b.get("ops") or []
    pairs, how = align(rows_a, rows_b)
    band = SINGLE_RUN_BAND if min_change is None else min_change
    band_from = "--min-change" if min_change is not None else "run-to-run noise with one run a side, or --min-change"
    changes: list[OpChange] = []
    raw_p: list[float] = []
    tested: list[int] = []
    for ia, ib in pairs:
        ra, rb = rows_a[ia], rows_b[ib]
        a_ms = (ra.get("ms") or {}).get("median")
        b_ms = (rb.get("ms") or {}).get("median")
        change = OpChange(ra["index"], rb["index"], ra["op"] if ra["op"] == rb["op"] else f"{ra['op']} -> {rb['op']}",
                          layer_name(ra.get("name") or rb.get("name") or ""), a_ms, b_ms, None, None, None, None,
                          False, NO_CHANGE)  # fmt: skip
        sa, sb = ra.get("samples_ms") or [], rb.get("samples_ms") or []
        if ra.get("status") not in TIMED or rb.get("status") not in TIMED or len(sa) < 5 or len(sb) < 5:
            change.verdict = "not timed in both"
        elif "below_resolution" in (ra.get("status"), rb.get("status")):
            change.verdict = "below resolution"
        else:
            xa, xb = np.asarray(sa, dtype=np.float64), np.asarray(sb, dtype=np.float64)
            change.change = float(np.median(xb) / np.median(xa) - 1.0)
            change.ci_low, change.ci_high = _bootstrap_median_change([xa], [xb], resamples=resamples, seed=seed)
            raw_p.append(float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue))
            tested.append(len(changes))
        changes.append(change)
    for position, p in zip(tested, _holm(raw_p), strict=True):
        change = changes[position]
        change.p_value = p
        beyond = change.ci_low > band or change.ci_high < -band
        if p < alpha and beyond:
            change.significant = True
            ratio = (change.b_ms or 0.0) / (change.a_ms or 1.0)
            change.verdict = f"{ratio:.2f}x slower" if ratio > 1 else f"{1 / ratio:.2f}x faster"
        else:
            change.verdict = f"{NO_CHANGE} (p {_p(p)})" if p >= alpha else NO_CHANGE
    matched_a, matched_b = {ia for ia, _ in pairs}, {ib for _, ib in pairs}
    only_a = [f"op {r['index']} {r['op']}" for i, r in enumerate(rows_a) if i not in matched_a]
    only_b = [f"op {r['index']} {r['op']}" for i, r in enumerate(rows_b) if i not in matched_b]
    notes = []
    for name, key in (("runtime", "runtime"), ("delegate", "delegate"), ("threads", "threads"), ("target", "target")):
        if str(a.get(key)) != str(b.get(key)):
            notes.append(f"the runs differ in {name}: {a.get(key)} vs {b.get(key)}")
    whole = {
        "a": (ops_a.get("whole_ms") or {}).get("median"),
        "b": (ops_b.get("whole_ms") or {}).get("median"),
        "a_sum": ops_a.get("sum_ms"),
        "b_sum": ops_b.get("sum_ms"),
    }
    return OpsComparison(_label(a), _label(b), how, changes, only_a, only_b, alpha, band, band_from, whole, notes)
