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


def predict_local(tflite: bytes, x: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Outputs of ``tflite`` for ``x`` from the local agent, in its own process."""
    with connect(local_target()) as board:
        remote_model = board.ensure_model(tflite, sha256_bytes(tflite))
        with board.agent() as agent:
            return predict(board, agent, remote_model, x, threads=threads)[0]
