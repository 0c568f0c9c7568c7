"""Read a TFLite flatbuffer into plain Python objects: operators with their versions, tensors with their data.

Built on the schema that ships with ai-edge-litert (``schema_py_generated``), so it follows the real format,
including buffers stored after the flatbuffer in models over 2 GB. Nothing here runs the model.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .sparse import SparseFormat, densify, read_format

TFLITE_IDENTIFIER = b"TFL3"

_NUMPY_TYPES = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "FLOAT64": np.float64,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "INT64": np.int64,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "BOOL": np.bool_,
    "COMPLEX64": np.complex64,
}


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_") and isinstance(value, int)}


@dataclass(frozen=True)
class OpCode:
    name: str  # builtin name (CONV_2D) or the custom op's name
    version: int
    custom: bool = False

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" if not self.custom else f"custom:{self.name}"


@dataclass(frozen=True)
class Quantization:
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass(frozen=True, eq=False)
class Tensor:
    index: int
    name: str
    dtype: str  # TFLite type name: FLOAT32, INT8, ...
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    buffer: int
    quantization: Quantization
    is_variable: bool
    data: np.ndarray | None = None  # constant contents (weights) at their logical shape, None for activations
    sparse: SparseFormat | None = None  # how a sparse constant is stored (its values and index), None if dense

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def itemsize(self) -> int | None:
        numpy_type = _NUMPY_TYPES.get(self.dtype)
        if numpy_type is not None:
            return np.dtype(numpy_type).itemsize
        return {"INT4": None, "STRING": None}.get(self.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes: in the file for a constant (values and index if sparse), else at run time."""
        if self.sparse is not None:
            return self.sparse.stored_bytes
        if self.data is not None:
            return int(self.data.nbytes)
        return self.num_elements * (self.itemsize or 0)

    @property
    def dense_nbytes(self) -> int:
        """Bytes of the logical dense tensor: what a sparse constant becomes once the runtime expands it."""
        return int(self.data.nbytes) if self.data is not None else self.nbytes


@dataclass(frozen=True, eq=False)
class Operator:
    index: int
    opcode: OpCode
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: Any  # the builtin options object (e.g. Conv2DOptionsT), or None


@dataclass(frozen=True, eq=False)
class Subgraph:
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """A signature the converter exported (``serving_default``): public names mapped to tensor indices."""

    key: str
    subgraph: int
    inputs: tuple[tuple[str, int], ...]  # (name, tensor index) in the signature's subgraph
    outputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class TFLiteModel:
    """A parsed .tflite file."""

    schema_version: int
    description: str
    opcodes: tuple[OpCode, ...]
    subgraphs: tuple[Subgraph, ...]
    signatures: tuple[str, ...]
    size_bytes: int
    metadata: dict[str, int] = field(default_factory=dict)  # name -> buffer size
    signature_defs: tuple[Signature, ...] = ()

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    @cached_property
    def op_counts(self) -> dict[OpCode, int]:
        """How many times each (operator, version) is used, over every subgraph."""
        counts: collections.Counter[OpCode] = collections.Counter()
        for subgraph in self.subgraphs:
            for op in subgraph.operators:
                counts[op.opcode] += 1
        return dict(counts)

    @property
    def custom_ops(self) -> list[str]:
        return sorted({code.name for code in self.opcodes if code.custom})

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "model") -> TFLiteModel:
        return parse(data, name=name)

    @classmethod
    def from_file(cls, path: str | Path) -> TFLiteModel:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {path} does not exist", "check the path") from None
        return parse(data, name=str(path))


# A tensor with more elements than this is no real model's (2**40 float32 values would be 4 TiB): a damaged shape.
MAX_ELEMENTS = 2**40


def _shape(values: Any, what: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in (values if values is not None else ()))
    if any(d < -1 for d in shape):
        raise ValueError(f"{what} has a negative dimension {shape}")
    if int(np.prod([max(d, 1) for d in shape], dtype=np.float64)) > MAX_ELEMENTS:
        raise ValueError(f"{what} has an impossible shape {shape}")
    return shape


def _quantization(q: Any, shape: tuple[int, ...], what: str) -> Quantization:
    if q is None or q.scale is None or not len(q.scale):
        return Quantization()
    quant = Quantization(
        tuple(float(s) for s in q.scale),
        tuple(int(z) for z in (q.zeroPoint if q.zeroPoint is not None else ())),
        int(q.quantizedDimension or 0),
    )
    if len(quant.zero_points) not in (0, 1, len(quant.scales)):
        raise ValueError(f"{what} has {len(quant.scales)} scales but {len(quant.zero_points)} zero points")
    if any(abs(z) > 2**31 for z in quant.zero_points):
        raise ValueError(f"{what} has an impossible zero point")
    if quant.per_channel and (not 0 <= quant.axis < len(shape) or shape[quant.axis] != len(quant.scales)):
        raise ValueError(f"{what} has {len(quant.scales)} per-channel scales that do not fit its shape {shape}")
    return quant


