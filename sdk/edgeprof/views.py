"""The one renderer of profile runs: ``profile``'s summary, ``results show``, the report's tables, ``compare`` and
``check`` all take their figures, words and caveats from here, so no two views of a run can disagree.

Everything renders from the typed record (``edgeprof_agent.record.ProfileRecord``); a figure an older agent did not
record is printed as "not recorded", never left out silently and never as a number.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeprof_agent.record import (
    LATENCY_FIGURES,
    METER,
    NOT_RECORDED,
    Energy,
    Latency,
    OperatorRow,
    Operators,
    OperatorTimes,
    PlanNode,
    ProfileRecord,
)

from . import _table
from .ops.names import layer_name

Record = ProfileRecord


def load(record: dict[str, Any] | ProfileRecord) -> ProfileRecord:
    """A typed record from a stored one of any edgeprof version."""
    return record if isinstance(record, ProfileRecord) else ProfileRecord.load(record)


# -- one run ------------------------------------------------------------------------------------------------------


def latency_table(rows: Sequence[tuple[str, Any]], *, runs_column: bool = False) -> str:
    """``latency (ms)`` with min, median, mean, p90, p95, p99, max and std: one row per (label, Latency)."""
    headers = ["latency (ms)", *LATENCY_FIGURES] + (["runs"] if runs_column else [])
    body = []
    for label, lat in rows:
        cells = [label, *(_table.ms(lat.get(k) if lat else None) for k in LATENCY_FIGURES)]
        if runs_column:
            cells.append(lat.count if lat and lat.count is not None else "-")
        body.append(cells)
    return _table.table(headers, body)


def headline(rec: ProfileRecord) -> str:
    """``name (size, sha256 prefix) on target: board, OS``."""
    model, dev = rec.model, rec.device
    name = model.name if model else NOT_RECORDED
    size = _table.size(model.size_bytes) if model else "-"
    sha = (model.sha256 or "")[:12] if model else ""
    where = f"{(dev.board or dev.machine) if dev else None}, {(dev.os or dev.system) if dev else None}"
    return f"{name} ({size}, sha256 {sha}) on {rec.target}: {where}"


def conditions_line(rec: ProfileRecord, *, pid: bool = True) -> str:
    """Runtime, delegate, threads, inputs and the agent (with its process id: one run, one process)."""
    runtime = rec.runtime.text() if rec.runtime else NOT_RECORDED
    process = rec.pid() if pid else None
    return (
        f"runtime {runtime}, delegate {rec.delegate}, threads {rec.threads or 'default'}, "
        f"{rec.inputs or NOT_RECORDED} inputs, agent {rec.agent_version}"
        + (f" (pid {process})" if process is not None else "")
    )


def runs_line(rec: ProfileRecord) -> str:
    lat, warm = rec.latency_ms, rec.warmup
    return (
        f"{lat.count if lat else '?'} runs in {rec.measured_seconds or 0:.2f} s after "
        f"{warm.runs if warm else NOT_RECORDED} warm-up runs"
        + (f" ({len(rec.samples_ms or [])} samples kept)" if rec.samples_subsampled else "")
    )


def caveat_lines(rec: ProfileRecord) -> list[str]:
    return rec.caveats()


def run_lines(rec: ProfileRecord) -> list[str]:
    """Every figure of one run, as ``profile`` prints it and ``results show`` repeats it."""
    lat = rec.latency_ms
    mem = rec.memory
    caveats = [c for c in rec.caveats() if not c.startswith("THROTTLED")]  # throttling has its own line below
    lines = [
        *caveats,
        headline(rec),
        conditions_line(rec),
        runs_line(rec),
        f"init {_table.ms(rec.init_ms)} ms, first inference {_table.ms(rec.first_inference_ms)} ms",
        *delegation_lines(rec),
        "",
        latency_table([("", lat)]),
        "",
        memory_line(mem),
        *energy_lines(rec),
        *thermal_lines(rec),
        *accuracy_lines(rec),
        *stability_lines(rec),
        *operator_lines(rec),
    ]
    return lines


def delegation_lines(rec: ProfileRecord) -> list[str]:
    d = rec.delegation
    if d is None:
        return [f"delegate: {NOT_RECORDED} (agent {rec.agent_version})"]
    if d.applied is None:
        return [f"delegate evidence: {d.evidence}"] if d.evidence else []
    if not d.applied:
        return [f"delegate: no op was delegated ({d.ops if d.ops is not None else '?'} ops run on builtin kernels)"]
    left = ", ".join(d.undelegated_ops or [])
    return [
        f"delegate: {d.delegated_ops}/{d.ops} ops in {d.delegate_nodes} delegate node(s)"
        + (f"; not delegated: {left}" if left else "")
    ]


def memory_line(mem: Any) -> str:
    if mem is None:
        return f"peak RSS {NOT_RECORDED}"
    peak, delta = mem.peak_rss_kb, mem.model_rss_delta_kb
    parts = []
    load, run = mem.peak_rss_load_kb, mem.peak_rss_inference_kb
    if load and run:
        parts.append(f"load {_table.size(load * 1024)}, inference {_table.size(run * 1024)}")
    if mem.peak_reset_problem:
        parts.append("peak not reset: " + mem.peak_reset_problem)
    arena = mem.tensor_arena
    if arena is None:
        parts.append(f"tensor arena {NOT_RECORDED}")
    elif arena.available:
        builtin = arena.builtin_bytes
        parts.append(
            f"tensor arena {_table.size(arena.estimate_bytes)} (LiteRT's plan replayed"
            + (f"; {_table.size(builtin)} with builtin kernels, as inspect shows" if arena.delegated else "")
            + ")"
        )
    board = mem.board or {}
    if board.get("total_kb"):
        free = _table.size((board.get("available_kb") or 0) * 1024)
        parts.append(f"board {free} free of {_table.size(board['total_kb'] * 1024)}")
    return (
        f"peak RSS {_table.size(peak * 1024 if peak else None)}"
        + (f" (model adds {_table.size(delta * 1024)})" if delta is not None else "")
        + (f"; {'; '.join(parts)}" if parts else "")
    )


def _mj(value: float) -> str:  # float noise of equal means is not a figure
    return "0" if abs(value) < 1e-9 else f"{value:.4g}"


def _g(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "?"
    return "0" if abs(value) < 1e-12 else f"{value:.{digits}g}"


def mj_text(mj: float, u95: float | None) -> str:
    """``1.234 ± 0.05``: a figure of energy per inference and, when it has one, its 95 % half-width."""
    return _mj(mj) + (f" ± {_g(u95, 2)}" if u95 is not None else "")


def energy_cell(rec: ProfileRecord) -> str:
    """A run's energy per inference in one table cell (report, compare, check): ``1.234 ± 0.05`` mJ, or ``-``."""
    value = rec.energy_mj()
    return mj_text(value, rec.energy_u95()) if value is not None else "-"


