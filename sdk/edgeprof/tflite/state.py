"""State a model keeps between invocations: resource variables and variable tensors.

Streaming models (keyword spotters built with kws_streaming or microWakeWord, stateful RNNs) keep their past frames
in resource variables: ``VAR_HANDLE`` names a variable, ``READ_VARIABLE`` / ``ASSIGN_VARIABLE`` use it, and a
``CALL_ONCE`` in the main subgraph runs an init subgraph whose ``ASSIGN_VARIABLE`` ops store each variable's first
value from a constant (usually zeros). Those constants are initial state, not weights: counted as weights they add
parameters and a false "sparsity". The variables live outside the tensor arena for the interpreter's lifetime, so
they are persistent memory. Older graphs keep state in variable tensors (``is_variable``, e.g. LSTM and SVDF state).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .reader import Subgraph, Tensor, TFLiteModel


@dataclass(frozen=True)
class StateVariable:
    name: str
    kind: str  # "resource variable" or "variable tensor"
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    initial: str  # "zeros", "constant", "set by the graph" or "none"
    subgraphs: tuple[int, ...]  # where it is used

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["subgraphs"] = list(self.subgraphs)
        return data


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _handle_names(subgraph: Subgraph) -> dict[int, str]:
    """Resource tensor index -> the variable's name (container/shared_name, what ties subgraphs together)."""
    names = {}
    for op in subgraph.operators:
        if op.opcode.name == "VAR_HANDLE" and op.outputs and op.outputs[0] >= 0:
            options = op.options
            container = _text(getattr(options, "container", b""))
            shared = _text(getattr(options, "sharedName", b"")) or subgraph.tensors[op.outputs[0]].name
            names[op.outputs[0]] = f"{container}/{shared}" if container else shared
    return names


def _initial(tensor: Tensor) -> str:
    if tensor.data is None:
        return "set by the graph"
    zero_points = tensor.quantization.zero_points
    zero = zero_points[0] if zero_points and len(set(zero_points)) == 1 else 0
    return "zeros" if bool(np.all(np.asarray(tensor.data) == zero)) else "constant"


def initialisers(model: TFLiteModel) -> set[tuple[int, int]]:
    """(subgraph, tensor) of every constant that only gives a resource variable its value: not a weight."""
    found = set()
    for sg_index, subgraph in enumerate(model.subgraphs):
        for op in subgraph.operators:
            value = op.inputs[1] if op.opcode.name == "ASSIGN_VARIABLE" and len(op.inputs) > 1 else -1
            if value >= 0 and subgraph.tensors[value].is_constant:
                found.add((sg_index, value))
    return found


def variables(model: TFLiteModel) -> list[StateVariable]:
    """Every resource variable (sized from the values assigned to or read from it) and variable tensor."""
    shapes: dict[str, Tensor] = {}
    initial: dict[str, str] = {}
    used: dict[str, set[int]] = {}
    for sg_index, subgraph in enumerate(model.subgraphs):
        names = _handle_names(subgraph)
        for name in names.values():
            used.setdefault(name, set()).add(sg_index)
        for op in subgraph.operators:
            if op.opcode.name == "ASSIGN_VARIABLE" and len(op.inputs) > 1 and op.inputs[0] in names:
                value = subgraph.tensors[op.inputs[1]]
                name = names[op.inputs[0]]
            elif op.opcode.name == "READ_VARIABLE" and op.inputs and op.inputs[0] in names and op.outputs:
                value = subgraph.tensors[op.outputs[0]]
                name = names[op.inputs[0]]
            else:
                continue
            if name not in shapes or value.num_elements > shapes[name].num_elements:
                shapes[name] = value
            if op.opcode.name == "ASSIGN_VARIABLE":
                if value.is_constant:
                    initial[name] = _initial(value)
                else:
                    initial.setdefault(name, "set by the graph")
    found = []
    for name in sorted(used):
        tensor = shapes.get(name)
        found.append(
            StateVariable(
                name,
                "resource variable",
                tensor.dtype if tensor is not None else "unknown",
                tuple(tensor.shape) if tensor is not None else (),
                tensor.dense_nbytes if tensor is not None else 0,
                initial.get(name, "none"),
                tuple(sorted(used[name])),
            )
        )
    for sg_index, subgraph in enumerate(model.subgraphs):
        for tensor in subgraph.tensors:
            if tensor.is_variable:
                found.append(
                    StateVariable(
                        tensor.name,
                        "variable tensor",
                        tensor.dtype,
                        tuple(tensor.shape),
                        tensor.dense_nbytes,
                        _initial(tensor) if tensor.is_constant else "zeros",
                        (sg_index,),
                    )
                )
    return found
