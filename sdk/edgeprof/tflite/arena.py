"""An estimate of the tensor arena a LiteRT interpreter allocates, from the flatbuffer alone.

The interpreter puts every activation (graph inputs, intermediates, outputs) into one arena and reuses memory
between tensors whose lifetimes do not overlap. This module follows its ArenaPlanner: a tensor lives from the
operator that first produces or reads it to the last operator that reads it, graph inputs from the start and graph
outputs to the end; tensors are placed greedily, those alive for the whole run first, then by size (largest first),
each into the best-fitting gap among the tensors alive at the same time, with 64-byte alignment (LiteRT's
kDefaultTensorAlignment). Persistent tensors are counted separately: variable tensors, the outputs of DEQUANTIZE
(or DENSIFY) of a constant, which LiteRT computes once and keeps (how float16 and sparse weights are expanded; a
DEQUANTIZE after a DENSIFY reads a tensor that is not constant, so LiteRT runs it every time, in the arena), and
resource variables (streaming state, see state.py), which live outside the arena for the interpreter's lifetime.

It is an estimate: operator scratch buffers (im2col, XNNPACK's packed weights and workspace) are invisible in the
flatbuffer, so a runtime's real arena can be larger. ``peak_live_bytes`` is the lower bound no plan can beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .reader import Subgraph, TFLiteModel

ALIGNMENT = 64


def _aligned(size: int) -> int:
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Allocation:
    tensor: int
    offset: int
    size: int
    first: int  # first operator step that needs it
    last: int  # last operator step that needs it (inclusive)

    def overlaps_in_time(self, other: Allocation) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class ArenaPlan:
    bytes: int  # arena size of the greedy plan
    peak_live_bytes: int  # most bytes alive at one step: the lower bound for any plan
    no_reuse_bytes: int  # every activation in its own place
    persistent_bytes: int  # variables, expanded constant weights and state, kept across invocations
    allocations: tuple[Allocation, ...]
    state_bytes: int = 0  # the part of persistent_bytes that is resource variables (state between invocations)

    def to_dict(self) -> dict[str, int]:
        data = asdict(self)
        del data["allocations"]
        return data


def persistent_tensors(subgraph: Subgraph) -> set[int]:
    """Tensors kept for the interpreter's lifetime instead of sharing the arena."""
    kept = {t.index for t in subgraph.tensors if t.is_variable}
    for op in subgraph.operators:
        source = op.inputs[0] if op.inputs else -1
        if op.opcode.name in ("DEQUANTIZE", "DENSIFY") and source >= 0 and subgraph.tensors[source].is_constant:
            kept.update(i for i in op.outputs if i >= 0)
    return kept


def lifetimes(subgraph: Subgraph) -> dict[int, tuple[int, int]]:
    """tensor index -> (first step, last step) for the tensors the arena holds."""
    steps = len(subgraph.operators)
    end = max(steps - 1, 0)
    spans: dict[int, list[int]] = {}
    kept = persistent_tensors(subgraph)

    def touch(index: int, step: int) -> None:
        tensor = subgraph.tensors[index]
        if tensor.is_constant or index in kept:
            return
        span = spans.setdefault(index, [step, step])
        span[0] = min(span[0], step)
        span[1] = max(span[1], step)

    for index in subgraph.inputs:
        if index >= 0:
            touch(index, 0)
    for step, op in enumerate(subgraph.operators):
        for index in (*op.inputs, *op.outputs):
            if index >= 0:
                touch(index, step)
    for index in subgraph.outputs:
        if index >= 0:
            touch(index, end)
            if index in spans:
                spans[index][1] = end
    return {index: (span[0], span[1]) for index, span in spans.items()}


def plan_allocations(items: dict[int, tuple[int, int, int]]) -> list[Allocation]:
    """Greedy best-fit placement of ``tensor -> (size, first, last)``, in LiteRT's order."""
    if not items:
        return []
    first_step = min(first for _size, first, _last in items.values())
    last_step = max(last for _size, _first, last in items.values())

    def order(index: int) -> tuple[int, int, int, int]:
        size, first, last = items[index]
        whole_run = first == first_step and last == last_step
        return (0 if whole_run else 1, -size, first, index)

    placed: list[Allocation] = []
    for index in sorted(items, key=order):
        size, first, last = items[index]
        size = _aligned(size)
        candidate = Allocation(index, 0, size, first, last)
        busy = sorted((a for a in placed if a.overlaps_in_time(candidate)), key=lambda a: a.offset)
        best_offset, best_gap = None, None
        cursor = 0
        for other in busy:
            gap = other.offset - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best_offset, best_gap = cursor, gap
            cursor = max(cursor, other.offset + other.size)
        offset = best_offset if best_offset is not None else cursor
        placed.append(Allocation(index, offset, size, first, last))
    return placed


def plan_subgraph(subgraph: Subgraph) -> ArenaPlan:
    spans = lifetimes(subgraph)
    items = {i: (subgraph.tensors[i].nbytes, first, last) for i, (first, last) in spans.items()}
    allocations = plan_allocations(items)
    steps = max(len(subgraph.operators), 1)
    live = [0] * steps
    for a in allocations:
        for step in range(a.first, a.last + 1):
            live[step] += a.size
    persistent = sum(_aligned(subgraph.tensors[i].nbytes) for i in persistent_tensors(subgraph))
    return ArenaPlan(
        bytes=max((a.offset + a.size for a in allocations), default=0),
        peak_live_bytes=max(live, default=0),
        no_reuse_bytes=sum(a.size for a in allocations),
        persistent_bytes=persistent,
        allocations=tuple(sorted(allocations, key=lambda a: a.tensor)),
    )


def plan(model: TFLiteModel) -> ArenaPlan:
    """The arena of every subgraph together (control-flow bodies get arenas of their own), plus the state."""
    from . import state

    plans = [plan_subgraph(sg) for sg in model.subgraphs]
    resources = sum(v.nbytes for v in state.variables(model) if v.kind == "resource variable")
    return ArenaPlan(
        bytes=sum(p.bytes for p in plans),
        peak_live_bytes=sum(p.peak_live_bytes for p in plans),
        no_reuse_bytes=sum(p.no_reuse_bytes for p in plans),
        persistent_bytes=sum(p.persistent_bytes for p in plans) + resources,
        allocations=plans[0].allocations if plans else (),
        state_bytes=resources,
    )
