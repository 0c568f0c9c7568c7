"""Transports: how the host reaches a board (one transport a file: local, ssh, adb)."""

from .base import CommandResult, Process, Transport, UploadProgress
from .local import LocalTransport

__all__ = ["AdbTransport", "CommandResult", "LocalTransport", "Process", "SSHTransport", "Transport", "UploadProgress"]


def __getattr__(name: str) -> object:
    # paramiko costs ~0.2 s to import; the local target never needs it.
    if name == "SSHTransport":
        from .ssh import SSHTransport

        return SSHTransport
    if name == "AdbTransport":
        from .adb import AdbTransport

        return AdbTransport
    raise AttributeError(name)
