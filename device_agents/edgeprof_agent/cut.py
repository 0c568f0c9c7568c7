"""Sub-models cut from a .tflite file: some of its operators, with their real tensors, runnable on their own.

A cut keeps everything of the original file (tensors with their shapes, types and quantisation, operator codes,
every operator's options, the other subgraphs that control-flow operators call) and changes three things in the
main subgraph: its operator list (shortened in place: a vector of tables always precedes the tables it points at,
so the kept operators are still forward of it), and its inputs and outputs (new vectors appended at the end of the
file). Signatures are emptied: they name the full model's tensors. Nothing else is rewritten, so any operator the
runtime can load, custom ones included, can be cut without knowing its options.

The weights of operators a cut does not keep are left out of the written file as holes (a sparse file): a cut of one
convolution from a 14 MB model takes the disk of that convolution's weights plus the flatbuffer's tables.

Python 3.8 and the standard library only.
"""

import os
import struct

from . import flatbuffer as fb

HOLE_MIN = 64 * 1024  # weights smaller than this are written as they are
PAGE = 4096


class Cut(object):
    """Operators ``ops`` of subgraph 0 as a model of their own: ``inputs`` fed, ``outputs`` read."""

    def __init__(self, ops, inputs, outputs, pulled):
        self.ops = ops
        self.inputs = inputs
        self.outputs = outputs
        self.pulled = pulled  # {op index: why it was pulled in with the asked-for operators}


def _producers(sg):
    made = {}
    for op in sg.operators:
        for t in op.outputs:
            if t >= 0:
                made[t] = op
    return made


EXPANSIONS = (fb.BUILTIN["DEQUANTIZE"], fb.BUILTIN["DENSIFY"])


def expansions(sg):
    """Operators that expand constant weights once at load: DEQUANTIZE and DENSIFY whose inputs are constants or
    the outputs of such operators (sparse float16 weights are DENSIFY, then DEQUANTIZE)."""
    found = set()
    derived = set(t.index for t in sg.tensors if t.constant)
    for op in sg.operators:  # execution order: a producer comes before its readers
        if op.code in EXPANSIONS and all(t < 0 or t in derived for t in op.inputs):
            found.add(op.index)
            derived.update(t for t in op.outputs if t >= 0)
    return found


def plan(model, wanted):
    """The cut that runs operators ``wanted`` (indices in subgraph 0) as they run in the model.

    Pulled in with them: the load-time expansions of their weights (DEQUANTIZE of float16, DENSIFY of sparse
    constants), which the runtime computes once and delegates read as weights; and for operators that read a
    resource variable, the VAR_HANDLE that makes its handle and the CALL_ONCE that initialises the variables.
    """
    sg = model.subgraphs[0]
    made = _producers(sg)
    expanding = expansions(sg)
    chosen = set(wanted)
    pulled = {}
    stack = list(wanted)
    while stack:
        op = sg.operators[stack.pop()]
        for t in op.inputs:
            if t < 0 or sg.tensors[t].constant:
                continue
            producer = made.get(t)
            if producer is None or producer.index in chosen:
                continue
            tensor = sg.tensors[t]
            if producer.index in expanding:
                why = "expands op %d's constant weights once at load" % op.index
            elif tensor.type in (fb.RESOURCE, fb.VARIANT):
                why = "makes the resource op %d reads" % op.index
            else:
                continue
            chosen.add(producer.index)
            pulled[producer.index] = why
            stack.append(producer.index)
    if any(sg.operators[i].code == fb.BUILTIN["VAR_HANDLE"] for i in chosen):
        for op in sg.operators:
            if op.code == fb.BUILTIN["CALL_ONCE"] and op.index not in chosen:
                chosen.add(op.index)
                pulled[op.index] = "initialises the resource variables"
    ops = sorted(chosen)
    produced, inputs, seen = set(), [], set()
    for i in ops:
        op = sg.operators[i]
        for t in op.inputs:
            if t >= 0 and t not in produced and t not in seen and not sg.tensors[t].constant:
                seen.add(t)
                if not sg.tensors[t].is_variable:
                    inputs.append(t)
        produced.update(t for t in op.outputs if t >= 0)
    readers = set()
    for op in sg.operators:
        if op.index not in chosen:
            readers.update(t for t in op.inputs if t >= 0)
    outputs = [t for i in ops for t in sg.operators[i].outputs if t >= 0 and (t in readers or t in sg.outputs)]
    if not outputs and ops:
        outputs = [t for t in sg.operators[ops[-1]].outputs if t >= 0]
    return Cut(ops, inputs, outputs, pulled)


