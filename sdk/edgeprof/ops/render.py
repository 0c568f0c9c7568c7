"""Per-operator figures as text: the top operators under ``profile``'s summary, every operator in ``results show``.

Operators below the timer's resolution are merged into one line with a note, never printed as noise; operators that
could not be cut out, and those timed inside another operator's cut, are listed with the reason.
"""

from __future__ import annotations

from typing import Any

from .. import _table
from .names import layer_name

TOP = 10


def available(ops: dict[str, Any] | None) -> bool:
    return bool(ops) and bool(ops.get("available"))


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _where(row: dict[str, Any], plan: list[dict[str, Any]]) -> str:
    if row.get("delegated") is None:
        return "?"
    if not row["delegated"]:
        return "builtin"
    node = next((n for n in plan if n.get("node") == row.get("node")), None)
    return f"{(node or {}).get('delegate') or 'delegate'} #{row.get('node')}"


def _timed(ops: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in ops.get("ops") or [] if r.get("status") == "timed" and r.get("ms")]


def _spread(row: dict[str, Any]) -> str:
    ms = row["ms"]
    return f"{_table.ms(max(ms['p10'], 0.0))}-{_table.ms(ms['p90'])}"


def _row_cells(rank: Any, row: dict[str, Any], plan: list[dict[str, Any]]) -> list[Any]:
    share = row.get("share")
    return [
        rank,
        row["index"],
        row["op"],
        layer_name(row.get("name") or ""),
        _table.ms(row["ms"]["median"]),
        _spread(row),
        _table.pct(share),
        _count(row.get("macs")),
        _rate(row.get("gmacs_per_s")),
        _table.pct(row.get("peak_fraction"), 0),
        _where(row, plan),
    ]


HEADERS = ["#", "op", "operator", "layer", "ms", "p10-p90", "share", "MACs", "GMAC/s", "of peak", "ran on"]
ALIGN = "rrllrrrrrrl"


def header_lines(ops: dict[str, Any]) -> list[str]:
    """How the figures were made and whether they add up: the lines above the table."""
    plan = ops.get("plan") or []
    delegates = [n for n in plan if n.get("kind") == "delegate"]
    builtin = [n for n in plan if n.get("kind") == "builtin"]
    shape = []
    if delegates:
        shape.append(
            f"{len(delegates)} {delegates[0].get('delegate') or 'delegate'} node(s) covering "
            f"{sum(len(n.get('ops') or []) for n in delegates)}"
        )
    if builtin:
        shape.append(f"{len(builtin)} on builtin kernels")
    lines = [
        f"operators: {ops.get('operators')} in the main subgraph"
        + (f" ({'; '.join(shape)})" if shape else "")
        + f"; each cut out and run alone through the same delegate, {ops.get('rounds')} rounds in "
        f"{ops.get('measured_seconds', 0):.2f} s ({ops.get('seconds_total', ops.get('seconds', 0)):.1f} s with "
        "loading and the peak)"
    ]
    whole = (ops.get("whole_ms") or {}).get("median")
    total = ops.get("sum_ms")
    if whole and total is not None:
        gap = whole - total
        nodes = ops.get("delegate_nodes") or 0
        fixed = (ops.get("overhead_ms") or 0.0) + nodes * (ops.get("node_ms") or 0.0)
        lines.append(
            f"sum of operators {_table.ms(total - fixed)} ms + one invoke"
            + (f" and {nodes} delegate node(s)" if nodes else "")
            + f" {_table.ms(fixed)} ms = {ops['sum_ratio']:.2f}x the whole model in the same rounds "
            f"({_table.ms(whole)} ms): {_table.ms(abs(gap))} ms "
            + (
                "not attributed (work a delegate fuses across operators, and memory traffic an operator alone, "
                "with its weights and input in cache, does not pay)"
                if gap > 0
                else "more than the model (work a delegate folds into neighbouring operators in the model, such as "
                "XNNPACK's PAD into the next convolution, and cache misses of operators alone)"
            )
        )
    rank = ops.get("rank_stability") or {}
    if rank.get("spearman") is not None:
        same = set(rank.get("top5_first_half") or []) == set(rank.get("top5_second_half") or [])
        lines.append(
            f"ranking: Spearman {rank['spearman']:.3f} between odd and even rounds; "
            + ("the same top 5 in both" if same else f"top 5 {rank['top5_first_half']} vs {rank['top5_second_half']}")
        )
    lines.extend(cost_lines(ops))
    for node in plan:
        if node.get("ms") is not None:
            lines.append(
                f"node {node['node']} ({node.get('delegate')}, {len(node.get('ops') or [])} operators): "
                f"{_table.ms(node['ms'])} ms as one piece, its operators {_table.ms(node.get('ops_sum_ms'))} ms alone"
            )
    return lines