def energy_lines(rec: ProfileRecord) -> list[str]:
    """The energy of one run: the board's sensor in one line, a meter on the host with its conditions."""
    energy = rec.energy
    if energy is not None and energy.origin() == METER:
        return meter_lines(energy)
    return [energy_line(rec)]


def energy_line(rec: ProfileRecord) -> str:
    energy = rec.energy
    if energy is None:
        return f"energy: {NOT_RECORDED} (agent {rec.agent_version} did not measure it)"
    if energy.origin() == METER:
        return meter_lines(energy)[0]
    if not energy.available:
        checked = energy.checked or {}
        if "energy" not in checked and checked:
            return f"energy: unavailable, no power sensor found (tried {', '.join(checked)}; --json has each reason)"
        return f"energy: unavailable ({energy.reason or 'no sensor'})"
    above, idle = energy.mj_per_inference_above_idle, energy.idle_w
    value = energy.mj()
    return (
        f"energy: {_mj(value) if value is not None else NOT_RECORDED} mJ/inference"
        + (f" ({_mj(above)} above idle {idle:.3g} W)" if above is not None and idle is not None else "")
        + (f", mean {energy.mean_w:.3g} W" if energy.mean_w is not None else "")
        + f"; {energy.label}"
        + (f" [{energy.total}]" if energy.total else "")
        + f" at {energy.sample_rate_hz or 0:.0f} Hz, {energy.samples} readings"
    )


def meter_headline(energy: Energy) -> str:
    """``1.23 ± 0.05 mJ/inference above idle (95 %)`` or ``unavailable (reason; fix)``."""
    value = energy.mj()
    if value is None:
        return f"unavailable ({energy.reason or 'no reading'}" + (f"; {energy.fix})" if energy.fix else ")")
    u95 = energy.u95()
    return f"{mj_text(value, u95)} mJ/inference {energy.basis_text()}" + (" (95 %)" if u95 is not None else "")


