"""The ``adb`` transport: an Android device on USB (or adb over TCP).

Two ways to use a phone:

* **Termux over adb** (kind ``android-termux``, the usual one): Termux's Python, numpy and LiteRT runtime live in
  Termux's private app directory, which ``adb shell`` (user ``shell``) cannot read. So we ``adb forward`` a host port
  to Termux's ``sshd`` (port 8022) and speak SSH through it, with the same host-key checks as any SSH board. The
  known_hosts entry is filed under ``[adb-SERIAL]:8022``, so that the random forwarded port does not matter.
* **adb shell** (any other kind with ``transport = "adb"``): commands run as Android's ``shell`` user, for a Python
  installed somewhere that user can run (e.g. under ``/data/local/tmp``); files go with ``adb push``/``pull``.

Commands are argument lists; ``adb shell`` hands its arguments to the device's ``sh``, so we join them with
:func:`shlex.join` and every argument stays one word.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from ..errors import TransportError
from .base import CommandResult, Process, Transport, UploadProgress, log, shown
from .local import LocalProcess

TERMUX_SSHD_PORT = 8022


def adb_executable() -> str:
    found = shutil.which(os.environ.get("EDGEPROF_ADB", "adb"))
    if found is None:
        raise TransportError(
            "adb is not installed on this machine",
            "install Android's platform tools (Debian: apt install adb) or set $EDGEPROF_ADB",
        )
    return found


class AdbTransport(Transport):
    kind = "adb"

    def __init__(self, serial: str | None = None, *, name: str | None = None, timeout: float = 60.0) -> None:
        self.serial = serial
        self.name = name or serial or "adb"
        self.timeout = timeout

    def _adb(self, *args: str) -> list[str]:
        return [adb_executable(), *(["-s", self.serial] if self.serial else []), *args]

    def _call(self, args: list[str], *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        started = time.monotonic()
        log.debug("adb %s: %s", self.name, shown(args))
        try:
            done = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise TransportError(
                f"adb did not finish within {timeout or self.timeout:.0f} s for {self.name}",
                "check the USB cable and that the device is unlocked ('adb devices')",
            ) from None
        log.debug("adb %s: exit %d in %.3f s", self.name, done.returncode, time.monotonic() - started)
        result = CommandResult(tuple(args), done.returncode, done.stdout, done.stderr)
        text = done.stderr.decode("utf-8", "replace")
        lowered = text.lower()
        if done.returncode != 0 and any(k in lowered for k in ("not found", "offline", "no devices", "unauthorized")):
            raise TransportError(
                f"adb cannot reach {self.name}: {text.strip().splitlines()[-1]}",
                "plug the device in, allow USB debugging, and check 'adb devices'",
            )
        return result

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        # "-T": no pseudo-terminal, so stdout stays byte-exact and the exit status comes back (shell protocol v2).
        done = self._call(self._adb("shell", "-T", shlex.join(argv)), stdin=stdin, timeout=timeout)
        return CommandResult(tuple(argv), done.exit_code, done.stdout, done.stderr)

    def start(self, argv: Sequence[str]) -> Process:
        command = self._adb("shell", "-T", shlex.join(argv))
        log.debug("adb %s: start %s", self.name, shown(command))
        return LocalProcess(command, None)

    def put(self, data: bytes, remote_path: str, progress: UploadProgress | None = None) -> None:
        with tempfile.NamedTemporaryFile(prefix="edgeprof-push-") as handle:
            handle.write(data)
            handle.flush()
            done = self._call(self._adb("push", handle.name, remote_path))
        if not done.ok:
            raise TransportError(
                f"adb push to {self.name} failed: {done.stderr.decode('utf-8', 'replace').strip()}",
                "check free space and the target's workdir",
            )
        if progress is not None:
            progress(len(data), len(data))

    def get(self, remote_path: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="edgeprof-pull-") as folder:
            local = os.path.join(folder, "file")
            done = self._call(self._adb("pull", remote_path, local))
            if not done.ok:
                raise TransportError(f"adb pull from {self.name} failed for {remote_path}", "the file is missing")
            with open(local, "rb") as handle:
                return handle.read()

    def forward(self, remote_port: int) -> int:
        """Forward a free host port to ``remote_port`` on the device; returns the host port."""
        done = self._call(self._adb("forward", "tcp:0", f"tcp:{remote_port}"))
        text = done.stdout.decode().strip()
        if not done.ok or not text.isdigit():
            raise TransportError(
                f"adb forward to {self.name} failed: {done.stderr.decode('utf-8', 'replace').strip()}",
                "check 'adb devices'",
            )
        return int(text)

    def remove_forward(self, local_port: int) -> None:
        with contextlib.suppress(Exception):
            self._call(self._adb("forward", "--remove", f"tcp:{local_port}"), timeout=10)


def termux_over_adb(target: Any, *, timeouts: Any) -> Transport:
    """SSH to Termux's sshd through an adb port forward; the forward is removed when the transport closes."""
    from .ssh import SSHTransport

    adb = AdbTransport(target.serial, name=target.name)
    local_port = adb.forward(target.port or TERMUX_SSHD_PORT)

    class _TermuxSSH(SSHTransport):
        def close(self) -> None:
            try:
                super().close()
            finally:
                adb.remove_forward(local_port)

    return _TermuxSSH(
        f"adb-{target.serial or 'default'}",
        port=target.port or TERMUX_SSHD_PORT,
        user=target.user,
        identity_file=target.identity_file,
        known_hosts=target.known_hosts,
        ssh_config=target.ssh_config,
        proxy_jump="none",
        timeouts=timeouts,
        name=target.name,
        address=("127.0.0.1", local_port),
    )
