"""The tensor arena: LiteRT's memory plan, replayed. One implementation for the agent and for ``edgeprof inspect``.

LiteRT's Python API does not report the arena's size, so we replay its ArenaPlanner (tflite/arena_planner.cc and
simple_memory_arena.cc) over a graph: the agent gives the interpreter's execution plan after delegation
(graph.py), ``inspect`` gives the flatbuffer's operators (every op on a builtin kernel). The rules, as LiteRT 2.x
has them:

* Lifetimes. Graph inputs and variable tensors are allocated at node 0 and never freed; every other tensor at the
  node that first writes it; a tensor is freed at the node that reads it last (reference counts), except graph
  outputs, which are never freed. Constants live in the model file, not in the arena.
* In-place ops. RESHAPE, SQUEEZE, EXPAND_DIMS and BITCAST always, SOFTMAX, ADD, SUB, MUL, DIV and
  DYNAMIC_UPDATE_SLICE when that input has no other reader and the same size, write their output over an input
  (never a graph input, never into a graph output): the two tensors are one buffer.
* Persistent arena. DENSIFY's output, a VAR_HANDLE's, and the output of a DEQUANTIZE of a constant (float16 and
  sparse weights expanded once) go to a second arena where nothing is ever freed.
* Folded and dynamic tensors. SHAPE's output, and what some ops compute from constants at Prepare, live on the
  heap; so do outputs whose size depends on the data. LiteRT plans the graph in chunks cut after such ops (and
  after a RESHAPE whose shape the graph computes), each chunk sorted and placed on its own.
* Placement. In each chunk, tensors alive for the whole run first (by index), then the others largest first
  (equal sizes by the node that allocates them; remaining ties as libstdc++'s std::sort leaves them, see
  cxx_sort); each goes into the smallest gap, between tensors alive at the same time, that holds it, at a 64-byte
  aligned offset (kDefaultTensorAlignment); the arena is the highest end.

What no Python API lets us place is not counted: op temporaries (the im2col buffer of a builtin convolution,
which LiteRT puts in the same arena at its node, shifting other tensors; the agent reports the ones it can see as
``temporaries_bytes``), a delegate's own buffers (XNNPACK's packed weights and workspace), resource variables'
data (streaming state; ``inspect`` counts it apart) and, on the agent, variable tensors (the interpreter does not
say which tensors are variables). tests/test_agent_arena.py checks every offset against the tensor addresses
LiteRT really uses, on MobileNetV2 and on third-party models.

Python 3.8 and the standard library only: the host imports this module too (``edgeprof.tflite.arena``).
"""

ALIGNMENT = 64  # LiteRT's kDefaultTensorAlignment
FOREVER = 2**31 - 1  # kNodeNotAssigned: a tensor that is never freed
MAX_SHARABLE_INPUTS = 3  # kTfLiteMaxSharableOpInputs
SCALAR_BYTES = 4  # kScalarTensorBytes: tensors this small are never shared
RESOURCE_BYTES = 4  # a resource tensor (a variable's handle) holds an int32 id

# Builtin kernels registered with an inplace_operator: op -> (inputs that may share the output's buffer, whether the
# op changes the data). "Data unmodified" ops share even when the input has other readers.
IN_PLACE = {
    "RESHAPE": ((0,), False),
    "SQUEEZE": ((0,), False),
    "EXPAND_DIMS": ((0,), False),
    "BITCAST": ((0,), False),
    "SOFTMAX": ((0,), True),
    "DYNAMIC_UPDATE_SLICE": ((0,), True),
    "ADD": ((0, 1), True),
    "SUB": ((0, 1), True),
    "MUL": ((0, 1), True),
    "DIV": ((0, 1), True),
}

# Kernels that compute their output once at Prepare when every input is a constant (or was itself computed so).
FOLDABLE = ("CONCATENATION", "GATHER", "MUL", "RANGE", "TILE", "BROADCAST_ARGS")
# Kernels whose output size depends on the data: heap-allocated when they run, and the plan is cut after them.
DYNAMIC_OUTPUT = ("WHERE", "UNIQUE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5")

METHOD = (
    "LiteRT's arena plan replayed (lifetimes by reference count, in-place ops, largest first into the best-fitting "
    "gap, 64-byte aligned) over the execution plan; op temporaries and delegate-private buffers are not counted"
)


