"""The Keras layer an operator belongs to, read from its output tensor's name.

The LiteRT converter names an operator's output after the TensorFlow ops fused into it, joined by ``;``:
``mobilenetv2_0.35_96/block_1_expand_relu/Relu6;mobilenetv2_0.35_96/block_1_expand/Conv2D``. The first part's layer
(``block_1_expand_relu``: the scope just above the TensorFlow op, also in nested models such as
``model_1/model/zero_padding2d/Pad``) names the operator in tables, and matches the same layer in a compressed child
of the model: TF-MOT's wrappers (``quant_``, ``prune_low_magnitude_``, ``cluster_``) are taken off so that a QAT model's
``quant_conv2d`` lines up with the float model's ``conv2d``.
"""

from __future__ import annotations

WRAPPERS = ("prune_low_magnitude_", "cluster_", "quant_")


def layer_name(tensor_name: str) -> str:
    """A short, stable name for the operator: the Keras layer of its first fused op, else the tensor's name."""
    first = tensor_name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    name = parts[-2] if len(parts) >= 2 else (parts[0] if parts else first)
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPERS:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                changed = True
    return name
