"""Which weight tensor of the exported .tflite holds which Keras kernel, and the per-layer table built on that.

Tensor names are not a reliable key on their own: the converter names a folded weight after every op that went
into it (a DS-CNN's depthwise weights are called ``model/batch_normalization_1/FusedBatchNormV3;
model/depthwise_conv2d/depthwise;...;model/conv2d_4/Conv2D``), so a name search gave BatchNormalization rows the
conv's figures and ``conv2d_4`` a depthwise tensor. A tensor is attributed to a kernel only when the op and the
stored shape are the ones that kernel converts to, preferring the tensor whose own name mentions the layer; a
kernel with no such tensor is left without TFLite figures rather than given someone else's.
"""

from __future__ import annotations

import re
from typing import Any

from .._table import pct
from .analysis import kernel_variables, layer_stats, unwrap

_NORMALISATION = ("BatchNormalization", "SyncBatchNormalization")


def tflite_form(layer_type: str, kernel: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The op and stored weight shape a Keras kernel becomes in TFLite (None: not one we can recognise)."""
    short = kernel.split("/")[-1]
    if short == "depthwise_kernel":  # (h, w, in, multiplier) or (k, in, multiplier) for 1-D
        *window, channels, multiplier = shape
        window = [1] * (2 - len(window)) + window
        return "DEPTHWISE_CONV_2D", (1, *window, channels * multiplier)
    if short == "pointwise_kernel":  # (1, 1, in, out) or (1, in, out)
        return "CONV_2D", (shape[-1], 1, 1, shape[-2])
    if short == "recurrent_kernel" and layer_type == "LSTM":  # (units, 4 units): four gate tensors
        return "UNIDIRECTIONAL_SEQUENCE_LSTM", (4, shape[0], shape[0])
    if short != "kernel":
        return None
    if layer_type == "LSTM":  # (inputs, 4 units)
        return "UNIDIRECTIONAL_SEQUENCE_LSTM", (4, shape[1] // 4, shape[0])
    if layer_type in ("Conv2DTranspose", "Conv1DTranspose"):  # (h, w, out, in) -> (out, h, w, in)
        *window, out, inputs = shape
        return "TRANSPOSE_CONV", (out, *([1] * (2 - len(window)) + window), inputs)
    if "Conv" in layer_type and len(shape) == 5:
        return "CONV_3D", tuple(shape)
    if "Conv" in layer_type and len(shape) in (3, 4):  # Conv1D is a Conv2D over a height of 1
        *window, inputs, out = shape
        return "CONV_2D", (out, *([1] * (2 - len(window)) + window), inputs)
    if layer_type == "Dense" and len(shape) == 2:
        return "FULLY_CONNECTED", (shape[1], shape[0])
    return None  # GRU and SimpleRNN become WHILE loops, attention becomes several ops: no single tensor


def _tokens(name: str) -> set[str]:
    """Layer names inside a tensor name (QAT names its layers ``quant_<layer>``)."""
    return {re.sub(r"^quant_", "", part) for piece in name.split(";") for part in piece.split("/") if part}


def attribute(model: Any, weights: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(layer name, kernel name) -> index of its row in ``weights`` (from :func:`analysis.tflite_weights`).

    A pair needs the op and shape the kernel converts to. Among those, a tensor named after the layer beats an op
    output named after it, which beats a tensor that names it nowhere; the last is accepted only when the kernel
    and the tensor have no other candidate (an LSTM's gate tensors are called ``arith.constant2``...).
    """
    tensor_tokens = [_tokens(row["tensor"]) for row in weights]
    output_tokens = [_tokens(row["output"]) for row in weights]
    pairs: list[tuple[int, int, str, str]] = []
    for outer in model.layers:
        layer = unwrap(outer)
        for kernel, variable in kernel_variables(outer).items():
            form = tflite_form(type(layer).__name__, kernel, tuple(variable.shape))
            if form is None:
                continue
            for index, row in enumerate(weights):
                if (row["op"], tuple(row["shape"])) != form:
                    continue
                score = 2 if layer.name in tensor_tokens[index] else 1 if layer.name in output_tokens[index] else 0
                pairs.append((score, index, layer.name, kernel))
    per_kernel: dict[tuple[str, str], int] = {}
    per_row: dict[int, int] = {}
    for _, index, name, kernel in pairs:
        per_kernel[(name, kernel)] = per_kernel.get((name, kernel), 0) + 1
        per_row[index] = per_row.get(index, 0) + 1
    matches: dict[tuple[str, str], int] = {}
    taken: set[int] = set()
    for score, index, name, kernel in sorted(pairs, key=lambda p: (-p[0], p[1])):
        if (name, kernel) in matches or index in taken:
            continue
        if score == 0 and (per_kernel[(name, kernel)] > 1 or per_row[index] > 1):
            continue
        matches[(name, kernel)] = index
        taken.add(index)
    return matches


def _producers(model: Any) -> dict[str, list[str]]:
    """Layer name -> the names of the layers feeding it, in this model's graph.

    Read from the model's own nodes: a layer object shared with the models it was cloned from (TF-MOT's strip
    functions reuse them) has inbound nodes from each of them.
    """
    producers: dict[str, list[str]] = {}
    for nodes in getattr(model, "_nodes_by_depth", {}).values():
        for node in nodes:
            inbound = node.inbound_layers
            names = [unwrap(layer).name for layer in (inbound if isinstance(inbound, (list, tuple)) else [inbound])]
            producers.setdefault(unwrap(node.layer).name, []).extend(names)
    return producers


def folded_normalisations(
    model: Any, weights: list[dict[str, Any]], matches: dict[tuple[str, str], int]
) -> dict[str, str]:
    """BatchNormalization layer -> the layer it was folded into: its only producer, whose exported op names it."""
    folded = {}
    feeding = _producers(model)
    for outer in model.layers:
        layer = unwrap(outer)
        if type(layer).__name__ not in _NORMALISATION:
            continue
        producers = feeding.get(layer.name, [])
        if len(producers) != 1:
            continue
        rows = [weights[i] for (name, _), i in matches.items() if name == producers[0]]
        if any(layer.name in _tokens(row["tensor"]) | _tokens(row["output"]) for row in rows):
            folded[layer.name] = producers[0]
    return folded


def layer_table(model: Any, weights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's per-layer rows: Keras figures per kernel and together, and the exported tensor's beside them.

    A layer with two kernels (SeparableConv2D: depthwise and pointwise) has both counted, each named in
    ``kernels``. A BatchNormalization that the converter folded into its conv has no tensor of its own: its row
    says ``tflite_folded_into`` instead of repeating the conv's figures.
    """
    rows = layer_stats(model)
    matches = attribute(model, weights)
    folded = folded_normalisations(model, weights, matches)
    for row in rows:
        if row["name"] in folded:
            row["tflite_folded_into"] = folded[row["name"]]
        kernels = row.get("kernels", [])
        for kernel in kernels:
            index = matches.get((row["name"], kernel["name"]))
            if index is None:
                continue
            stored = weights[index]
            kernel.update(
                tflite_op=stored["op"],
                tflite_tensor=stored["tensor"],
                tflite_dtype=stored["dtype"],
                tflite_sparsity=stored["sparsity"],
                tflite_unique_values=stored["unique_values"],
                tflite_unique_values_scope=stored["unique_values_scope"],
            )
        if kernels and all("tflite_dtype" in k for k in kernels):
            total = sum(k["params"] for k in kernels)
            row.update(
                tflite_dtype="/".join(dict.fromkeys(k["tflite_dtype"] for k in kernels)),
                tflite_sparsity=sum(k["tflite_sparsity"] * k["params"] for k in kernels) / total if total else 0.0,
                tflite_unique_values=max(k["tflite_unique_values"] for k in kernels),
                tflite_unique_values_scope=kernels[0]["tflite_unique_values_scope"],
            )
    return rows


def table_rows(layers: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows for the terminal's layer table; a layer with several kernels gets one line more for each of them."""
    out: list[list[Any]] = []
    for row in layers:
        folded = row.get("tflite_folded_into")
        out.append(
            [
                row["name"],
                row["type"],
                row["params"],
                pct(row.get("sparsity")),
                row.get("unique_values", "-"),
                f"folded into {folded}" if folded else row.get("tflite_dtype", "-"),
                pct(row.get("tflite_sparsity")),
            ]
        )
        kernels = row.get("kernels", [])
        if len(kernels) > 1:
            for kernel in kernels:
                out.append(
                    [
                        f"  {kernel['name']}",
                        "",
                        kernel["params"],
                        pct(kernel["sparsity"]),
                        kernel["unique_values"],
                        kernel.get("tflite_dtype", "-"),
                        pct(kernel.get("tflite_sparsity")),
                    ]
                )
    return out
