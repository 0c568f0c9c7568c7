"""The ``local`` transport: this machine as a board.

The agent runs as a separate process, exactly as it would on a board, so the local target measures with the same
code, protocol and deployment path as every remote one.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import TransportError
from .base import CommandResult, Process, Transport, UploadProgress, log, shown


class LocalProcess(Process):
    def __init__(self, argv: Sequence[str], cwd: str | None) -> None:
        try:
            self._popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot start {argv[0]}: {exc}", "check the target's python setting") from None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _pump_stderr(self) -> None:
        assert self._popen.stderr is not None
        for line in self._popen.stderr:
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def send(self, data: bytes) -> None:
        assert self._popen.stdin is not None
        try:
            self._popen.stdin.write(data)
            self._popen.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise TransportError("the agent process exited", self.stderr_tail() or "see its stderr") from None

    def readline(self, timeout: float | None) -> bytes:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output within {timeout} s") from None

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def terminate(self) -> None:
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, 15)
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._popen.pid, 9)
                self._popen.wait()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class LocalTransport(Transport):
    kind = "local"

    def __init__(self, cwd: str | None = None) -> None:
        self.cwd = cwd

    def _path(self, remote_path: str) -> Path:
        path = Path(remote_path)
        return path if path.is_absolute() or self.cwd is None else Path(self.cwd) / path

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = 60.0) -> CommandResult:
        started = time.monotonic()
        log.debug("local: run %s", shown(argv))
        try:
            done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, cwd=self.cwd)
        except subprocess.TimeoutExpired:
            raise TransportError(
                f"{argv[0]} did not finish within {timeout} s", "retry, or raise the timeout"
            ) from None
        except OSError as exc:
            raise TransportError(f"cannot run {argv[0]}: {exc}", "check the target's python setting") from None
        log.debug("local: exit %d in %.3f s (%d B out, %d B err)", done.returncode, time.monotonic() - started,
                  len(done.stdout), len(done.stderr))  # fmt: skip
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def start(self, argv: Sequence[str]) -> Process:
        log.debug("local: start %s", shown(argv))
        return LocalProcess(argv, self.cwd)

    def put(self, data: bytes, remote_path: str, progress: UploadProgress | None = None) -> None:
        path = self._path(remote_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        log.debug("local: wrote %d B to %s", len(data), path)
        if progress is not None:
            progress(len(data), len(data))

    def get(self, remote_path: str) -> bytes:
        try:
            return self._path(remote_path).read_bytes()
        except OSError as exc:
            raise TransportError(f"cannot read {remote_path}: {exc}", "the file is missing on the board") from None
