"""An estimate of the tensor arena, and how it was computed.

LiteRT's Python API does not report the arena's size. We replay what its ArenaPlanner does: every tensor the
execution plan reads or writes, apart from constants, lives from the node that produces it to the last node that
reads it (graph inputs from the start, graph outputs to the end); tensors are placed largest first at the lowest
64-byte-aligned offset that does not overlap a placed tensor whose lifetime overlaps ("greedy by size"). The plan is
the interpreter's own after delegation (see graph.py). What the API does not show is not counted: op temporaries
(e.g. im2col buffers of un-delegated convolutions) and a delegate's private buffers. So it is labelled an estimate;
the measured RSS growth of ``allocate_tensors()`` is reported beside it.
"""

import numpy as np

ALIGNMENT = 64
METHOD = (
    "estimate: LiteRT's greedy-by-size arena plan replayed over the interpreter's execution plan after delegation "
    "(op and tensor details), 64-byte aligned; op temporaries and delegate-private buffers are not visible to the "
    "Python API and not counted"
)


def _nbytes(detail):
    try:
        itemsize = np.dtype(detail["dtype"]).itemsize
    except TypeError:
        return 0
    count = 1
    for d in detail["shape"]:
        count *= max(int(d), 0)
    return count * itemsize


def _aligned(size):
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def place(tensors):
    """``tensors``: [(size, first, last)] -> [(offset, aligned size, first, last)], in the input's order."""
    placed = {}
    order = sorted(range(len(tensors)), key=lambda i: (-tensors[i][0], tensors[i][1]))
    for i in order:
        size, first, last = tensors[i]
        size = _aligned(size)
        busy = sorted((o, s) for o, s, f, lst in placed.values() if not (lst < first or f > last))
        offset = 0
        for other_offset, other_size in busy:
            if offset + size <= other_offset:
                break
            offset = max(offset, other_offset + other_size)
        placed[i] = (offset, size, first, last)
    return [placed[i] for i in range(len(tensors))]


def greedy_by_size(tensors):
    """The arena's high-water mark in bytes for ``tensors`` = [(size, first, last)]."""
    return max([offset + size for offset, size, _f, _l in place(tensors)] or [0])


def estimate(interpreter, graph):
    if graph is None:
        return {"available": False, "reason": "this runtime does not expose its op details"}
    details = dict((int(d["index"]), d) for d in interpreter.get_tensor_details())
    plan = graph.plan()
    produced, first_use, last_use = set(), {}, {}
    for t in graph.inputs:
        first_use[t] = 0
        last_use[t] = 0
    for step, node in enumerate(plan):
        for t in node["outputs"]:
            if t >= 0:
                produced.add(t)
                first_use.setdefault(t, step)
                last_use[t] = max(last_use.get(t, step), step)
        for t in node["inputs"]:
            if t >= 0 and (t in produced or t in graph.inputs):
                last_use[t] = max(last_use.get(t, step), step)
    for t in graph.outputs:
        last_use[t] = len(plan)
    activations = [t for t in first_use if t in details]
    referenced = set(t for node in plan for t in node["inputs"] if t >= 0)
    constants = [t for t in referenced if t not in first_use and t in details]
    tensors = [(_nbytes(details[t]), first_use[t], last_use.get(t, first_use[t])) for t in activations]
    return {
        "available": True,
        "estimate_bytes": greedy_by_size(tensors),
        "activations_bytes": sum(_aligned(size) for size, _f, _l in tensors),
        "activation_tensors": len(tensors),
        "constants_bytes": sum(_nbytes(details[t]) for t in constants),
        "plan_nodes": len(plan),
        "method": METHOD,
    }
