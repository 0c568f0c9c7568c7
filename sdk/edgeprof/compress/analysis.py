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


# The weights pruning and clustering act on, by the last part of their variable name.
KERNEL_NAMES = frozenset({"kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings"})


def kernel_variables(layer: Any) -> dict[str, Any]:
    """Every kernel of a layer (wrapped or not), by a name unique within the layer.

    Most layers have one, ``kernel``; a SeparableConv2D has ``depthwise_kernel`` and ``pointwise_kernel``, an LSTM
    ``kernel`` and ``recurrent_kernel``, a MultiHeadAttention ``query/kernel`` ... ``output/kernel``. Read from the
    variables, so QAT (which swaps the attribute for a fake-quantised tensor) and pruning (which renames the
    variables ``prune_low_magnitude_<layer>/kernel``) do not change the answer.
    """
    paths: list[list[str]] = []
    variables: list[Any] = []
    for variable in layer.weights:
        path = variable.name.split(":")[0].split("/")
        if path[-1] in KERNEL_NAMES and not any(v is variable for v in variables):
            paths.append(path)
            variables.append(variable)
    names = []
    for path in paths:
        for length in range(1, len(path) + 1):  # the shortest ending that no other kernel of the layer shares
            name = "/".join(path[-length:])
            if sum("/".join(other[-length:]) == name for other in paths) == 1:
                break
        names.append(name)
    return dict(zip(names, variables, strict=True))


def _kernel_facts(values: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(values.shape),
        "params": int(values.size),
        "sparsity": float(np.mean(values == 0)) if values.size else 0.0,
        "unique_values": int(np.unique(values).size),
    }


def layer_stats(model: Any) -> list[dict[str, Any]]:
    """Per layer with weights: parameters, and for its kernels (each one, and all together) sparsity and values."""
    rows = []
    for outer in model.layers:
        layer = unwrap(outer)
        if type(layer).__name__ == "QuantizeLayer":
            continue
        weights = layer.get_weights()
        kernels = {name: np.asarray(v.numpy()) for name, v in kernel_variables(outer).items()}
        if not weights and not kernels:
            continue
        params = int(sum(w.size for w in weights))
        for kernel in kernels.values():
            if not any(w.shape == kernel.shape for w in weights):
                params += int(kernel.size)  # QAT moved the kernel into its wrapper
        first = weights[0] if weights else next(iter(kernels.values()))
        row: dict[str, Any] = {
            "name": layer.name,
            "type": type(layer).__name__,
            "params": params,
            "dtype": str(first.dtype),
        }
        if kernels:
            flat = np.concatenate([k.ravel() for k in kernels.values()])
            together = _kernel_facts(flat)
            row.update(
                kernel_params=together["params"],
                sparsity=together["sparsity"],
                unique_values=together["unique_values"],
                kernels=[{"name": name, **_kernel_facts(k)} for name, k in kernels.items()],
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


# Where each op keeps its weights: input positions, stacked into one row per part. An LSTM holds its input and its
# recurrent weights as four gate tensors each (input, forget, cell, output), the Keras kernel and recurrent_kernel.
_WEIGHT_OPS: dict[str, dict[str, tuple[int, ...]]] = {
    "CONV_2D": {"": (1,)},
    "DEPTHWISE_CONV_2D": {"": (1,)},
    "FULLY_CONNECTED": {"": (1,)},
    "TRANSPOSE_CONV": {"": (1,)},
    "CONV_3D": {"": (1,)},
    "UNIDIRECTIONAL_SEQUENCE_LSTM": {"input weights": (1, 2, 3, 4), "recurrent weights": (5, 6, 7, 8)},
}


def _stored(graph: Any, index: int, producers: dict[int, Any]) -> Any:
    """The constant tensor behind an op input; float16 and sparse weights pass a DEQUANTIZE or DENSIFY op."""
    if index < 0:
        return None
    tensor = graph.tensors[index]
    if tensor.data is None and tensor.index in producers:
        producer = producers[tensor.index]
        if producer.opcode.name in ("DEQUANTIZE", "DENSIFY") and producer.inputs:
            tensor = graph.tensors[producer.inputs[0]]
    return tensor if tensor.data is not None else None


def _unique_values(tensor: Any, values: np.ndarray) -> int:
    if tensor.quantization.per_channel and values.ndim:
        axis = tensor.quantization.axis
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        return max(int(np.unique(row).size) for row in channels)
    return int(np.unique(values).size)


def tflite_weights(tflite: bytes) -> list[dict[str, Any]]:
    """The weight tensors of every convolution, fully connected and LSTM op in an exported model, as stored.

    Sparsity counts stored zeros (int8 weights are symmetric, so a zero weight stays 0); unique values are
    counted per output channel when the tensor is quantised per channel, since each channel has its own scale
    (per gate tensor for an LSTM's stacked gates).
    """
    from ..tflite import parse

    model = parse(tflite)
    graph = model.main
    producers = {out: op for op in graph.operators for out in op.outputs}
    rows = []
    for op in graph.operators:
        for part, positions in _WEIGHT_OPS.get(op.opcode.name, {}).items():
            tensors = [_stored(graph, op.inputs[p], producers) if p < len(op.inputs) else None for p in positions]
            if not tensors or any(t is None for t in tensors):
                continue
            arrays = []
            for tensor in tensors:
                values = np.asarray(tensor.data)
                arrays.append(values.view(np.float16) if tensor.dtype == "FLOAT16" else values)
            values = arrays[0] if len(arrays) == 1 else np.stack(arrays)
            per_channel = tensors[0].quantization.per_channel
            rows.append(
                {
                    "op": op.opcode.name,
                    **({"part": part} if part else {}),
                    "tensor": ";".join(t.name for t in tensors) if len(tensors) > 1 else tensors[0].name,
                    "output": graph.tensors[op.outputs[0]].name if op.outputs else "",
                    "dtype": tensors[0].dtype,
                    "shape": list(values.shape),
                    "params": int(values.size),
                    "sparsity": float(np.mean(values == 0)),
                    "unique_values": max(_unique_values(t, v) for t, v in zip(tensors, arrays, strict=True)),
                    "unique_values_scope": "per channel" if per_channel else ("per gate" if part else "tensor"),
                    "per_channel": per_channel,
                }
            )
    return rows
