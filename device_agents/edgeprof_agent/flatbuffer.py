"""The parts of a .tflite flatbuffer that cutting sub-models needs, read with ``struct`` alone.

The agent cannot rely on a flatbuffer library on the board: ai-edge-litert ships ``schema_py_generated`` (and
depends on ``flatbuffers``), but tflite-runtime 2.14 and Termux's LiteRT ship neither. So this module reads the few
tables the operator profiler needs (model, subgraphs, tensors, operators, buffers, operator codes) by their field
numbers in LiteRT's ``schema.fbs``, and records *where* each piece sits in the file, so that ``cut.py`` can patch a
copy in place instead of rebuilding a model (which would need every builtin-options table of the schema).

Flatbuffer layout, as far as used here: the file starts with the root table's offset; a table starts with a signed
offset back to its vtable (sizes, then one 16-bit offset per field, 0 when the field is absent); offsets to tables,
vectors and strings are unsigned 32-bit and always point *forward* from where they are stored; a vector is a 32-bit
length followed by its elements.

Python 3.8 and the standard library only.
"""

import struct

# Field numbers in schema.fbs (tensorflow/compiler/mlir/lite/schema/schema.fbs).
MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_BUFFERS, MODEL_SIGNATURE_DEFS = 1, 2, 4, 7
CODE_DEPRECATED_BUILTIN, CODE_CUSTOM, CODE_VERSION, CODE_BUILTIN = 0, 1, 2, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = 0, 1, 2, 3, 4
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_IS_VARIABLE, TENSOR_SHAPE_SIGNATURE = 0, 1, 2, 3, 5, 7
OP_OPCODE_INDEX, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE, OP_OPTIONS = 0, 1, 2, 3, 4
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2

# TensorType values (schema.fbs).
TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
    18: "bfloat16",
}
RESOURCE, VARIANT = 13, 14

# BuiltinOperator values the profiler's rules need, and BuiltinOptions union members holding subgraph indices.
BUILTIN = {
    "CUSTOM": 32,
    "DEQUANTIZE": 6,
    "DENSIFY": 124,
    "IF": 118,
    "WHILE": 119,
    "CALL_ONCE": 129,
    "VAR_HANDLE": 142,
    "READ_VARIABLE": 143,
    "ASSIGN_VARIABLE": 144,
}
# op code -> field numbers of its options table that hold subgraph indices (IfOptions, WhileOptions, CallOnceOptions)
CALLED_SUBGRAPH_FIELDS = {118: (0, 1), 119: (0, 1), 129: (0,)}


class FormatError(ValueError):
    """The file is not a flatbuffer this reader understands (damaged, or laid out unlike the converter's)."""


class Reader(object):
    def __init__(self, data):
        self.data = data
        self.size = len(data)

    def _check(self, pos, length):
        if pos < 0 or pos + length > self.size:
            raise FormatError("offset %d (+%d) is outside the file (%d bytes)" % (pos, length, self.size))

    def unpack(self, fmt, pos):
        self._check(pos, struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos):
        return Table(self, pos)

    def vector(self, pos):
        """(position of the first element, length) of the vector at ``pos``."""
        length = self.unpack("<I", pos)
        return pos + 4, length

    def string(self, pos):
        start, length = self.vector(pos)
        self._check(start, length)
        return bytes(self.data[start : start + length]).decode("utf-8", "replace")


class Table(object):
    def __init__(self, reader, pos):
        self.reader = reader
        self.pos = pos
        vtable = pos - reader.unpack("<i", pos)
        self.vtable = vtable
        self.vtable_size = reader.unpack("<H", vtable)

    def field_pos(self, field):
        """Absolute position of ``field``'s value, or None when the table does not hold it."""
        entry = 4 + 2 * field
        if entry + 2 > self.vtable_size:
            return None
        offset = self.reader.unpack("<H", self.vtable + entry)
        return self.pos + offset if offset else None

    def scalar(self, field, fmt, default=0):
        pos = self.field_pos(field)
        return default if pos is None else self.reader.unpack(fmt, pos)

    def target(self, field):
        """Absolute position of the object an offset field points at, or None."""
        pos = self.field_pos(field)
        return None if pos is None else pos + self.reader.unpack("<I", pos)

    def ints(self, field):
        pos = self.target(field)
        if pos is None:
            return []
        start, length = self.reader.vector(pos)
        self.reader._check(start, 4 * length)
        return list(struct.unpack_from("<%di" % length, self.reader.data, start))

    def tables(self, field):
        """[(position of the element, position of the table it points at)] of a vector of tables."""
        pos = self.target(field)
        if pos is None:
            return []
        start, length = self.reader.vector(pos)
        out = []
        for i in range(length):
            element = start + 4 * i
            out.append((element, element + self.reader.unpack("<I", element)))
        return out

    def string(self, field):
        pos = self.target(field)
        return "" if pos is None else self.reader.string(pos)


