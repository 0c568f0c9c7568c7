"""What each operator costs and how close it runs to the board's limit: MACs and bytes from the flatbuffer (the same
tables as ``edgeprof inspect``), achieved MAC/s from the measured time, and the fraction of the board's peak.

The peak is the agent's microbenchmark (``edgeprof_agent/peak.py``): the fastest large convolution of each data type
through the profile's own runtime, delegate and threads. An operator's *compute type* is that of its weights (int8
weights run int8 kernels in XNNPACK, also with float activations: dynamic-range quantisation), else of its input;
float16 weights are expanded to float32 at load and count as float32. A model's fraction of peak weighs its MACs by
type: the time its MACs would take at the peak rate of their type, over the time they took.

Bytes moved are the tensors an operator reads and writes, each once (weights at their dense size): the compulsory
traffic, not what the caches really fetch. MACs per byte is the operator's arithmetic intensity on a roofline.
"""

from __future__ import annotations

from edgeprof_agent.record import OperatorCosts, Operators

from ..tflite.macs import op_macs
from ..tflite.reader import Operator, Subgraph, Tensor, TFLiteModel

INT_TYPES = {"INT8": "int8", "UINT8": "int8", "INT4": "int8", "INT16": "int16"}


EXPANDING = ("DEQUANTIZE", "DENSIFY")


def _weight_source(index: int, sg: Subgraph, producers: dict[int, Operator]) -> Tensor | None:
    """The constant behind an input: itself, or the constant a DEQUANTIZE / DENSIFY chain expands once at load."""
    for _ in range(4):
        tensor = sg.tensors[index]
        if tensor.is_constant:
            return tensor
        producer = producers.get(index)
        if producer is None or producer.opcode.name not in EXPANDING or not producer.inputs or producer.inputs[0] < 0:
            return None
        index = producer.inputs[0]
    return None


def _compute_type(op: Operator, sg: Subgraph, producers: dict[int, Operator]) -> str:
    for index in op.inputs:
        source = _weight_source(index, sg, producers) if index >= 0 else None
        if source is not None and len(source.shape) >= 2:
            return INT_TYPES.get(source.dtype, "float32")  # float16 weights are expanded to float32
    first = next((sg.tensors[i] for i in op.inputs if i >= 0 and not sg.tensors[i].is_constant), None)
    return INT_TYPES.get(first.dtype, "float32") if first is not None else "float32"


def _bytes(op: Operator, sg: Subgraph, producers: dict[int, Operator]) -> tuple[int, int]:
    """(weight bytes, activation bytes) the operator reads and writes, each tensor once; weights as the operator
    reads them (float16 weights at their expanded float32 size)."""
    weights = activations = 0
    for index in dict.fromkeys((*op.inputs, *op.outputs)):
        if index < 0:
            continue
        tensor = sg.tensors[index]
        if tensor.is_constant:
            weights += tensor.dense_nbytes
        elif index in op.inputs and _weight_source(index, sg, producers) is not None:
            weights += tensor.nbytes
        else:
            activations += tensor.nbytes
    return weights, activations


def _rate(amount: float | None, ms: float | None) -> float | None:
    if not amount or ms is None or ms <= 0:
        return None
    return amount / (ms / 1e3) / 1e9


def annotate(ops: Operators, model_data: bytes, median_ms: float | None) -> Operators:
    """Add MACs, bytes, rates and fractions of peak to the agent's typed ``ops`` part (in place; also returned).

    ``median_ms`` is the profile's median latency of the whole model: the model's own achieved rate uses it.
    """
    if not ops.available:
        return ops
    model = TFLiteModel.from_bytes(model_data)
    sg = model.main
    producers = {out: op for op in sg.operators for out in op.outputs if out >= 0}
    peak = (ops.peak.gmacs_per_s if ops.peak else None) or {}
    bandwidth = ops.peak.gbytes_per_s if ops.peak else None
    by_type: dict[str, int] = {}
    not_estimated = []
    for row in ops.rows():
        index = row.index
        if index is None or not 0 <= index < len(sg.operators):
            continue
        op = sg.operators[index]
        macs = op_macs(op, sg)
        weights, activations = _bytes(op, sg, producers)
        kind = _compute_type(op, sg, producers)
        total = weights + activations
        if macs is None:
            not_estimated.append(op.opcode.name)
        elif macs:
            by_type[kind] = by_type.get(kind, 0) + macs
        ms = row.ms.median if row.status == "timed" and row.ms is not None else None
        rate, moved = _rate(macs, ms), _rate(total, ms)
        row.set(
            macs=macs,
            weight_bytes=weights,
            activation_bytes=activations,
            compute=kind,
            macs_per_byte=(macs / total) if macs and total else (0.0 if macs == 0 else None),
            gmacs_per_s=rate,
            gbytes_per_s=moved,
            peak_fraction=(rate / peak[kind]) if rate and peak.get(kind) else None,
            bandwidth_fraction=(moved / bandwidth) if moved and bandwidth else None,
        )
    macs_total = sum(by_type.values())
    at_peak_s = sum(m / (peak[k] * 1e9) for k, m in by_type.items() if peak.get(k))
    covered = sum(m for k, m in by_type.items() if peak.get(k))
    ops.set(
        costs=OperatorCosts.build(
            macs=macs_total,
            macs_by_type=by_type,
            macs_not_estimated=sorted(set(not_estimated)),
            median_ms=median_ms,
            gmacs_per_s=_rate(macs_total, median_ms),
            # the time the MACs would take at the peak of their types, over the measured median
            peak_fraction=(at_peak_s * 1e3 / median_ms) if at_peak_s and median_ms and covered == macs_total else None,
            main_type=max(by_type, key=lambda k: by_type[k]) if by_type else None,
            note="MACs of subgraphs other than the main one are not counted" if len(model.subgraphs) > 1 else None,
        )
    )
    return ops