def aligned(size):
    return (int(size) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


class Node(object):
    """One node of an execution plan: an op name (``DELEGATE`` for a delegate kernel) and tensor indices (-1: none)."""

    __slots__ = ("inputs", "op", "outputs")

    def __init__(self, op, inputs, outputs):
        self.op = str(op)
        self.inputs = [int(t) for t in inputs]
        self.outputs = [int(t) for t in outputs]


class Allocation(object):
    __slots__ = ("arena", "first", "last", "offset", "size", "tensor")

    def __init__(self, tensor, offset, size, first, last, arena="arena"):
        self.tensor = tensor
        self.offset = offset
        self.size = size
        self.first = first
        self.last = last  # FOREVER when never freed
        self.arena = arena  # "arena" or "persistent"

    def overlaps_in_time(self, other):
        return self.first <= other.last and other.first <= self.last

    def __repr__(self):
        return "Allocation(t%d @%d +%d [%d..%s] %s)" % (
            self.tensor,
            self.offset,
            self.size,
            self.first,
            "end" if self.last == FOREVER else self.last,
            self.arena,
        )


class Plan(object):
    """The replayed plan: arena sizes in bytes, each tensor's place, and which tensors share a buffer."""

    def __init__(self, allocations, aliases, persistent, steps):
        self.allocations = allocations  # {tensor: Allocation} for tensors that own a buffer
        self.aliases = aliases  # {tensor: tensor whose buffer it uses} (in-place ops)
        self.persistent = persistent  # tensors in the persistent arena
        self.steps = steps
        arena = [a for a in allocations.values() if a.arena == "arena"]
        kept = [a for a in allocations.values() if a.arena == "persistent"]
        self.bytes = max([a.offset + a.size for a in arena] or [0])
        self.persistent_bytes = max([a.offset + a.size for a in kept] or [0])
        self.no_reuse_bytes = sum(aligned(a.size) for a in arena)
        live = [0] * max(steps, 1)
        for a in arena:
            for step in range(a.first, min(a.last, steps - 1) + 1):
                live[step] += a.size
        self.peak_live_bytes = max(live or [0])  # the lower bound no placement can beat

    def offset(self, tensor):
        """Where ``tensor``'s data starts (its own buffer or the one it shares), or None if it has none."""
        found = self.allocations.get(self.aliases.get(tensor, tensor))
        return None if found is None else found.offset

    def to_dict(self):
        return {
            "bytes": self.bytes,
            "peak_live_bytes": self.peak_live_bytes,
            "no_reuse_bytes": self.no_reuse_bytes,
            "persistent_bytes": self.persistent_bytes,
            "tensors": len([a for a in self.allocations.values() if a.arena == "arena"]),
            "shared_in_place": len(self.aliases),
            "steps": self.steps,
        }


def persistent_outputs(nodes, constants):
    """Tensors LiteRT keeps in the persistent arena: DENSIFY's output, a VAR_HANDLE's (a variable's id), and
    DEQUANTIZE's when its input is constant (a DEQUANTIZE after a DENSIFY reads a persistent tensor, not a constant:
    it runs every time, in the arena)."""
    kept = set()
    for node in nodes:
        source = node.inputs[0] if node.inputs else -1
        if node.op in ("DENSIFY", "VAR_HANDLE") or (node.op == "DEQUANTIZE" and source in constants):
            kept.update(t for t in node.outputs if t >= 0)
    return kept


def _known(t, constants, folded):
    return t < 0 or t in constants or t in folded


def prepare_time(nodes, constants):
    """``(folded, dynamic, breaks)`` as the kernels' Prepare decides them.

    folded: outputs computed once at Prepare from constant inputs and kept on the heap (kTfLitePersistentRo), not in
    the arena: SHAPE and RANK always, and the ops of ``FOLDABLE`` when their inputs are constants or folded.
    dynamic: outputs whose size is known only when the op runs (heap, not arena). breaks: nodes after which LiteRT
    stops preparing and plans the rest of the graph at the first invoke, as a separate chunk; a RESHAPE whose shape
    is computed by the graph is one (its output still lives in the arena).
    """
    folded, dynamic, breaks = set(), set(), set()
    for step, node in enumerate(nodes):
        ins = node.inputs
        outs = [t for t in node.outputs if t >= 0]
        if node.op in ("SHAPE", "RANK"):
            folded.update(outs)
        elif node.op == "RESHAPE":
            shape_known = len(ins) < 2 or _known(ins[1], constants, folded)
            if not shape_known:
                breaks.add(step)
            elif ins and _known(ins[0], constants, folded):
                folded.update(outs)
        elif node.op == "STRIDED_SLICE":
            if not all(_known(t, constants, folded) for t in ins[1:4]):
                dynamic.update(outs)
                breaks.add(step)
            elif all(_known(t, constants, folded) for t in ins[:3]):
                folded.update(outs)
        elif node.op in FOLDABLE and ins and all(_known(t, constants, folded) for t in ins):
            folded.update(outs)
        elif node.op in DYNAMIC_OUTPUT:
            dynamic.update(outs)
            breaks.add(step)
    return folded, dynamic, breaks


def plan(nodes, sizes, inputs, outputs, variables=(), constants=()):
    """Replay LiteRT's plan of one subgraph.

    ``nodes``: Node list in execution order; ``sizes``: bytes of every non-constant tensor the nodes use;
    ``constants``: tensors whose data is in the model (weights), which the arena does not hold.
    """
    constants = set(constants)
    inputs = [t for t in inputs if t >= 0]
    outputs = [t for t in outputs if t >= 0]
    kept = persistent_outputs(nodes, constants)
    folded, dynamic, breaks = prepare_time(nodes, constants)
    off_arena = constants | folded | dynamic

    def arena_rw(t):
        return t not in off_arena and t not in kept

    refs = {}
    alloc, free = {}, {}
    by_node = [[] for _ in range(max(len(nodes), 1))]

    def allocate(step, t):
        if t not in alloc:
            alloc[t] = step
            by_node[step].append(t)

    for t in outputs:
        refs[t] = refs.get(t, 0) + 1
    for t in variables:
        refs[t] = refs.get(t, 0) + 1
        allocate(0, t)
    for t in inputs:
        refs[t] = refs.get(t, 0) + 1
        allocate(0, t)
    counts = dict(refs)  # before the nodes' reads: what decides when a buffer is free
    for node in nodes:
        for t in node.inputs:
            if t >= 0:
                refs[t] = refs.get(t, 0) + 1

    aliases = _in_place(nodes, sizes, refs, set(inputs), set(outputs), arena_rw)

    def root(t):
        return aliases.get(t, t)

    for node in nodes:
        for t in node.inputs:
            if t >= 0:
                counts[root(t)] = counts.get(root(t), 0) + 1
    for step, node in enumerate(nodes):
        for t in node.outputs:
            if t >= 0:
                allocate(step, t)
        for t in node.inputs:
            if t < 0:
                continue
            r = root(t)
            counts[r] -= 1
            if counts[r] == 0 and r in alloc and r not in free:
                free[r] = step

    def order(t):
        if alloc[t] == 0 and t not in free:  # alive for the whole run: first, by index
            return (0, t, 0)
        return (1, -sizes.get(t, 0), alloc[t])  # equal keys: std::sort decides (see cxx_sort)

    def before(a, b):  # ArenaPlanner::CreateTensorAllocationVector's comparison
        return order(a) < order(b)

    allocations, arena, persistent = {}, [], []
    first = 0
    for last in sorted(breaks | {len(by_node) - 1}):
        # Each chunk of nodes LiteRT prepares together is placed together (ArenaPlanner::ExecuteAllocations).
        chunk = [t for step in range(first, last + 1) for t in hash_set_order(by_node[step])]
        chunk = [t for t in chunk if (arena_rw(t) or t in kept) and sizes.get(t, 0) > 0]
        for t in cxx_sort(chunk, before):
            if t in aliases:  # shares its input's buffer
                continue
            size = int(sizes[t])
            if t in kept:
                allocations[t] = _place(persistent, t, size, alloc[t], FOREVER, "persistent")
            else:
                allocations[t] = _place(arena, t, size, alloc[t], free.get(t, FOREVER), "arena")
        first = last + 1
    return Plan(allocations, aliases, kept, len(nodes))


# libstdc++'s bucket counts (_Prime_rehash_policy): 13 on the first insertion, then the next listed prime.
_BUCKETS = (13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127)


def hash_set_order(values):
    """The iteration order of a libstdc++ ``std::unordered_set<int>`` filled with ``values`` in this order.

    ArenaPlanner keeps each node's tensors in such a set (nodes_to_tensors_) and hands them to std::sort in that
    order, which decides where equal tensors land. An element whose bucket is empty goes to the front of the list,
    otherwise in front of its bucket's first element; the set rehashes (re-inserting in list order) when it would
    hold more elements than buckets. Beyond the bucket counts known here, index order.
    """
    order, buckets = [], 0
    for value in values:
        if len(order) + 1 > buckets:
            bigger = [b for b in _BUCKETS if b >= max(len(order) + 2, 2 * buckets)] if buckets else [13]
            if not bigger:
                return sorted(values)
            buckets = bigger[0]
            order = _rehash(order, buckets)
        order = _insert(order, value, buckets)
    return order


def _insert(order, value, buckets):
    bucket = value % buckets
    for i, other in enumerate(order):
        if other % buckets == bucket:
            return order[:i] + [value] + order[i:]
    return [value] + order


def _rehash(order, buckets):
    fresh = []
    for value in order:
        fresh = _insert(fresh, value, buckets)
    return fresh


def cxx_sort(items, less):
    """``std::sort`` as libstdc++ does it (introsort, median-of-three pivot, insertion sort below 16 elements).

    LiteRT sorts the tensors to place with std::sort, which is not stable: tensors of equal size allocated by the
    same node (the outputs of a SPLIT, say) come out in the order this exact algorithm gives them, and that order
    moves other tensors. Replaying it makes the plan the one LiteRT's Linux and macOS builds make; an Android build
    (libc++) may order such ties differently.
    """
    a = list(items)
    n = len(a)
    if n > 1:
        depth = 2 * (n.bit_length() - 1)
        _introsort(a, 0, n, depth, less)
        if n > _THRESHOLD:
            _insertion_sort(a, 0, _THRESHOLD, less)
            for i in range(_THRESHOLD, n):
                _linear_insert(a, i, less)
        else:
            _insertion_sort(a, 0, n, less)
    return a


_THRESHOLD = 16


def _introsort(a, first, last, depth, less):
    while last - first > _THRESHOLD:
        if depth == 0:
            _heap_sort(a, first, last, less)
            return
        depth -= 1
        mid = first + (last - first) // 2
        _median_to_first(a, first, first + 1, mid, last - 1, less)
        cut = _partition(a, first + 1, last, first, less)
        _introsort(a, cut, last, depth, less)
        last = cut


def _median_to_first(a, result, x, y, z, less):
    if less(a[x], a[y]):
        if less(a[y], a[z]):
            pick = y
        elif less(a[x], a[z]):
            pick = z
        else:
            pick = x
    elif less(a[x], a[z]):
        pick = x
    elif less(a[y], a[z]):
        pick = z
    else:
        pick = y
    a[result], a[pick] = a[pick], a[result]


def _partition(a, first, last, pivot, less):
    while True:
        while less(a[first], a[pivot]):
            first += 1
        last -= 1
        while less(a[pivot], a[last]):
            last -= 1
        if not first < last:
            return first
        a[first], a[last] = a[last], a[first]
        first += 1


def _insertion_sort(a, first, last, less):
    for i in range(first + 1, last):
        if less(a[i], a[first]):
            value = a[i]
            a[first + 1 : i + 1] = a[first:i]
            a[first] = value
        else:
            _linear_insert(a, i, less)


def _linear_insert(a, i, less):
    value = a[i]
    while less(value, a[i - 1]):
        a[i] = a[i - 1]
        i -= 1
    a[i] = value


def _heap_sort(a, first, last, less):
    """std::partial_sort(first, last, last): make_heap, then pop_heap one by one (libstdc++'s __adjust_heap)."""
    length = last - first
    for parent in range((length - 2) // 2, -1, -1):
        _adjust_heap(a, first, parent, length, a[first + parent], less)
    while last - first > 1:
        last -= 1
        value = a[last]
        a[last] = a[first]
        _adjust_heap(a, first, 0, last - first, value, less)


def _adjust_heap(a, first, hole, length, value, less):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _in_place(nodes, sizes, refs, graph_inputs, graph_outputs, arena_rw):
    """{output: input whose buffer it takes}, as ArenaPlanner::IdentifyInPlaceTensors decides."""
    aliases = {}
    for node in nodes:
        spec = IN_PLACE.get(node.op)
        if spec is None or not node.outputs or node.outputs[0] < 0:
            continue
        shareable, changes = spec
        out = node.outputs[0]
        chosen = -1
        for j in range(min(MAX_SHARABLE_INPUTS, len(node.inputs))):
            t = node.inputs[j]
            if t < 0 or j not in shareable:
                continue
            if changes and (sizes.get(t) != sizes.get(out) or sizes.get(t, 0) <= SCALAR_BYTES or refs.get(t, 0) > 1):
                continue
            if t in graph_inputs or out in graph_outputs or not arena_rw(t) or not arena_rw(out):
                continue
            chosen = t
            break
        if chosen < 0:
            continue
        target = aliases.get(chosen, chosen)
        # The buffer written in place is the target's: after a RESHAPE chain it must still be the output's size.
        if changes and (refs.get(target, 0) > 1 or sizes.get(target) != sizes.get(out)):
            continue
        aliases[out] = target
    return aliases


def _place(placed, tensor, size, first, last, arena):
    """SimpleMemoryArena::Allocate: the smallest gap that fits among tensors alive at the same time, else the end.
    ``placed`` is kept sorted by offset."""
    if size == 0:
        return Allocation(tensor, 0, 0, first, last, arena)
    best, best_fit = None, None
    cursor = 0
    for other in placed:
        if other.last < first or other.first > last:
            continue
        start = (cursor + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        if start + size <= other.offset and (best_fit is None or other.offset - start < best_fit):
            best, best_fit = start, other.offset - cursor
        cursor = max(cursor, other.offset + other.size)
        if best_fit == 0:
            break
    if best is None:
        best = (cursor + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
    new = Allocation(tensor, best, size, first, last, arena)
    index = len(placed)
    while index > 0 and placed[index - 1].offset > best:  # std::upper_bound by offset
        index -= 1
    placed.insert(index, new)
    return new


# --- the agent's side: the interpreter's own graph ---------------------------------------------------------------


def _nbytes(detail):
    """Bytes of a tensor from its details. A resource tensor holds a variable's id: 4 bytes (VAR_HANDLE sizes it
    so; the variable's data lives elsewhere)."""
    import numpy as np

    try:
        dtype = np.dtype(detail["dtype"])
    except TypeError:
        return 0
    if dtype.kind == "O":
        return RESOURCE_BYTES
    itemsize = dtype.itemsize
    count = 1
    for d in detail["shape"]:
        count *= max(int(d), 0)
    return count * itemsize


def interpreter_plan(interpreter, graph, delegated=True):
    """The plan of the interpreter's execution plan (after delegation), or of its ops as the file lists them
    (``delegated=False``: every op on a builtin kernel, as ``inspect`` plans it)."""
    details = dict((int(d["index"]), d) for d in interpreter.get_tensor_details())
    ops = graph.plan() if delegated else graph.originals
    nodes = [Node(op["op_name"], op["inputs"], op["outputs"]) for op in ops]
    produced = set(t for node in nodes for t in node.outputs if t >= 0)
    produced_anywhere = set(t for op in graph.originals for t in op["outputs"] if t >= 0)
    used = set(t for node in nodes for t in node.inputs if t >= 0)
    constants = set(t for t in used if t not in produced_anywhere and t not in graph.inputs)
    sizes = dict((t, _nbytes(details[t])) for t in produced | set(graph.inputs) | set(graph.outputs) if t in details)
    return plan(nodes, sizes, graph.inputs, graph.outputs, (), constants)


def estimate(interpreter, graph):
    """The agent's arena figures: the plan of this run (after delegation) and of builtin kernels only."""
    if graph is None:
        return {"available": False, "reason": "this runtime does not expose its op details"}
    try:
        run = interpreter_plan(interpreter, graph, delegated=True)
        builtin = interpreter_plan(interpreter, graph, delegated=False)
    except (KeyError, ValueError, TypeError, IndexError) as exc:  # a graph we cannot follow: say so, measure on
        return {"available": False, "reason": "cannot replay the arena plan: %s: %s" % (type(exc).__name__, exc)}
    result = run.to_dict()
    result.update(
        {
            "available": True,
            "estimate_bytes": run.bytes,  # the figure for this run's configuration
            "builtin_bytes": builtin.bytes,  # every op on builtin kernels: what ``edgeprof inspect`` reports
            "builtin_persistent_bytes": builtin.persistent_bytes,
            "delegated": bool(graph.delegates),
            "plan_nodes": run.steps,
            "method": METHOD,
        }
    )
    result.update(temporaries(interpreter, graph))
    return result


def temporaries(interpreter, graph):
    """Op temporaries the interpreter shows (tensors with a shape that no node reads or writes: im2col buffers and
    the like, made by builtin kernels at Prepare). LiteRT places them in the arena; the replay cannot say where."""
    named = set(graph.inputs) | set(graph.outputs)
    for op in graph.ops:
        named.update(op["inputs"])
        named.update(op["outputs"])
    found = [d for d in interpreter.get_tensor_details() if int(d["index"]) not in named]
    return {"temporaries": len(found), "temporaries_bytes": sum(_nbytes(d) for d in found)}
