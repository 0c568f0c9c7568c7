"""Know a model before running it: operators, signatures, weights, MACs, arena and which runtimes load it.

inspection = inspect_model("model.tflite")
print(inspection.summary())

Everything comes from the flatbuffer; nothing is executed, so it works for models no local runtime can load.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _table
from ..modelfile import sha256_bytes
from . import arena, macs, state
from .reader import Operator, Subgraph, Tensor, TFLiteModel, parse

WEIGHT_TYPES = frozenset({"FLOAT32", "FLOAT16", "INT8", "UINT8", "INT16", "INT4", "BFLOAT16"})
# Operators that expand a constant once at load time; the weights they expand belong to the operator that reads them.
EXPANDING_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})
COMPAT_UNAVAILABLE = "unknown (compat table not available)"

Progress = Callable[[int, int], None]


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: list[int]  # -1 marks a dynamic dimension (from the shape signature)
    scale: list[float] | None = None
    zero_point: list[int] | None = None

    @classmethod
    def of(cls, tensor: Tensor, name: str | None = None) -> TensorInfo:
        q = tensor.quantization
        return cls(
            name or tensor.name,
            tensor.dtype,
            list(tensor.shape_signature or tensor.shape),
            list(q.scales) if q.scales else None,
            list(q.zero_points) if q.scales else None,
        )

    def text(self) -> str:
        quant = ""
        if self.scale:
            quant = (
                f"  scale {self.scale[0]:.6g} zero point {self.zero_point[0] if self.zero_point else 0}"
                if len(self.scale) == 1
                else f"  per-channel ({len(self.scale)} scales)"
            )
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.shape)}]{quant}"


@dataclass
class Layer:
    """One operator: what it computes and what it stores."""

    subgraph: int
    index: int
    op: str
    version: int
    output: str
    output_shape: list[int]
    macs: int | None
    weight_tensors: int = 0
    weight_params: int = 0
    weight_bytes: int = 0  # as stored in the file: for sparse tensors, the kept values and their index
    weight_gzip_bytes: int = 0
    weight_dense_bytes: int = 0  # once expanded to dense tensors (equal to weight_bytes unless stored sparse)
    weight_format: str | None = None  # "CSR" or "CSR, 1x16 blocks" when a weight is stored sparse
    weight_dtype: str | None = None
    sparsity: float | None = None
    unique_values: int | None = None
    max_unique_per_channel: int | None = None


@dataclass
class Inspection:
    """What ``edgeprof inspect`` reports about one .tflite file."""

    path: str
    sha256: str
    size_bytes: int
    gzip_bytes: int
    schema_version: int
    description: str
    subgraphs: int
    operators: list[dict[str, Any]]  # one row per (op, version): count and MACs
    custom_ops: list[str]
    signatures: list[dict[str, Any]]
    tensor_types: list[dict[str, Any]]
    weights: dict[str, Any]
    layers: list[Layer]
    macs_total: int
    macs_not_estimated: list[str]
    arena: dict[str, Any]
    runtimes: dict[str, Any]
    metadata: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # resource variables and variable tensors: bytes, variables

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "layers"}
        data["layers"] = [vars(layer) for layer in self.layers]
        return data

    def summary(self) -> str:
        lines = [
            f"{self.path}: {_table.size(self.size_bytes)} ({_table.size(self.gzip_bytes)} gzipped), "
            f"sha256 {self.sha256[:12]}, schema v{self.schema_version}, {self.subgraphs} subgraph(s)"
            + (f", by {self.description!r}" if self.description else ""),
            "",
        ]
        for sig in self.signatures:
            lines.append(f"signature {sig['key']!r}:")
            for kind in ("inputs", "outputs"):
                for t in sig[kind]:
                    lines.append(f"  {kind[:-1]:6} {TensorInfo(**t).text()}")
        lines.append("")
        lines.append(
            _table.table(
                ["operator", "version", "count", "MACs", "share"],
                [
                    [
                        row["op"] if not row["custom"] else f"custom:{row['op']}",
                        row["version"],
                        row["count"],
                        _count(row["macs"]),
                        "-"
                        if row["macs"] is None or not self.macs_total
                        else _table.pct(row["macs"] / self.macs_total),
                    ]
                    for row in self.operators
                ],
                align="lrrrr",
            )
        )
        not_estimated = f" (not estimated: {', '.join(self.macs_not_estimated)})" if self.macs_not_estimated else ""
        lines.append(f"total: {_count(self.macs_total)} MACs per inference{not_estimated}")
        if self.custom_ops:
            provided = {op for e in self.runtimes.get("families", {}).values() for op in e.get("needs_xnnpack", [])}
            others = [op for op in self.custom_ops if op not in provided]
            if others:
                lines.append(f"custom ops: {', '.join(others)} (the runtime must register them)")
            if provided:
                lines.append(f"custom ops provided by the XNNPACK delegate: {', '.join(sorted(provided))}")
        lines.append("")
        lines.append(
            _table.table(
                ["tensor type", "constant tensors", "parameters", "bytes", "activations", "activation bytes"],
                [
                    [
                        r["dtype"],
                        r["constant_tensors"],
                        f"{r['parameters']:,}",
                        _table.size(r["bytes"]),
                        r["activation_tensors"],
                        _table.size(r["activation_bytes"]),
                    ]
                    for r in self.tensor_types
                ],
                align="lrrrrr",
            )
        )
        w = self.weights
        lines.append(
            f"weights: {w['parameters']:,} parameters in {w['tensors']} tensors, sparsity "
            f"{_table.pct(w['sparsity'])}, at most {w['max_unique_values'] if w['tensors'] else '-'} "
            "unique values in one tensor"
            + (
                f" and {w['max_unique_per_channel']} in one output channel (per-channel quantisation)"
                if w.get("max_unique_per_channel")
                else ""
            )
        )
        sparse = w.get("sparse_storage") or {}
        if sparse.get("layers"):
            lines.append(
                f"sparse storage ({', '.join(sparse['formats'])}) in {sparse['layers']} layer(s): "
                f"{_table.size(sparse['stored_bytes'])} stored (values and index) for "
                f"{_table.size(sparse['dense_bytes'])} dense; the runtime expands them (DENSIFY) or its kernels read "
                "them as stored. Parameters, sparsity and unique values below are of the dense tensors; bytes marked * "
                "are as stored"
            )
        lines.append("")
        lines.append(
            _table.table(
                ["#", "operator", "output shape", "weights", "bytes", "gzip", "sparsity", "unique", "MACs"],
                [
                    [
                        layer.index if self.subgraphs == 1 else f"{layer.subgraph}:{layer.index}",
                        layer.op,
                        "x".join(str(d) for d in layer.output_shape),
                        f"{layer.weight_params:,}" if layer.weight_params else "",
                        (_table.size(layer.weight_bytes) + (" *" if layer.weight_format else ""))
                        if layer.weight_bytes
                        else "",
                        _table.size(layer.weight_gzip_bytes) if layer.weight_bytes else "",
                        _table.pct(layer.sparsity) if layer.sparsity is not None else "",
                        _unique(layer),
                        _count(layer.macs) if layer.macs else "",
                    ]
                    for layer in self.layers
                ],
                align="rllrrrrrr",
            )
        )
        if self.state.get("variables"):
            variables = self.state["variables"]
            lines.append("")
            lines.append(
                f"state kept between invocations: {len(variables)} variable(s), {_table.size(self.state['bytes'])} "
                "(persistent memory; their initial values are not counted as weights)"
            )
            lines.append(
                _table.table(
                    ["variable", "kind", "type", "bytes", "initial value"],
                    [
                        [
                            v["name"],
                            v["kind"],
                            f"{v['dtype']}[{', '.join(str(d) for d in v['shape'])}]",
                            _table.size(v["nbytes"]),
                            v["initial"],
                        ]
                        for v in variables
                    ],
                    align="lllrl",
                )
            )
        a = self.arena
        lines.append("")
        lines.append(
            f"tensor arena (estimate): {_table.size(a['bytes'])}; at least {_table.size(a['peak_live_bytes'])} "
            f"alive at once, {_table.size(a['no_reuse_bytes'])} without reuse"
            + (
                f", plus {_table.size(a['persistent_bytes'])} kept for the interpreter's lifetime (state, "
                "dequantised and densified weights)"
                if a["persistent_bytes"]
                else ""
            )
        )
        lines.append(f"  {a['method']}")
        lines.append("")
        lines.append("runtimes that can load it (from measured operator tables; older releases are not known):")
        if isinstance(self.runtimes.get("status"), str):
            lines.append(f"  {self.runtimes['status']}")
        else:
            rows = []
            for family, entry in self.runtimes["families"].items():
                known = entry["known"]
                checked = f"{known[0]} only" if len(known) == 1 else f"{len(known)} releases, {known[0]} to {known[-1]}"
                if entry["oldest"] and entry.get("needs_xnnpack"):
                    rows.append([family, f"{entry['oldest']} or newer, with XNNPACK", checked])
                elif entry["oldest"]:
                    rows.append([family, f"{entry['oldest']} or newer", checked])
                else:
                    blocked = "; ".join(entry["blocked_by"][:3]) or "no table"
                    rows.append([family, f"none known ({blocked})", checked])
            lines.append(_table.table(["runtime", "loads it", "releases checked"], rows, align="lll"))
            xnnpack = sorted({op for e in self.runtimes["families"].values() for op in e.get("needs_xnnpack", [])})
            if xnnpack:
                lines.append(
                    f"loadable with XNNPACK (custom op {', '.join(xnnpack)} provided by the delegate): the default "
                    "delegate of these releases; it fails with --delegate none"
                )
        return "\n".join(lines)


def _unique(layer: Layer) -> str:
    """Unique weight values, and per output channel when the weights are quantised per channel."""
    if layer.unique_values is None:
        return ""
    if layer.max_unique_per_channel is not None:
        return f"{layer.unique_values} (≤{layer.max_unique_per_channel}/ch)"
    return str(layer.unique_values)


def _count(value: int | None) -> str:
    """MACs the way people say them: 5.6 M, 301 M, 1.2 G."""
    if value is None:
        return "?"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _zeros(tensor: Tensor, data: np.ndarray) -> np.ndarray:
    """Which weights are zero: for a quantised tensor, those stored as the zero point (per channel if need be)."""
    zps = tensor.quantization.zero_points
    if not zps or not any(zps):
        return data == 0
    if len(zps) == 1 or data.ndim == 0:
        return data == zps[0]
    shape = [1] * data.ndim
    axis = tensor.quantization.axis
    shape[axis] = len(zps)
    return data == np.asarray(zps, dtype=np.int64).reshape(shape)  # int64: a zero point may not fit the data type


def _max_unique_per_channel(tensor: Tensor, data: np.ndarray) -> int | None:
    if not tensor.quantization.per_channel or data.ndim < 2:
        return None
    moved = np.moveaxis(data, tensor.quantization.axis, 0).reshape(data.shape[tensor.quantization.axis], -1)
    if moved.size == 0:
        return 0
    ordered = np.sort(moved, axis=1)  # distinct values per row: 1 + the number of steps in the sorted row
    return int((1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)).max())


def _weight_source(index: int, subgraph: Subgraph, producers: dict[int, Operator]) -> Tensor | None:
    """The constant behind a tensor: itself, or the constant a DEQUANTIZE / DENSIFY chain expands at load time
    (float16 weights: DEQUANTIZE; sparse weights: DENSIFY, then DEQUANTIZE when they are also float16)."""
    for _ in range(4):
        tensor = subgraph.tensors[index]
        if tensor.is_constant:
            return tensor
        producer = producers.get(index)
        if producer is None or producer.opcode.name not in EXPANDING_OPS or not producer.inputs:
            return None
        index = producer.inputs[0]
        if index < 0:
            return None
    return None


def _weight_inputs(
    op: Operator, subgraph: Subgraph, producers: dict[int, Operator], skip: set[int] = frozenset()
) -> list[Tensor]:
    """The constant weight tensors an operator reads, also through the ops that expand them once at load time."""
    found = []
    for index in op.inputs:
        if index < 0:
            continue
        tensor = _weight_source(index, subgraph, producers)
        if tensor is None or tensor.index in skip:
            continue
        if tensor.dtype in WEIGHT_TYPES and len(tensor.shape) >= 2:
            found.append(tensor)
    return found


def _stored(tensor: Tensor) -> bytes:
    """The bytes the file holds for a weight: the kept values and the index of a sparse tensor."""
    if tensor.sparse is None:
        return np.asarray(tensor.data).tobytes()
    parts = [tensor.sparse.values.tobytes()]
    for dim in tensor.sparse.dims:
        parts += [a.tobytes() for a in (dim.segments, dim.indices) if a is not None]
    return b"".join(parts)


def _layers(model: TFLiteModel, progress: Progress | None) -> list[Layer]:
    layers = []
    total = sum(len(sg.operators) for sg in model.subgraphs)
    done = 0
    initialisers = state.initialisers(model)
    for sg_index, subgraph in enumerate(model.subgraphs):
        producers = {out: op for op in subgraph.operators for out in op.outputs}
        skip = {index for sg, index in initialisers if sg == sg_index}
        op_macs = macs.subgraph_macs(subgraph)
        for op, op_mac in zip(subgraph.operators, op_macs, strict=True):
            out = subgraph.tensors[op.outputs[0]] if op.outputs and op.outputs[0] >= 0 else None
            layer = Layer(
                sg_index,
                op.index,
                op.opcode.name,
                op.opcode.version,
                out.name if out else "",
                list(out.shape) if out else [],
                op_mac,
            )
            if op.opcode.name not in EXPANDING_OPS:
                weights = _weight_inputs(op, subgraph, producers, skip)
                if weights:
                    datas = [np.asarray(t.data) for t in weights]
                    layer.weight_tensors = len(weights)
                    layer.weight_params = int(sum(d.size for d in datas))
                    layer.weight_bytes = int(sum(t.nbytes for t in weights))
                    layer.weight_dense_bytes = int(sum(t.dense_nbytes for t in weights))
                    layer.weight_gzip_bytes = len(gzip.compress(b"".join(map(_stored, weights)), 9, mtime=0))
                    formats = sorted({t.sparse.describe() for t in weights if t.sparse is not None})
                    layer.weight_format = "; ".join(formats) or None
                    layer.weight_dtype = weights[0].dtype
                    zeros = sum(int(_zeros(t, d).sum()) for t, d in zip(weights, datas, strict=True))
                    layer.sparsity = zeros / layer.weight_params if layer.weight_params else None
                    layer.unique_values = max(int(np.unique(d).size) for d in datas)
                    per_channel = [_max_unique_per_channel(t, d) for t, d in zip(weights, datas, strict=True)]
                    known = [v for v in per_channel if v is not None]
                    layer.max_unique_per_channel = max(known) if known else None
            layers.append(layer)
            done += 1
            if progress is not None:
                progress(done, total)
    return layers


def _tensor_types(model: TFLiteModel) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    seen_buffers: set[int] = set()
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            row = rows.setdefault(
                tensor.dtype,
                {
                    "dtype": tensor.dtype,
                    "constant_tensors": 0,
                    "parameters": 0,
                    "bytes": 0,
                    "activation_tensors": 0,
                    "activation_bytes": 0,
                },
            )
            if tensor.is_constant:
                row["constant_tensors"] += 1
                if tensor.buffer not in seen_buffers:  # tensors may share one buffer: count its bytes once
                    seen_buffers.add(tensor.buffer)
                    row["parameters"] += int(np.asarray(tensor.data).size)
                    row["bytes"] += tensor.nbytes
            else:
                row["activation_tensors"] += 1
                row["activation_bytes"] += tensor.nbytes
    return sorted(rows.values(), key=lambda r: (-r["bytes"], r["dtype"]))


def _signatures(model: TFLiteModel) -> list[dict[str, Any]]:
    if model.signature_defs:
        result = []
        for sig in model.signature_defs:
            tensors = model.subgraphs[sig.subgraph].tensors
            result.append(
                {
                    "key": sig.key,
                    "subgraph": sig.subgraph,
                    "inputs": [vars(TensorInfo.of(tensors[i], name)) for name, i in sig.inputs],
                    "outputs": [vars(TensorInfo.of(tensors[i], name)) for name, i in sig.outputs],
                }
            )
        return result
    main = model.main  # older converters wrote no signature: the main subgraph's inputs and outputs are the API
    return [
        {
            "key": "(main subgraph, no signature)",
            "subgraph": 0,
            "inputs": [vars(TensorInfo.of(main.tensors[i])) for i in main.inputs],
            "outputs": [vars(TensorInfo.of(main.tensors[i])) for i in main.outputs],
        }
    ]


def _runtimes(model: TFLiteModel) -> dict[str, Any]:
    """Per runtime family: the oldest release known to load the model, the releases checked, and what blocks."""
    try:
        from . import compat
    except ImportError:
        return {"status": COMPAT_UNAVAILABLE}
    oldest = compat.oldest_loaders(model)

    def parse_release(family: str, version: str) -> Any:
        return compat.RuntimeSpec(family, version)

    families = {}
    for family, version in oldest.items():
        known = [r for r in compat.KNOWN_RUNTIMES if r.family == family]
        entry: dict[str, Any] = {"oldest": version, "known": [r.version for r in known], "blocked_by": []}
        if version is None and known:
            entry["blocked_by"] = [issue.reason for issue in compat.unsupported_ops(model, known[-1])]
        # Custom ops only the XNNPACK delegate provides: loadable with XNNPACK on (the default), not with it off.
        entry["needs_xnnpack"] = compat.needs_xnnpack(model, parse_release(family, version)) if version else []
        families[family] = entry
    return {"families": families}


def inspect_model(
    model: str | Path | bytes, *, name: str | None = None, progress: Progress | None = None
) -> Inspection:
    """Inspect a .tflite file (or its bytes); a file that is no TFLite model raises :class:`ModelError`."""
    if isinstance(model, bytes):
        data, path = model, name or "model"
    else:
        from ..modelfile import open_tflite

        _info, data = open_tflite(model)
        path = str(model)
    parsed = parse(data, name=path)
    layers = _layers(parsed, progress)
    by_code: dict[tuple[str, int, bool], dict[str, Any]] = {}
    for layer, op in zip(layers, (op for sg in parsed.subgraphs for op in sg.operators), strict=True):
        key = (op.opcode.name, op.opcode.version, op.opcode.custom)
        row = by_code.setdefault(
            key, {"op": op.opcode.name, "version": op.opcode.version, "custom": op.opcode.custom, "count": 0, "macs": 0}
        )
        row["count"] += 1
        row["macs"] = None if row["macs"] is None or layer.macs is None else row["macs"] + layer.macs
    operators = sorted(by_code.values(), key=lambda r: (-(r["macs"] or 0), -r["count"], r["op"]))
    weight_layers = [layer for layer in layers if layer.weight_params]
    weight_params = sum(layer.weight_params for layer in weight_layers)
    weight_zeros = sum((layer.sparsity or 0.0) * layer.weight_params for layer in weight_layers)
    plan = arena.plan(parsed)
    not_estimated = sorted({layer.op for layer in layers if layer.macs is None})
    sparse_layers = [layer for layer in weight_layers if layer.weight_format]
    variables = state.variables(parsed)
    return Inspection(
        path=path,
        sha256=sha256_bytes(data),
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        schema_version=parsed.schema_version,
        description=parsed.description,
        subgraphs=len(parsed.subgraphs),
        operators=operators,
        custom_ops=parsed.custom_ops,
        signatures=_signatures(parsed),
        tensor_types=_tensor_types(parsed),
        weights={
            "tensors": sum(layer.weight_tensors for layer in weight_layers),
            "parameters": weight_params,
            "sparsity": weight_zeros / weight_params if weight_params else None,
            "max_unique_values": max((layer.unique_values or 0 for layer in weight_layers), default=0),
            "max_unique_per_channel": max((layer.max_unique_per_channel or 0 for layer in weight_layers), default=0)
            or None,
            "bytes": sum(layer.weight_bytes for layer in weight_layers),
            "dense_bytes": sum(layer.weight_dense_bytes for layer in weight_layers),
            "sparse_storage": {
                "layers": len(sparse_layers),
                "formats": sorted({layer.weight_format for layer in sparse_layers if layer.weight_format}),
                "stored_bytes": sum(layer.weight_bytes for layer in sparse_layers),
                "dense_bytes": sum(layer.weight_dense_bytes for layer in sparse_layers),
            },
        },
        layers=layers,
        macs_total=sum(layer.macs or 0 for layer in layers),
        macs_not_estimated=not_estimated,
        arena={
            **plan.to_dict(),
            "method": arena.METHOD + " (every op on a builtin kernel, no delegate)",
        },
        runtimes=_runtimes(parsed),
        metadata=dict(parsed.metadata),
        state={
            "bytes": sum(v.nbytes for v in variables),
            "initialiser_bytes": sum(parsed.subgraphs[sg].tensors[i].nbytes for sg, i in state.initialisers(parsed)),
            "variables": [v.to_dict() for v in variables],
        },
    )
