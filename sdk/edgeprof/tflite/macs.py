"""Multiply-accumulates per operator, counted from the tensor shapes in the flatbuffer.

MACs are the figure papers and model cards quote (MobileNetV2 1.0 at 224²: 300 M). They are counted the textbook
way: one MAC per weight per output position. Only operators whose cost is dominated by multiply-accumulates have
MACs (convolutions, fully-connected, batch matmul); element-wise arithmetic, pooling, activations and data movement
count 0. Recurrent operators (LSTM, RNN, SVDF) are reported as not estimated rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .reader import Operator, Subgraph

# Recurrent cells have several gates and options the shape alone does not pin down.
NOT_ESTIMATED = frozenset(
    {
        "LSTM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "RNN",
        "UNIDIRECTIONAL_SEQUENCE_RNN",
        "BIDIRECTIONAL_SEQUENCE_RNN",
        "SVDF",
    }
)

MAC_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "TRANSPOSE_CONV",
        "CONV_3D",
        "CONV_3D_TRANSPOSE",
        "BATCH_MATMUL",
    }
)


def _numel(shape: Sequence[int]) -> int:
    return int(np.prod([max(int(d), 1) for d in shape])) if len(shape) else 1


def op_macs(op: Operator, subgraph: Subgraph) -> int | None:
    """MACs of one operator at the model's static shapes (batch 1 where the batch is dynamic); None if unknown."""
    name = op.opcode.name
    if op.opcode.custom or name in NOT_ESTIMATED:
        return None
    if name not in MAC_OPS:
        return 0
    tensors = subgraph.tensors

    def shape(position: int, *, outputs: bool = False) -> tuple[int, ...] | None:
        indices = op.outputs if outputs else op.inputs
        if position >= len(indices) or indices[position] < 0:
            return None
        return tensors[indices[position]].shape

    out = shape(0, outputs=True)
    if out is None:
        return None
    if name == "CONV_2D":
        weights = shape(1)  # [out_channels, kh, kw, in_channels / groups]
        if weights is None or len(weights) != 4:
            return None
        return _numel(out) * weights[1] * weights[2] * weights[3]
    if name == "DEPTHWISE_CONV_2D":
        weights = shape(1)  # [1, kh, kw, out_channels]: one filter per output channel
        if weights is None or len(weights) != 4:
            return None
        return _numel(out) * weights[1] * weights[2]
    if name == "FULLY_CONNECTED":
        weights = shape(1)  # [units, in_features]
        if weights is None or len(weights) != 2:
            return None
        units, features = weights
        rows = _numel(out) // max(units, 1)
        return rows * units * features
    if name == "TRANSPOSE_CONV":
        weights, source = shape(1), shape(2)  # inputs: output_shape, weights [out_c, kh, kw, in_c], input
        if weights is None or source is None or len(weights) != 4:
            return None
        return _numel(source) * weights[0] * weights[1] * weights[2]
    if name == "CONV_3D":
        weights = shape(1)  # [kd, kh, kw, in_channels, out_channels]
        if weights is None or len(weights) != 5:
            return None
        return _numel(out) * weights[0] * weights[1] * weights[2] * weights[3]
    if name == "CONV_3D_TRANSPOSE":
        weights, source = shape(1), shape(2)  # output_shape, weights [kd, kh, kw, out_c, in_c], input
        if weights is None or source is None or len(weights) != 5:
            return None
        return _numel(source) * weights[0] * weights[1] * weights[2] * weights[3]
    if name == "BATCH_MATMUL":
        left = shape(0)
        if left is None or len(left) < 2:
            return None
        adj_x = bool(getattr(op.options, "adjX", False))
        inner = left[-2] if adj_x else left[-1]
        return _numel(out) * inner
    return 0


def subgraph_macs(subgraph: Subgraph) -> list[int | None]:
    """MACs of each operator of ``subgraph``, in execution order."""
    return [op_macs(op, subgraph) for op in subgraph.operators]