class Tensor(object):
    __slots__ = ("buffer", "constant", "index", "is_variable", "name", "shape", "shape_signature", "type")

    @property
    def dtype(self):
        return TYPE_NAMES.get(self.type, "type%d" % self.type)


class Operator(object):
    __slots__ = ("called_subgraphs", "code", "custom", "index", "inputs", "outputs", "table_pos")


class Subgraph(object):
    __slots__ = ("index", "inputs", "name", "operators", "operators_vector", "outputs", "table", "tensors")


class Model(object):
    """What a cut needs to know about a .tflite file, with the positions it patches."""

    def __init__(self, data):
        if len(data) < 8 or bytes(data[4:8]) != b"TFL3":
            raise FormatError("not a TFLite flatbuffer (no 'TFL3' identifier)")
        reader = Reader(data)
        self.size = len(data)
        root = reader.table(reader.unpack("<I", 0))
        self.root = root
        self.codes = []
        for _element, pos in root.tables(MODEL_OPERATOR_CODES):
            code = reader.table(pos)
            builtin = max(code.scalar(CODE_BUILTIN, "<i"), code.scalar(CODE_DEPRECATED_BUILTIN, "<b"))
            custom = code.string(CODE_CUSTOM) if builtin == BUILTIN["CUSTOM"] else None
            self.codes.append((builtin, custom))
        self.buffers = []  # (data start, data length, offset, size)
        for _element, pos in root.tables(MODEL_BUFFERS):
            buf = reader.table(pos)
            data_pos = buf.target(BUFFER_DATA)
            start, length = reader.vector(data_pos) if data_pos is not None else (None, 0)
            self.buffers.append((start, length, buf.scalar(BUFFER_OFFSET, "<Q"), buf.scalar(BUFFER_SIZE, "<Q")))
        self.subgraphs = [self._subgraph(reader, i, pos) for i, (_e, pos) in enumerate(root.tables(MODEL_SUBGRAPHS))]
        if not self.subgraphs:
            raise FormatError("the model has no subgraph")
        signatures = root.target(MODEL_SIGNATURE_DEFS)
        self.signature_defs_vector = signatures  # its length is set to 0 in a cut: signatures name the full graph

    def _subgraph(self, reader, index, pos):
        table = reader.table(pos)
        sg = Subgraph()
        sg.index = index
        sg.table = table
        sg.name = table.string(SUBGRAPH_NAME)
        sg.tensors = []
        for i, (_element, tpos) in enumerate(table.tables(SUBGRAPH_TENSORS)):
            t = reader.table(tpos)
            tensor = Tensor()
            tensor.index = i
            tensor.name = t.string(TENSOR_NAME)
            tensor.type = t.scalar(TENSOR_TYPE, "<b")
            tensor.shape = t.ints(TENSOR_SHAPE)
            tensor.shape_signature = t.ints(TENSOR_SHAPE_SIGNATURE) or list(tensor.shape)
            tensor.buffer = t.scalar(TENSOR_BUFFER, "<I")
            tensor.is_variable = bool(t.scalar(TENSOR_IS_VARIABLE, "<B"))
            tensor.constant = self._has_data(tensor.buffer)
            sg.tensors.append(tensor)
        sg.inputs = table.ints(SUBGRAPH_INPUTS)
        sg.outputs = table.ints(SUBGRAPH_OUTPUTS)
        ops_pos = table.target(SUBGRAPH_OPERATORS)
        sg.operators_vector = ops_pos
        sg.operators = []
        for i, (_element, opos) in enumerate(table.tables(SUBGRAPH_OPERATORS)):
            o = reader.table(opos)
            op = Operator()
            op.index = i
            code_index = o.scalar(OP_OPCODE_INDEX, "<I")
            if code_index >= len(self.codes):
                raise FormatError("operator %d of subgraph %d names a missing operator code" % (i, index))
            op.code, op.custom = self.codes[code_index]
            op.inputs = o.ints(OP_INPUTS)
            op.outputs = o.ints(OP_OUTPUTS)
            op.table_pos = opos
            op.called_subgraphs = []
            fields = CALLED_SUBGRAPH_FIELDS.get(op.code)
            options = o.target(OP_OPTIONS) if fields else None
            if options is not None:
                opts = reader.table(options)
                op.called_subgraphs = [opts.scalar(f, "<i") for f in fields]
            count = len(sg.tensors)
            if any(not -1 <= t < count for t in op.inputs + op.outputs):
                raise FormatError("operator %d of subgraph %d names a missing tensor" % (i, index))
            sg.operators.append(op)
        return sg

    def _has_data(self, buffer):
        if buffer <= 0 or buffer >= len(self.buffers):
            return False
        _start, length, offset, size = self.buffers[buffer]
        return length > 0 or (offset > 1 and size > 0)
