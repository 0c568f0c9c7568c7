"""LiteRT's own memory plan, read from the tensor addresses an interpreter really uses, beside the replayed plan.

Usage: python -m tests.helpers.arena_check MODEL.tflite...     one JSON line per model and delegate (xnnpack, none)

Runs in a process of its own: reading the address of a tensor LiteRT did not allocate can crash the interpreter.
After ``allocate_tensors()`` and one ``invoke()``, the data address of every tensor the replay places, minus the
lowest such address, is its offset in LiteRT's arena (each arena is one buffer). Per tensor the line holds our
offset, LiteRT's, the size and our lifetime; ``temporaries`` counts the op temporaries the interpreter shows (im2col
buffers and the like, which LiteRT places in the arena too and the replay does not), ``builtin_bytes`` the agent's
plan of every op on builtin kernels (what ``inspect`` must print for subgraph 0). A model LiteRT cannot run with a
delegate setting gives a line with ``error``.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def check(path: str, delegate: str) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeprof_agent import arena, graph

    kwargs = {}
    if delegate == "none":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(model_path=path, **kwargs)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:  # e.g. a custom op this runtime lacks
        return {"model": path, "delegate": delegate, "error": str(exc).strip().splitlines()[-1]}
    g = graph.read(interpreter)
    plan = arena.interpreter_plan(interpreter, g, delegated=True)
    dtypes = {int(d["index"]): d["dtype"] for d in interpreter.get_tensor_details()}

    def address(t: int) -> int | None:
        """The tensor's data address, or None when it has no array view (resource handles: reading them crashes)."""
        if np.dtype(dtypes[t]).kind == "O":
            return None
        try:
            view = interpreter.tensor(t)()
        except ValueError:  # "Tensor data is null"
            return None
        if not isinstance(view, np.ndarray):
            return None
        try:
            return int(view.__array_interface__["data"][0]) or None
        finally:
            del view

    rows: list[dict] = []
    unread: list[int] = []
    for kind in ("arena", "persistent"):
        owned = [a for a in plan.allocations.values() if a.arena == kind and a.size > 0]
        addresses = {a.tensor: address(a.tensor) for a in owned}
        unread.extend(t for t, at in addresses.items() if at is None)
        addresses = {t: at for t, at in addresses.items() if at is not None}
        if not addresses:
            continue
        base = min(addresses.values())
        for a in owned:
            if a.tensor in addresses:
                row = {"tensor": a.tensor, "arena": kind, "size": a.size, "first": a.first, "last": a.last}
                rows.append({**row, "ours": a.offset, "litert": addresses[a.tensor] - base})
        for alias, target in plan.aliases.items():
            at = address(alias) if target in addresses else None
            if at is not None:
                rows.append(
                    {
                        "tensor": alias,
                        "arena": kind,
                        "alias_of": target,
                        "ours": plan.offset(alias),
                        "litert": at - base,
                    }
                )
    return {
        "model": path,
        "delegate": delegate,
        "delegated": bool(g.delegates),
        "bytes": plan.bytes,
        "persistent_bytes": plan.persistent_bytes,
        "builtin_bytes": arena.interpreter_plan(interpreter, g, delegated=False).bytes,
        "temporaries": arena.temporaries(interpreter, g)["temporaries"],
        "rows": rows,
        "unread": sorted(unread),  # placed by the replay, but with no address to compare (resource handles)
    }


if __name__ == "__main__":
    import faulthandler

    faulthandler.enable()
    for model in sys.argv[1:]:
        for setting in ("xnnpack", "none"):
            print(json.dumps(check(model, setting)), flush=True)