def _tensor_data(
    buffer: Any, raw: bytes, dtype: str, shape: tuple[int, ...], sparsity: Any
) -> tuple[np.ndarray | None, SparseFormat | None]:
    """The constant's values at its logical shape, and its sparse storage if it has one."""
    if buffer is None:
        return None, None
    offset, size = int(getattr(buffer, "offset", 0) or 0), int(getattr(buffer, "size", 0) or 0)
    if offset > 1:  # stored after the flatbuffer (models over 2 GB)
        if offset + size > len(raw):
            raise ValueError(f"a buffer ends at byte {offset + size}, past the end of the file ({len(raw)} bytes)")
        blob = np.frombuffer(raw, dtype=np.uint8, count=size, offset=offset)
    elif buffer.data is not None and len(buffer.data):
        blob = np.asarray(buffer.data, dtype=np.uint8)
    else:
        return None, None
    numpy_type = _NUMPY_TYPES.get(dtype)
    if numpy_type is None:
        return blob, None  # INT4, STRING, ...: raw bytes
    values = blob.view(numpy_type)
    if sparsity is not None and (sparsity.traversalOrder is not None or sparsity.dimMetadata):
        fmt = read_format(sparsity, values)
        return densify(fmt, tuple(max(d, 0) for d in shape)), fmt
    if shape and int(np.prod(shape)) == values.size:
        values = values.reshape(shape)
    return values, None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _signature(sig: Any) -> Signature:
    def pairs(maps: Any) -> tuple[tuple[str, int], ...]:
        return tuple((_text(m.name), int(m.tensorIndex)) for m in (maps or []))

    return Signature(_text(sig.signatureKey), int(sig.subgraphIndex or 0), pairs(sig.inputs), pairs(sig.outputs))


def parse(data: bytes, *, name: str = "model") -> TFLiteModel:
    """Parse ``data``; a file that is not a TFLite model, or is damaged, raises :class:`ModelError`."""
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(
            f"{name} is not a TFLite model (no 'TFL3' identifier)",
            "export one with 'edgeprof compress' or tf.lite.TFLiteConverter",
        )
    schema = _schema()
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        opcodes = []
        for code in model.operatorCodes or []:
            builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            if op_names.get(builtin) == "CUSTOM" and custom:
                opcodes.append(OpCode(custom, int(code.version or 1), custom=True))
            else:
                opcodes.append(OpCode(op_names.get(builtin, f"BUILTIN_{builtin}"), int(code.version or 1)))
        buffers = model.buffers or []
        subgraphs = []
        for sg_index, sg in enumerate(model.subgraphs or []):
            tensors = []
            for index, t in enumerate(sg.tensors or []):
                dtype = type_names.get(int(t.type), f"TYPE_{t.type}")
                shape = _shape(t.shape, f"tensor {index} of subgraph {sg_index}")
                signature = (
                    _shape(t.shapeSignature, f"tensor {index} of subgraph {sg_index}")
                    if (t.shapeSignature is not None)
                    else shape
                )
                quant = _quantization(t.quantization, shape, f"tensor {index} of subgraph {sg_index}")
                buffer = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
                values, sparse = _tensor_data(buffer, data, dtype, shape, t.sparsity)
                tensors.append(
                    Tensor(index, _text(t.name), dtype, shape, signature, int(t.buffer), quant, bool(t.isVariable),
                           values, sparse)
                )  # fmt: skip
            count = len(tensors)

            def checked(indices: Any, what: str, *, optional: bool = False, count: int = count) -> tuple[int, ...]:
                found = tuple(int(i) for i in (indices if indices is not None else ()))
                if any(not (-1 if optional else 0) <= i < count for i in found):
                    raise ValueError(f"{what} refers to a missing tensor")
                return found

            operators = []
            for index, op in enumerate(sg.operators or []):
                if not 0 <= op.opcodeIndex < len(opcodes):
                    raise ValueError(f"operator {index} refers to a missing operator code")
                ins = checked(op.inputs, f"operator {index}", optional=True)
                outs = checked(op.outputs, f"operator {index}", optional=True)
                operators.append(Operator(index, opcodes[op.opcodeIndex], ins, outs, op.builtinOptions))
            subgraphs.append(
                Subgraph(
                    _text(sg.name),
                    tuple(tensors),
                    tuple(operators),
                    checked(sg.inputs, f"subgraph {sg_index}'s inputs"),
                    checked(sg.outputs, f"subgraph {sg_index}'s outputs"),
                )
            )
        if not subgraphs:
            raise ValueError("no subgraphs")
        signature_defs = tuple(_signature(s) for s in (model.signatureDefs or []))
        for sig in signature_defs:
            if not 0 <= sig.subgraph < len(subgraphs) or any(
                not 0 <= i < len(subgraphs[sig.subgraph].tensors) for _name, i in (*sig.inputs, *sig.outputs)
            ):
                raise ValueError(f"signature {sig.key!r} refers to a missing subgraph or tensor")
        signatures = tuple(s.key for s in signature_defs)
        metadata = {}
        for entry in model.metadata or []:
            key = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
            buffer = buffers[entry.buffer] if entry.buffer < len(buffers) else None
            metadata[key] = len(buffer.data) if buffer is not None and buffer.data is not None else 0
        description = model.description.decode() if isinstance(model.description, bytes) else (model.description or "")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer fails in many ways
        raise ModelError(
            f"{name} is a damaged TFLite model ({type(exc).__name__}: {exc})",
            "the file is probably truncated; copy or export it again",
        ) from None
    return TFLiteModel(
        int(model.version or 0),
        description,
        tuple(opcodes),
        tuple(subgraphs),
        signatures,
        len(data),
        metadata,
        signature_defs,
    )
