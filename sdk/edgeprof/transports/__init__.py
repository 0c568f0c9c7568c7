"""Transports: how the host reaches a board (one transport a file)."""

from .base import CommandResult, Process, Transport
from .local import LocalTransport

__all__ = ["CommandResult", "LocalTransport", "Process", "Transport"]