def meter_conditions(energy: Energy) -> str:
    """The meter and how it read this run: its name and rate, readings per window, clock alignment, duty."""
    meter, alignment = energy.meter, energy.alignment
    where = energy.label or (meter.where if meter else None) or "a meter on the host"
    rate = energy.target_rate_hz if energy.target_rate_hz is not None else (meter.rate_hz if meter else None)
    after = (energy.windows or {}).get("idle_after") or {}
    return (
        f"meter: {where} at {_g(rate)} Hz"
        + (f", {energy.resolution_w:g} W steps" if energy.resolution_w else "")
        + f"; {energy.samples} readings in the loop, {energy.idle_samples} idle before"
        + (f", {after.get('readings')} after" if after else "")
        + (
            f"; clocks aligned to ±{alignment.error_s * 1000:.2g} ms"
            if alignment is not None and alignment.error_s is not None
            else ""
        )
        + (f"; duty {energy.duty:.0%}" if energy.duty is not None else "")
    )


def meter_lines(energy: Energy) -> list[str]:
    """A meter's energy: the figure with its 95 % interval and the idle baseline, the meter's conditions, notes."""
    if energy.mj() is None:
        return [f"energy: {meter_headline(energy)}"]
    rel = energy.relative_u95
    out = [
        f"energy: {meter_headline(energy)}"
        + (f", ±{rel:.1%}" if rel is not None else "")
        + f"; {_g(energy.above_idle_w)} ± {_g(energy.above_idle_w_u95, 2)} W above idle "
        f"{_g(energy.idle_w)} W (gross {_g(energy.mj_per_inference_gross, 4)} mJ/inference)",
        f"  {meter_conditions(energy)}",
    ]
    out += [f"  ! {note}" for note in energy.notes or []]
    board = energy.board_sensor
    if board is not None and board.mj() is not None:
        out.append(f"  board sensor ({board.label}): {_g(board.mj(), 4)} mJ/inference gross")
    return out


def group_energy_lines(records: Sequence[ProfileRecord]) -> list[str]:
    """A group's energy: the median of its runs' figures, each run's (with its interval, when metered) and the
    spread between them; a run that measured none says why."""
    energies = [r.energy_mj() for r in records]
    found = [(r, e) for r, e in zip(records, energies, strict=True) if e is not None]
    missing = [r for r, e in zip(records, energies, strict=True) if e is None]
    if not found:
        return energy_lines(missing[0])
    values = [e for _, e in found]
    metered = [r.energy for r, _ in found if r.energy is not None and r.energy.origin() == METER]
    basis = found[0][0].energy.basis_text() if found[0][0].energy is not None else "gross"
    runs = ", ".join(mj_text(e, r.energy_u95()) for r, e in found)
    low, high = min(values), max(values)
    spread = (
        f"; runs {_mj(low)} .. {_mj(high)} ({high / low - 1:.1%} max over min)" if len(values) > 1 and low > 0 else ""
    )
    lines = [
        f"energy: median {_mj(median_of(values) or 0)} mJ/inference {basis} over {len(values)} runs ({runs}){spread}"
    ]
    if missing:
        first = missing[0]
        why = energy_line(first)[len("energy: ") :]
        lines.append(f"  ! energy {why} in {len(missing)} of {len(records)} runs (first: run #{first.id})")
    if metered:
        lines.append(f"  {group_meter_line(metered)}")
    return lines


def group_meter_line(metered: Sequence[Energy]) -> str:
    """The meter of a group's runs: each process metered on its own (its idle, its clock exchanges)."""
    first = metered[0]
    where = first.label or (first.meter.where if first.meter else None) or "a meter on the host"
    idles = [e.idle_w for e in metered if e.idle_w is not None]
    errors = [e.alignment.error_s for e in metered if e.alignment is not None and e.alignment.error_s is not None]
    duties = [e.duty for e in metered if e.duty is not None]
    return (
        f"meter: {where} at {_g(first.target_rate_hz)} Hz"
        + (f", {first.resolution_w:g} W steps" if first.resolution_w else "")
        + f"; each of {len(metered)} runs metered on its own: {sum(e.samples or 0 for e in metered)} readings in "
        "the loops"
        + (f", idle baseline {_g(min(idles))} .. {_g(max(idles))} W" if idles else "")
        + (f"; clocks aligned to ±{max(errors) * 1000:.2g} ms" if errors else "")
        + (f"; duty {median_of(duties):.0%}" if duties else "")
    )


