"""Predictions from a TFLite model on a board: the agent runs every sample and the host fetches the outputs.

Both the compression engine (the exported model's accuracy, on the ``local`` target so that LiteRT never shares a
process with TensorFlow) and ``profile --eval`` (accuracy on the board) get their outputs here.
"""

from __future__ import annotations

import io
import secrets
from typing import Any

import numpy as np

from .deploy import Board, connect
from .errors import AgentError
from .modelfile import sha256_bytes
from .session import AgentSession
from .targets import local_target


def predict(
    board: Board,
    agent: AgentSession,
    remote_model: str,
    x: np.ndarray,
    *,
    runtime: str | None = None,
    threads: int | None = None,
    delegate: str = "xnnpack",
    delegate_options: dict[str, str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The (dequantised) outputs for every sample of ``x``, and the agent's answer (runtime, delegation)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(x, dtype=np.float32))
    remote_data = board.ensure_data(buffer.getvalue(), ".npy")
    # A name of its own per call, so concurrent predictions on one board never read each other's file.
    remote_out = board.path("out", f"predict-{remote_model.rsplit('/', 1)[-1][:16]}-{secrets.token_hex(6)}.npy")
    answer = agent.call(
        "predict",
        {
            "model": remote_model,
            "inputs": remote_data,
            "output": remote_out,
            "runtime": runtime,
            "threads": threads,
            "delegate": delegate,
            "delegate_options": delegate_options,
        },
        timeout=600 + 0.5 * len(x),
    )
    return np.load(io.BytesIO(board.transport.get(remote_out)), allow_pickle=False), answer


def split_outputs(outputs: np.ndarray, answer: dict[str, Any]) -> list[np.ndarray]:
    """The agent's outputs one array an output, in the model's TFLite output order.

    For a model with several outputs the agent saves them side by side, each flattened per sample, and names their
    shapes in ``output_shapes``.
    """
    shapes = answer.get("output_shapes") or [list(outputs.shape)]
    if len(shapes) == 1:
        return [outputs]
    count = outputs.shape[0]
    parts, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        parts.append(outputs[:, start : start + size].reshape([count, *shape[1:]]))
        start += size
    if start != outputs.shape[1]:
        raise AgentError(
            f"the agent returned {outputs.shape[1]} values a sample for outputs of shapes {shapes}",
            "upgrade the agent on the board (edgeprof targets setup)",
        )
    return parts


def output_order(tflite: bytes, names: list[str]) -> list[int]:
    """For each Keras output name, the position of that output among the TFLite model's outputs.

    The converter orders a model's outputs its own way (its signature sorts them by name), so outputs are matched
    by the names in the model's ``serving_default`` signature, not by position.
    """
    from .tflite import parse

    model = parse(tflite)
    positions = {tensor: i for i, tensor in enumerate(model.main.outputs)}
    for signature in model.signature_defs:
        by_name = {name: positions.get(tensor) for name, tensor in signature.outputs}
        if all(by_name.get(name) is not None for name in names):
            return [int(by_name[name]) for name in names]
    if len(names) == len(positions):
        return list(range(len(names)))
    raise AgentError(
        f"the TFLite model has {len(positions)} outputs, but {len(names)} ({', '.join(names)}) were expected",
        "export every output of the Keras model",
    )


def predict_local(tflite: bytes, x: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Outputs of ``tflite`` for ``x`` from the local agent, in its own process."""
    with connect(local_target()) as board:
        remote_model = board.ensure_model(tflite, sha256_bytes(tflite))
        with board.agent() as agent:
            return predict(board, agent, remote_model, x, threads=threads)[0]


def predict_local_outputs(
    tflite: bytes, x: np.ndarray, *, output_names: list[str] | None = None, threads: int | None = None
) -> list[np.ndarray]:
    """Every output of ``tflite`` for ``x`` from the local agent; in the order of ``output_names`` when given."""
    with connect(local_target()) as board:
        remote_model = board.ensure_model(tflite, sha256_bytes(tflite))
        with board.agent() as agent:
            outputs, answer = predict(board, agent, remote_model, x, threads=threads)
    parts = split_outputs(outputs, answer)
    if output_names is None or len(parts) == 1:
        return parts
    return [parts[i] for i in output_order(tflite, output_names)]
