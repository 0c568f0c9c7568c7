"""Per-layer facts about a Keras model's weights: what each step really achieved."""

from __future__ import annotations

from typing import Any

import numpy as np


def unwrap(layer: Any) -> Any:
    """The Keras layer inside a TF-MOT wrapper (QAT's QuantizeWrapper, pruning or clustering wrappers)."""
    while hasattr(layer, "layer") and (
        type(layer).__name__.endswith(("Wrapper", "WrapperV2", "PruneLowMagnitude"))
        or type(layer).__name__.startswith("ClusterWeights")
    ):
        layer = layer.layer
    return layer


def kernel_of(layer: Any) -> np.ndarray | None:
    """The layer's main weight (kernel, depthwise or embedding matrix), the one TF-MOT prunes and clusters."""
    inner = unwrap(layer)
    for attr in ("kernel", "depthwise_kernel", "embeddings"):
        weight = getattr(inner, attr, None)
        if weight is None:
            continue
        try:
            return np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
        except (NotImplementedError, ValueError, TypeError, AttributeError):
            # QAT replaces the attribute with a fake-quantised tensor: read the variable itself.
            for variable in layer.weights:
                if variable.name.split("/")[-1].startswith(attr):
                    return np.asarray(variable.numpy())
    return None


def layer_stats(model: Any) -> list[dict[str, Any]]:
    rows = []
    for outer in model.layers:
        layer = unwrap(outer)
        if type(layer).__name__ == "QuantizeLayer":
            continue
        weights = layer.get_weights()
        kernel = kernel_of(outer)
        if not weights and kernel is None:
            continue
        params = int(sum(w.size for w in weights))
        if kernel is not None and not any(w.shape == kernel.shape for w in weights):
            params += int(kernel.size)  # QAT moved the kernel into its wrapper
        row: dict[str, Any] = {
            "name": layer.name,
            "type": type(layer).__name__,
            "params": params,
            "dtype": str(weights[0].dtype if weights else kernel.dtype),
        }
        if kernel is not None:
            row.update(
                kernel_params=int(kernel.size),
                sparsity=float(np.mean(kernel == 0)),
                unique_values=int(np.unique(kernel).size),
            )
        rows.append(row)
    return rows


def overall_sparsity(rows: list[dict[str, Any]]) -> float:
    """Zeros among all kernel weights (the weights pruning acts on)."""
    total = sum(r.get("kernel_params", 0) for r in rows)
    zeros = sum(r.get("kernel_params", 0) * r.get("sparsity", 0.0) for r in rows)
    return float(zeros / total) if total else 0.0


def m_by_n_fraction(kernel: np.ndarray, m: int, n: int) -> float:
    """Fraction of complete blocks of ``n`` consecutive input-channel weights holding at least ``m`` zeros.

    TF-MOT (and sparse tensor cores) take blocks along the input channels: axis 0 of a Dense kernel
    (inputs, outputs), axis 2 of a Conv2D kernel (h, w, inputs, outputs).
    """
    inputs_last = np.moveaxis(kernel, -2, -1).reshape(-1, kernel.shape[-2])  # rows: one output (and h, w)
    blocks = inputs_last.shape[1] // n
    if blocks == 0:
        return 0.0
    grouped = inputs_last[:, : blocks * n].reshape(inputs_last.shape[0], blocks, n)
    return float(np.mean((grouped == 0).sum(axis=-1) >= m))


_WEIGHT_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1, "CONV_3D": 1}


def tflite_weights(tflite: bytes) -> list[dict[str, Any]]:
    """The weight tensor of every convolution and fully connected op in an exported model, as stored.

    Sparsity counts stored zeros (int8 weights are symmetric, so a zero weight stays 0); unique values are
    counted per output channel when the tensor is quantised per channel, since each channel has its own scale.
    """
    from ..tflite import parse

    model = parse(tflite)
    graph = model.main
    producers = {out: op for op in graph.operators for out in op.outputs}
    rows = []
    for op in graph.operators:
        position = _WEIGHT_OPS.get(op.opcode.name)
        if position is None or len(op.inputs) <= position or op.inputs[position] < 0:
            continue
        tensor = graph.tensors[op.inputs[position]]
        if tensor.data is None and tensor.index in producers:  # float16 / sparse weights pass a DEQUANTIZE op
            producer = producers[tensor.index]
            if producer.opcode.name in ("DEQUANTIZE", "DENSIFY") and producer.inputs:
                tensor = graph.tensors[producer.inputs[0]]
        if tensor.data is None:
            continue
        values = np.asarray(tensor.data)
        if tensor.dtype == "FLOAT16":
            values = values.view(np.float16)
        per_channel = tensor.quantization.per_channel
        if per_channel and values.ndim:
            channels = np.moveaxis(values, tensor.quantization.axis, 0).reshape(
                values.shape[tensor.quantization.axis], -1
            )
            unique = max(int(np.unique(row).size) for row in channels)
        else:
            unique = int(np.unique(values).size)
        rows.append(
            {
                "op": op.opcode.name,
                "tensor": tensor.name,
                "output": graph.tensors[op.outputs[0]].name if op.outputs else "",
                "dtype": tensor.dtype,
                "shape": list(tensor.shape),
                "params": int(values.size),
                "sparsity": float(np.mean(values == 0)),
                "unique_values": unique,
                "unique_values_scope": "per channel" if per_channel else "tensor",
                "per_channel": per_channel,
            }
        )
    return rows


def match_tflite_layer(rows: list[dict[str, Any]], layer_name: str) -> dict[str, Any] | None:
    """The exported weight tensor that belongs to a Keras layer, found by the layer name in the tensor names."""
    import re

    pattern = re.compile(rf"(^|[/;])(quant_)?{re.escape(layer_name)}(/|;|$)")
    for key in ("tensor", "output"):
        for row in rows:
            if pattern.search(row[key]):
                return row
    return None