def thermal_lines(rec: ProfileRecord) -> list[str]:
    thermal, throttled = rec.thermal, rec.throttled
    if thermal is None:
        if throttled is None:
            return [f"throttling: {NOT_RECORDED}"]
        return ["THROTTLED during the run" if throttled else "throttling: none seen"]
    lines = []
    before, after = thermal.before or {}, thermal.after or {}
    hottest = max(after.get("zones") or [], key=lambda z: z["temp_c"], default=None)
    if hottest is not None:
        start = next((z["temp_c"] for z in before.get("zones") or [] if z["zone"] == hottest["zone"]), None)
        peak = (thermal.max_temp_c or {}).get(hottest["zone"])
        lines.append(
            f"temperature ({hottest.get('type') or hottest['zone']}): "
            + (f"{start:.1f} -> " if start is not None else "")
            + f"{hottest['temp_c']:.1f} C"
            + (f" (max {peak:.1f} C)" if peak is not None else "")
        )
    clocks_before, clocks_after = before.get("cpu_mhz") or {}, after.get("cpu_mhz") or {}
    if clocks_after:

        def span(clocks: dict[str, float]) -> str:
            low, high = min(clocks.values()), max(clocks.values())
            return f"{low:.0f}" if low == high else f"{low:.0f}-{high:.0f}"

        lines.append(f"CPU clocks: {span(clocks_before) if clocks_before else '?'} -> {span(clocks_after)} MHz")
    if throttled:
        lines.append("THROTTLED during the run: " + "; ".join(thermal.throttle_evidence or []))
    elif throttled is False:
        lines.append(f"throttling: none seen ({', '.join(thermal.throttle_sources or [])})")
    else:
        lines.append(f"throttling: unknown ({thermal.throttle_reason or 'no source'})")
    return lines


def accuracy_lines(rec: ProfileRecord) -> list[str]:
    acc = rec.accuracy
    if acc is None:
        return []
    board, host = acc.board or {}, acc.host or {}
    if board.get("accuracy") is None or host.get("accuracy") is None:
        return [f"accuracy on the board: {NOT_RECORDED}"]
    return [
        f"accuracy on the board: {board['accuracy']:.2%} vs {host['accuracy']:.2%} on the host "
        f"({(acc.difference or {}).get('accuracy', 0):+.2%}; same class for {acc.agreement or 0:.2%} of "
        f"{acc.samples} samples of {acc.eval_data})"
    ]


def stability_lines(rec: ProfileRecord) -> list[str]:
    """The agent's stability checks (edgeprof_agent/stability.py): its warnings as it wrote them."""
    found = rec.stability
    if found is None:
        return [f"stability: {NOT_RECORDED} (agent {rec.agent_version} ran no checks)"]
    conditions = rec.conditions
    threads = conditions.threads if conditions else None
    sampler = conditions.sampler if conditions else None
    timer = found.timer or {}
    facts = [f"{found.samples} samples"]
    if timer.get("empty_call_ns") is not None:
        facts.append(f"timer {timer['empty_call_ns']:.0f} ns a call")
    if threads is not None and threads.used:
        facts.append(f"{threads.used} thread(s) used of {threads.requested or 'default'}")
    if sampler is not None:
        facts.append(f"sampler {sampler.where}" if sampler.ran else "no sampler ran")
    warnings = found.warnings or []
    head = "stability: ok" if found.stable else f"stability: {len(warnings)} warning(s)"
    return [f"{head} ({', '.join(facts)})", *(f"  ! {w}" for w in warnings)]


# -- a group of runs ------------------------------------------------------------------------------------------------


@dataclass
class GroupInfo:
    """What a group is, besides its runs: its id, how many processes were planned, its partners, how it ended."""

    id: int | None
    planned: int
    error: str | None = None
    partners: list[str] = field(default_factory=list)  # "g:4 b.tflite": groups interleaved with this one