def empty(model):
    """A cut with no operator (the model's first input handed straight out): what one invoke costs by itself."""
    sg = model.subgraphs[0]
    tensor = sg.inputs[0] if sg.inputs else None
    if tensor is None:
        raise fb.FormatError("the model has no input")
    return Cut([], [tensor], [tensor], {})


def _patches(model, cut):
    """(position, bytes) patches and the tail to append, which make the cut out of the original file."""
    sg = model.subgraphs[0]
    vector = sg.operators_vector
    if vector is None:
        raise fb.FormatError("the main subgraph has no operator list")
    patches = [(vector, struct.pack("<I", len(cut.ops)))]
    for j, index in enumerate(cut.ops):
        element = vector + 4 + 4 * j
        offset = sg.operators[index].table_pos - element
        if offset <= 0:
            raise fb.FormatError("operator %d is stored before the operator list" % index)
        patches.append((element, struct.pack("<I", offset)))
    if model.signature_defs_vector is not None:
        patches.append((model.signature_defs_vector, struct.pack("<I", 0)))
    tail_start = (model.size + 15) // 16 * 16
    tail = bytearray()
    for field, tensors in ((fb.SUBGRAPH_INPUTS, cut.inputs), (fb.SUBGRAPH_OUTPUTS, cut.outputs)):
        where = sg.table.field_pos(field)
        if where is None:
            raise fb.FormatError(
                "the main subgraph has no %s list" % ("input" if field == fb.SUBGRAPH_INPUTS else "output")
            )
        vector_pos = tail_start + len(tail)
        tail += struct.pack("<I%di" % len(tensors), len(tensors), *tensors)
        patches.append((where, struct.pack("<I", vector_pos - where)))
    return sorted(patches), tail_start, bytes(tail)


def _holes(model, cut):
    """Byte ranges of weights no kept operator reads: left out of the file (zeros, and no disk blocks)."""
    keep = set()
    sg = model.subgraphs[0]
    for i in cut.ops:
        op = sg.operators[i]
        keep.update(sg.tensors[t].buffer for t in op.inputs + op.outputs if t >= 0)
    for other in model.subgraphs[1:]:
        keep.update(t.buffer for t in other.tensors)
    holes = []
    for index, (start, length, offset, size) in enumerate(model.buffers):
        if index in keep:
            continue
        if offset > 1 and size:  # stored after the flatbuffer (models over 2 GB)
            start, length = offset, size
        if start is None or length < HOLE_MIN:
            continue
        low = (start + PAGE - 1) // PAGE * PAGE
        high = min(start + length, model.size) // PAGE * PAGE
        if high > low:
            holes.append((low, high))
    return sorted(holes)


def write(model, source, cut, path):
    """Write the cut to ``path``: ``source`` is the original file's bytes, ``model`` its parse."""
    patches, tail_start, tail = _patches(model, cut)
    holes = _holes(model, cut)
    view = memoryview(source)
    with open(path, "wb") as f:
        pos = 0
        for low, high in holes + [(model.size, model.size)]:
            _write_range(f, view, pos, low, patches)
            if high > low:
                f.seek(high)
            pos = high
        f.truncate(model.size)
        f.seek(model.size)
        f.write(b"\0" * (tail_start - model.size))
        f.write(tail)


def _write_range(f, view, start, end, patches):
    pos = start
    for where, data in patches:
        if where < start or where >= end:
            continue
        f.write(view[pos:where])
        f.write(data)
        pos = where + len(data)
    if pos < end:
        f.write(view[pos:end])


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
