"""The transport interface: how the host reaches one board.

A transport runs a command, starts a long-running process it can talk to, puts a file and gets a file. Commands
are argument lists, never shell strings: a transport that needs a shell quotes every argument itself, so no model
or target name can ever become a command.
"""

from __future__ import annotations

import logging
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Called as ``progress(bytes_sent, bytes_total)`` while a file goes to the board.
UploadProgress = Callable[[int, int], None]

#: Every remote command, its duration and exit code, every upload and download, at DEBUG (``edgeprof --verbose``).
log = logging.getLogger("edgeprof.transports")


def shown(argv: Sequence[str]) -> str:
    """A command as the board's shell receives it (``shlex.join``), for logs.

    An inline script (a multi-line ``-c`` argument) is cut to its first line and its length, so a log line stays a
    line; every other argument is shown exactly as sent.
    """
    words = []
    for arg in argv:
        if "\n" in arg and len(arg) > 80:
            first = arg.strip().splitlines()[0]
            words.append(shlex.quote(f"{first[:60]}...") + f"<script of {arg.count(chr(10)) + 1} lines>")
        else:
            words.append(shlex.quote(arg))
    return " ".join(words)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class Process(ABC):
    """A command still running on the board, with a line-oriented stdin/stdout."""

    @abstractmethod
    def send(self, data: bytes) -> None:
        """Write to the process's stdin."""

    @abstractmethod
    def readline(self, timeout: float | None) -> bytes:
        """One line of stdout; ``b""`` at end of file. Raises ``TimeoutError`` when none comes in time."""

    @abstractmethod
    def stderr_tail(self) -> str:
        """The last lines the process wrote to stderr, for error messages."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop the process on the board (not just our end of the pipe)."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or ``None`` if it has not exited within ``timeout``."""


class Transport(ABC):
    """One board, reachable."""

    #: Short name for messages and the store: ``local``, ``ssh``, ``adb``.
    kind: str = "abstract"

    @abstractmethod
    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = 60.0) -> CommandResult:
        """Run a command to completion."""

    @abstractmethod
    def start(self, argv: Sequence[str]) -> Process:
        """Start a command and keep talking to it."""

    @abstractmethod
    def put(self, data: bytes, remote_path: str, progress: UploadProgress | None = None) -> None:
        """Write ``data`` to ``remote_path`` (the caller handles atomicity)."""

    @abstractmethod
    def get(self, remote_path: str) -> bytes:
        """Read a file from the board."""

    def close(self) -> None:  # noqa: B027 - most transports hold nothing
        """Release the connection."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