def median_of(values: Sequence[float | None]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return statistics.median(found) if found else None


@dataclass(frozen=True)
class Spread:
    """The spread between processes: the figure replication exists to measure."""

    medians_ms: tuple[float, ...]
    median_ms: float  # the median of run medians: a group's latency figure
    max_over_min: float  # max / min - 1 of the run medians
    cv: float | None  # standard deviation of the run medians over their mean (None for one run)


def spread_of(records: Sequence[ProfileRecord]) -> Spread | None:
    medians = tuple(r.latency_ms.median for r in records if r.latency_ms and r.latency_ms.median is not None)
    if not medians:
        return None
    mean = sum(medians) / len(medians)
    cv = statistics.stdev(medians) / mean if len(medians) > 1 and mean > 0 else None
    return Spread(medians, statistics.median(medians), max(medians) / min(medians) - 1.0, cv)


def spread_line(spread: Spread | None) -> str:
    if spread is None:
        return f"spread between processes: {NOT_RECORDED}"
    if len(spread.medians_ms) == 1:
        return "spread between processes: one process, not measured (--repeat N measures it)"
    cv = f", CV {spread.cv:.1%}" if spread.cv is not None else ""
    return (
        f"spread between processes: run medians {_table.ms(min(spread.medians_ms))} .. "
        f"{_table.ms(max(spread.medians_ms))} ms ({spread.max_over_min:.1%} max over min{cv}); "
        f"median of run medians {_table.ms(spread.median_ms)} ms"
    )


def group_lines(records: Sequence[ProfileRecord], info: GroupInfo) -> list[str]:
    """A group: each run's latency, the median of each figure across runs, the spread between processes, and the
    facts of its runs (memory: the largest; energy: the median and the spread, each run's interval when a meter
    measured it; throttling and stability: every run's)."""
    if not records:
        return [f"group g:{info.id}: no run was stored" + (f" ({info.error})" if info.error else "")]
    first = records[0]
    pids = [r.pid() for r in records]
    done = (
        f"{len(records)} of {info.planned} processes" if len(records) != info.planned else f"{info.planned} processes"
    )
    caveats = sorted({c for r in records for c in r.caveats() if not c.startswith("THROTTLED")})
    lines = [
        *caveats,
        headline(first),
        conditions_line(first, pid=False),
        f"group g:{info.id}: {done}, each a fresh agent"
        + (f" (pids {', '.join(str(p) for p in pids)})" if all(p is not None for p in pids) else "")
        + (f"; interleaved with {', '.join(info.partners)}" if info.partners else ""),
    ]
    if info.error:
        lines.append(f"STOPPED after {len(records)} of {info.planned} processes: {info.error}")
    lines += [*delegation_lines(first), ""]
    rows = [(f"run #{r.id}" if r.id is not None else f"run {i + 1}", r.latency_ms) for i, r in enumerate(records)]
    lats = [r.latency_ms for r in records if r.latency_ms is not None]
    combined = Latency.build(
        count=sum(lat.count or 0 for lat in lats),
        **{k: median_of([lat.get(k) for lat in lats]) for k in LATENCY_FIGURES},
    )
    lines += [
        latency_table([*rows, ("median of runs", combined)], runs_column=True),
        "",
        spread_line(spread_of(records)),
    ]
    peaks = [r.memory.peak_rss_kb for r in records if r.memory and r.memory.peak_rss_kb]
    largest = max(records, key=lambda r: (r.memory.peak_rss_kb or 0) if r.memory else 0)
    lines.append(memory_line(largest.memory) + (f" (the largest of {len(peaks)} runs)" if len(peaks) > 1 else ""))
    lines += group_energy_lines(records)
    throttled = [r.id for r in records if r.throttled]
    if throttled:
        lines.append(f"THROTTLED during run(s) {', '.join(f'#{i}' for i in throttled)}")
    else:
        lines.append(thermal_lines(first)[-1])
    for rec in records:
        lines += accuracy_lines(rec)
    lines += group_stability_lines(records)
    lines += group_operator_lines(records)
    return lines


def group_stability_lines(records: Sequence[ProfileRecord]) -> list[str]:
    """Each kind of warning once, as the first run that raised it wrote it, with every run that raised it."""
    unchecked = [r for r in records if r.stability is None]
    first: dict[str, str] = {}
    runs: dict[str, list[str]] = {}
    for i, rec in enumerate(records):
        for warning in (rec.stability.warnings or []) if rec.stability else []:
            kind = _FIGURE.sub("#", warning)  # runs differ in the figures, not in the kind of warning
            first.setdefault(kind, warning)
            runs.setdefault(kind, []).append(f"#{rec.id}" if rec.id is not None else f"run {i + 1}")
    checked = len(records) - len(unchecked)
    clean = sum(1 for r in records if r.stability is not None and r.stability.stable)
    head = f"stability: {clean} of {checked} runs without warnings" + (
        f"; {len(unchecked)} {NOT_RECORDED}" if unchecked else ""
    )
    lines = [head]
    for kind, text in first.items():
        lines.append(f"  ! {'run' if len(runs[kind]) == 1 else 'runs'} {', '.join(runs[kind])}: {text}")
    return lines


_FIGURE = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?")


# -- short forms for tables (report, compare, check) ---------------------------------------------------------------


def caveat_note(rec: ProfileRecord) -> str:
    """The caveats of a run in one table cell: empty when there is none."""
    return "; ".join(rec.caveats())


# -- operators (profile --ops) --------------------------------------------------------------------------------------
# The top operators under a run's figures (profile's summary, and so results show), every operator in execution
# order (results show, after those), and a group's operators as the median of their run medians. Operators below the
# timer's resolution are merged into one line with a note, never printed as noise; operators that could not be cut
# out, and those timed inside another operator's cut, are listed with the reason.

TOP_OPERATORS = 10
OPERATOR_HEADERS = ["#", "op", "operator", "layer", "ms", "p10-p90", "share", "MACs", "GMAC/s", "of peak", "ran on"]
OPERATOR_ALIGN = "rrllrrrrrrl"
OPERATOR_STATUS = {
    "below_resolution": "below resolution",
    "not_cut": "not cut out",
    "not_measured": "not measured",
}


def count(value: int | None) -> str:
    """A count of MACs or bytes in k, M, G."""
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _ran_on(row: OperatorRow, plan: Sequence[PlanNode]) -> str:
    if row.delegated is None:
        return "?"
    if not row.delegated:
        return "builtin"
    node = next((n for n in plan if n.node == row.node), None)
    return f"{(node.delegate if node else None) or 'delegate'} #{row.node}"


def _operator_cells(rank: Any, row: OperatorRow, plan: Sequence[PlanNode]) -> list[Any]:
    times = row.ms or OperatorTimes()
    return [
        rank,
        row.index,
        row.op,
        layer_name(row.name or ""),
        _table.ms(times.median),
        f"{_table.ms(max(times.p10 or 0.0, 0.0))}-{_table.ms(times.p90)}",
        _table.pct(row.share),
        count(row.macs),
        _rate(row.gmacs_per_s),
        _table.pct(row.peak_fraction, 0),
        _ran_on(row, plan),
    ]


def operator_head_lines(ops: Operators) -> list[str]:
    """How the figures were made and whether they add up: the lines above a run's operator table."""
    plan = ops.plan or []
    delegates = [n for n in plan if n.kind == "delegate"]
    builtin = [n for n in plan if n.kind == "builtin"]
    shape = []
    if delegates:
        covering = sum(len(n.ops or []) for n in delegates)
        shape.append(f"{len(delegates)} {delegates[0].delegate or 'delegate'} node(s) covering {covering}")
    if builtin:
        shape.append(f"{len(builtin)} on builtin kernels")
    total_s = ops.seconds_total if ops.seconds_total is not None else ops.seconds
    lines = [
        f"operators: {ops.operators} in the main subgraph"
        + (f" ({'; '.join(shape)})" if shape else "")
        + f"; each cut out and run alone through the same delegate, {ops.rounds} rounds in "
        f"{ops.measured_seconds or 0:.2f} s ({total_s or 0:.1f} s with loading and the peak)"
    ]
    whole = ops.whole_ms.median if ops.whole_ms else None
    if whole and ops.sum_ms is not None and ops.sum_ratio is not None:
        gap = whole - ops.sum_ms
        nodes = ops.delegate_nodes or 0
        fixed = (ops.overhead_ms or 0.0) + nodes * (ops.node_ms or 0.0)
        lines.append(
            f"sum of operators {_table.ms(ops.sum_ms - fixed)} ms + one invoke"
            + (f" and {nodes} delegate node(s)" if nodes else "")
            + f" {_table.ms(fixed)} ms = {ops.sum_ratio:.2f}x the whole model in the same rounds "
            f"({_table.ms(whole)} ms): {_table.ms(abs(gap))} ms "
            + (
                "not attributed (work a delegate fuses across operators, and memory traffic an operator alone, "
                "with its weights and input in cache, does not pay)"
                if gap > 0
                else "more than the model (work a delegate folds into neighbouring operators in the model, such as "
                "XNNPACK's PAD into the next convolution, and cache misses of operators alone)"
            )
        )
    rank = ops.rank_stability
    if rank is not None and rank.spearman is not None:
        same = set(rank.top5_first_half or []) == set(rank.top5_second_half or [])
        lines.append(
            f"ranking: Spearman {rank.spearman:.3f} between odd and even rounds; "
            + ("the same top 5 in both" if same else f"top 5 {rank.top5_first_half} vs {rank.top5_second_half}")
        )
    lines.extend(operator_cost_lines(ops))
    for node in plan:
        if node.ms is not None:
            lines.append(
                f"node {node.node} ({node.delegate}, {len(node.ops or [])} operators): "
                f"{_table.ms(node.ms)} ms as one piece, its operators {_table.ms(node.ops_sum_ms)} ms alone"
            )
    return lines


def operator_cost_lines(ops: Operators) -> list[str]:
    """The model's MACs, achieved rate and fraction of the board's peak, with the peak figures."""
    costs, peak = ops.costs, ops.peak
    rates = (peak.gmacs_per_s if peak else None) or {}
    roofs = ", ".join(f"{k} {v:.3g} GMAC/s" for k, v in sorted(rates.items()))
    if peak is not None and peak.gbytes_per_s:
        roofs += f", memory {peak.gbytes_per_s:.3g} GB/s"
    lines = []
    if costs is None:
        lines.append(f"whole model: MACs and rate {NOT_RECORDED}")
    elif costs.macs:
        main = costs.main_type
        lines.append(
            f"whole model: {count(costs.macs)} MACs in {_table.ms(costs.median_ms)} ms = "
            f"{_rate(costs.gmacs_per_s)} GMAC/s"
            + (
                f", {_table.pct(costs.peak_fraction)} of what this board's CPU does with this runtime ({main} peak "
                f"{rates.get(main or '', 0):.3g} GMAC/s)"
                if costs.peak_fraction is not None
                else ""
            )
        )
    if roofs and peak is not None:
        lines.append(f"peak (measured on the board, {peak.delegate}, threads {peak.threads or 'default'}): {roofs}")
    return lines


def operator_reason_lines(ops: Operators) -> list[str]:
    """Operators without a time of their own, each with why; those below resolution merged; the run's notes."""
    lines = []
    below = ops.rows("below_resolution")
    if below:
        total = sum((r.ms.median or 0.0) for r in below if r.ms)
        limit = max(r.resolution_ms or 0.0 for r in below)
        lines.append(
            f"{len(below)} operator(s) below resolution, merged: {_table.ms(max(total, 0.0))} ms together "
            f"(each within {_table.ms(limit)} ms of an empty invoke: {', '.join(sorted({r.op or '?' for r in below}))})"
        )
    folded = ops.rows("folded")
    if folded:
        kinds = ", ".join(sorted({r.op or "?" for r in folded}))
        lines.append(f"{len(folded)} operator(s) timed inside the operators that use them ({kinds})")
    for row in ops.rows():
        if row.status in ("not_cut", "not_measured"):
            lines.append(f"op {row.index} {row.op} {OPERATOR_STATUS[row.status]}: {row.reason}")
        elif row.note:
            lines.append(f"op {row.index} {row.op}: {row.note}")
    lines.extend(f"note: {note}" for note in ops.notes or [])
    return lines


def operator_lines(rec: ProfileRecord, *, top: int = TOP_OPERATORS) -> list[str]:
    """A run's operators under its figures (``run_lines``): the ``top`` slowest, the rest as one "other" line, and how
    the figures hold together. Nothing for a run profiled without ``--ops`` (like ``--eval``'s accuracy)."""
    ops = rec.ops
    if ops is None:
        return []
    if not ops.available:
        return ["", f"operators: not measured ({ops.reason})"]
    plan = ops.plan or []
    timed = sorted(ops.timed(), key=lambda r: -(r.ms.median or 0.0) if r.ms else 0.0)
    shown, rest = timed[:top], timed[top:]
    rows = [_operator_cells(i + 1, r, plan) for i, r in enumerate(shown)]
    if rest:
        other = sum((r.ms.median or 0.0) for r in rest if r.ms)
        share = sum(r.share or 0.0 for r in rest)
        rows.append(["", "", f"{len(rest)} other", "", _table.ms(other), "", _table.pct(share), "", "", "", ""])
    lines = [
        "",
        *operator_head_lines(ops),
        "",
        _table.table(OPERATOR_HEADERS, rows, align=OPERATOR_ALIGN),
        *operator_reason_lines(ops),
    ]
    if rest:
        lines.append(f"every operator: --json, or 'edgeprof results show{f' {rec.id}' if rec.id else ' ID'}'")
    return lines


def operator_table_lines(rec: ProfileRecord) -> list[str]:
    """Every operator of a run in execution order, with its status: ``results show`` prints it under the run."""
    ops = rec.ops
    if ops is None or not ops.available:
        return []
    plan = ops.plan or []
    ranked = sorted(ops.timed(), key=lambda r: -(r.ms.median or 0.0) if r.ms else 0.0)
    rank = {r.index: i + 1 for i, r in enumerate(ranked)}
    rows = []
    for row in ops.rows():
        if row.status == "timed" and row.ms is not None:
            rows.append(_operator_cells(rank.get(row.index, ""), row, plan))
            continue
        if row.status == "folded":
            status = f"in op {row.timed_in}" if row.timed_in is not None else "folded"
        else:
            status = OPERATOR_STATUS.get(row.status or "", row.status)
        layer = layer_name(row.name or "")
        rows.append(["", row.index, row.op, layer, status, "", "", count(row.macs), "", "", _ran_on(row, plan)])
    return [
        "",
        f"every operator, in execution order ({len(rows)}):",
        _table.table(OPERATOR_HEADERS, rows, align=OPERATOR_ALIGN),
    ]


def group_operator_lines(records: Sequence[ProfileRecord], *, top: int = TOP_OPERATORS) -> list[str]:
    """A group's operators: each operator's figure is the median of its run medians (the process is the unit), with
    the range of those medians; the runs' sums against the whole model and their fractions of peak."""
    asked = [r for r in records if r.ops is not None]
    if not asked:
        return []
    measured = [r for r in asked if r.ops is not None and r.ops.available]
    lines = [""]
    failed = [r for r in asked if r not in measured]
    for rec in failed:
        lines.append(f"operators of run #{rec.id}: not measured ({rec.ops.reason if rec.ops else NOT_RECORDED})")
    if not measured:
        return lines
    first = measured[0].ops or Operators()
    plan = first.plan or []
    medians: dict[int, list[float]] = {}
    for rec in measured:
        for row in rec.ops.timed() if rec.ops else []:
            if row.index is not None and row.ms is not None and row.ms.median is not None:
                medians.setdefault(row.index, []).append(row.ms.median)
    rows = {r.index: r for r in first.rows()}
    figures = {i: statistics.median(v) for i, v in medians.items()}
    total = sum(figures.values())
    ranked = sorted(figures, key=lambda i: -figures[i])
    ratios = [r.ops.sum_ratio for r in measured if r.ops and r.ops.sum_ratio is not None]
    fractions = [r.ops.costs.peak_fraction for r in measured if r.ops and r.ops.costs and r.ops.costs.peak_fraction]
    lines.append(
        f"operators: timed in {len(measured)} of {len(records)} runs, each its own agent process; an operator's "
        f"figure is the median of its run medians (range: the lowest and highest run median)"
    )
    if ratios:
        lines.append(
            f"sum of operators and one invoke against the whole model: {min(ratios):.2f}x .. {max(ratios):.2f}x "
            f"over the runs"
            + (
                f"; whole model at {_table.pct(median_of(fractions))} of the board's peak (median of the runs)"
                if fractions
                else ""
            )
        )
    table = []
    for n, index in enumerate(ranked[:top]):
        row, ms = rows.get(index), medians[index]
        macs = row.macs if row else None
        rate = macs / (figures[index] / 1e3) / 1e9 if macs and figures[index] > 0 else None
        table.append(
            [
                n + 1,
                index,
                row.op if row else "?",
                layer_name((row.name if row else "") or ""),
                _table.ms(figures[index]),
                f"{_table.ms(min(ms))}-{_table.ms(max(ms))}",
                _table.pct(figures[index] / total if total > 0 else None),
                count(macs),
                _rate(rate),
                _ran_on(row, plan) if row else "?",
            ]
        )
    rest = ranked[top:]
    if rest:
        other = sum(figures[i] for i in rest)
        share = _table.pct(other / total if total > 0 else None)
        table.append(["", "", f"{len(rest)} other", "", _table.ms(other), "", share, "", "", ""])
    headers = ["#", "op", "operator", "layer", "ms", "runs", "share", "MACs", "GMAC/s", "ran on"]
    lines += ["", _table.table(headers, table, align="rrllrrrrrl")]
    lines.append("each run's operators: 'edgeprof results show ID'; between groups: 'edgeprof results compare --ops'")
    return lines
