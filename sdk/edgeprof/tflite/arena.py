"""The tensor arena of a .tflite file, planned from the flatbuffer alone: the agent's planner over every operator.

The replay of LiteRT's ArenaPlanner lives once, in the agent (``edgeprof_agent.arena``, Python 3.8, shipped in the
wheel), so that ``inspect`` and ``profile`` cannot disagree about the same graph: here it is fed the flatbuffer's
operators, each on a builtin kernel (no delegate), per subgraph (control-flow bodies get arenas of their own).
Resource variables (streaming state, see state.py) live outside both arenas for the interpreter's lifetime and are
added to the persistent figure. Op scratch buffers (im2col, XNNPACK's packed weights and workspace) are invisible in
the flatbuffer, so a runtime's real arena can be larger; ``peak_live_bytes`` is the lower bound no plan can beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgeprof_agent.arena import ALIGNMENT, METHOD, RESOURCE_BYTES, Allocation, Node, aligned
from edgeprof_agent.arena import plan as replay

from .reader import Subgraph, TFLiteModel

__all__ = ["ALIGNMENT", "METHOD", "Allocation", "ArenaPlan", "aligned", "plan", "plan_subgraph"]


@dataclass(frozen=True)
class ArenaPlan:
    bytes: int  # LiteRT's arena (the high-water mark of the plan)
    peak_live_bytes: int  # most bytes alive at one step: the lower bound for any plan
    no_reuse_bytes: int  # every arena tensor in its own place
    persistent_bytes: int  # the persistent arena (expanded constant weights) plus resource variables' state
    allocations: tuple[Allocation, ...]
    state_bytes: int = 0  # the part of persistent_bytes that is resource variables (state between invocations)
    shared_in_place: int = 0  # tensors written over their input (RESHAPE, SOFTMAX, ADD...): no memory of their own

    def to_dict(self) -> dict[str, int]:
        data = asdict(self)
        del data["allocations"]
        return data


def _size(tensor) -> int:
    return RESOURCE_BYTES if tensor.dtype == "RESOURCE" else tensor.nbytes


def plan_subgraph(subgraph: Subgraph) -> ArenaPlan:
    tensors = subgraph.tensors
    constants = {t.index for t in tensors if t.is_constant}
    replayed = replay(
        [Node(op.opcode.name, op.inputs, op.outputs) for op in subgraph.operators],
        {t.index: _size(t) for t in tensors if not t.is_constant},
        subgraph.inputs,
        subgraph.outputs,
        [t.index for t in tensors if t.is_variable],
        constants,
    )
    return ArenaPlan(
        bytes=replayed.bytes,
        peak_live_bytes=replayed.peak_live_bytes,
        no_reuse_bytes=replayed.no_reuse_bytes,
        persistent_bytes=replayed.persistent_bytes,
        allocations=tuple(
            sorted((a for a in replayed.allocations.values() if a.arena == "arena"), key=lambda a: a.tensor)
        ),
        shared_in_place=len(replayed.aliases),
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
        shared_in_place=sum(p.shared_in_place for p in plans),
    )