def cost_lines(ops: dict[str, Any]) -> list[str]:
    """The model's MACs, achieved rate and fraction of the board's peak, with the peak figures."""
    costs, peak = ops.get("costs") or {}, ops.get("peak") or {}
    lines = []
    rates = peak.get("gmacs_per_s") or {}
    roofs = ", ".join(f"{k} {v:.3g} GMAC/s" for k, v in sorted(rates.items()))
    if peak.get("gbytes_per_s"):
        roofs += f", memory {peak['gbytes_per_s']:.3g} GB/s"
    if costs.get("macs"):
        fraction = costs.get("peak_fraction")
        main = costs.get("main_type")
        lines.append(
            f"whole model: {_count(costs['macs'])} MACs in {_table.ms(costs.get('median_ms'))} ms = "
            f"{_rate(costs.get('gmacs_per_s'))} GMAC/s"
            + (
                f", {_table.pct(fraction)} of what this board's CPU does with this runtime ({main} peak "
                f"{rates.get(main, 0):.3g} GMAC/s)"
                if fraction is not None
                else ""
            )
        )
    if roofs:
        lines.append(
            f"peak (measured on the board, {peak.get('delegate')}, threads {peak.get('threads') or 'default'}): {roofs}"
        )
    return lines


def _below(ops: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in ops.get("ops") or [] if r.get("status") == "below_resolution"]


def _reasons(ops: dict[str, Any]) -> list[str]:
    lines = []
    below = _below(ops)
    if below:
        total = sum(r["ms"]["median"] for r in below)
        limit = max(r.get("resolution_ms") or 0.0 for r in below)
        lines.append(
            f"{len(below)} operator(s) below resolution, merged: {_table.ms(max(total, 0.0))} ms together "
            f"(each within {_table.ms(limit)} ms of an empty invoke: {', '.join(sorted({r['op'] for r in below}))})"
        )
    folded = [r for r in ops.get("ops") or [] if r.get("status") == "folded"]
    if folded:
        kinds = sorted({r["op"] for r in folded})
        lines.append(f"{len(folded)} operator(s) timed inside the operators that use them ({', '.join(kinds)})")
    for row in ops.get("ops") or []:
        if row.get("status") in ("not_cut", "not_measured"):
            word = "not cut out" if row["status"] == "not_cut" else "not measured"
            lines.append(f"op {row['index']} {row['op']} {word}: {row.get('reason')}")
        elif row.get("note"):
            lines.append(f"op {row['index']} {row['op']}: {row['note']}")
    lines.extend(f"note: {note}" for note in ops.get("notes") or [])
    return lines


def summary_lines(ops: dict[str, Any] | None, *, top: int = TOP) -> list[str]:
    """The top ``top`` operators by time, the rest as one "other" line, and how the figures hold together."""
    if not ops:
        return []
    if not ops.get("available"):
        return [f"operators: not measured ({ops.get('reason')})"]
    plan = ops.get("plan") or []
    timed = sorted(_timed(ops), key=lambda r: -r["ms"]["median"])
    shown, rest = timed[:top], timed[top:]
    rows = [_row_cells(i + 1, r, plan) for i, r in enumerate(shown)]
    if rest:
        other = sum(r["ms"]["median"] for r in rest)
        share = sum(r.get("share") or 0.0 for r in rest)
        rows.append(["", "", f"{len(rest)} other", "", _table.ms(other), "", _table.pct(share), "", "", "", ""])
    lines = ["", *header_lines(ops), "", _table.table(HEADERS, rows, align=ALIGN), *_reasons(ops)]
    if rest:
        lines.append("every operator: --json, or 'edgeprof results show ID'")
    return lines


def table_lines(ops: dict[str, Any] | None) -> list[str]:
    """Every operator in execution order, with its status: for ``results show``."""
    if not ops:
        return []
    if not ops.get("available"):
        return [f"operators: not measured ({ops.get('reason')})"]
    plan = ops.get("plan") or []
    rank = {r["index"]: i + 1 for i, r in enumerate(sorted(_timed(ops), key=lambda r: -r["ms"]["median"]))}
    rows = []
    for row in ops.get("ops") or []:
        if row.get("status") == "timed":
            rows.append(_row_cells(rank.get(row["index"], ""), row, plan))
        else:
            status = {
                "below_resolution": "below resolution",
                "folded": f"in op {row.get('in')}" if row.get("in") is not None else "folded",
                "not_cut": "not cut out",
                "not_measured": "not measured",
            }.get(row.get("status"), row.get("status"))
            layer = layer_name(row.get("name") or "")
            macs = _count(row.get("macs"))
            rows.append(["", row["index"], row["op"], layer, status, "", "", macs, "", "", _where(row, plan)])
    return ["", *header_lines(ops), "", _table.table(HEADERS, rows, align=ALIGN), *_reasons(ops)]
