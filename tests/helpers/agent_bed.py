"""Run the real agent zipapp under a chosen interpreter and talk to it in JSON lines, as the host does.

Interpreters: this machine's Python 3.11 (ai-edge-litert 2.3, numpy 2), and a Debian bullseye root file system
(Python 3.9.2, glibc 2.31, as on Raspberry Pi OS bullseye) with ai-edge-litert 2.1.0 or tflite-runtime 2.14.0
beside numpy 1.26, or with neither. The bullseye root is built once by scripts/testbed/agent-bullseye.sh and cached
under /var/cache/edgeprof-testbed; the agent runs in it through chroot, inside a private mount namespace that gives
it /proc (for its memory figures) and vanishes with the process.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTBED_SCRIPT = ROOT / "scripts" / "testbed" / "agent-bullseye.sh"


@dataclass
class Interpreter:
    """Where the agent runs: ``python`` inside ``chroot`` (None: this machine)."""

    name: str
    python: str
    chroot: Path | None = None
    expect_runtime: str | None = "ai_edge_litert"
    expect_python: str | None = None
    shared: Path = field(default=Path("/"))  # a folder visible to the agent at the same path inside the chroot

    def place(self, path: Path) -> str:
        """Copy ``path`` where the agent can read it; return the path the agent must use."""
        if self.chroot is None:
            return str(path)
        inside = Path("/tmp/edgeprof-agent-tests") / uuid.uuid4().hex[:8] / path.name
        target = self.chroot / inside.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        return str(inside)

    def outside(self, agent_path: str) -> Path:
        return Path(agent_path) if self.chroot is None else self.chroot / agent_path.lstrip("/")

    def argv(self, agent: str, env: dict[str, str]) -> list[str]:
        if self.chroot is None:
            return [self.python, agent]
        assignments = [f"{k}={v}" for k, v in env.items()]
        script = 'mount -t proc proc "$0/proc" && exec chroot "$0" env -i "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            str(self.chroot),
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "LANG=C.UTF-8",
            *assignments,
            self.python,
            agent,
        ]


class Agent:
    """One agent process; ``call()`` returns the final answer and keeps the events it saw."""

    def __init__(self, interpreter: Interpreter, zipapp: Path, env: dict[str, str] | None = None) -> None:
        self.interpreter = interpreter
        agent_path = interpreter.place(zipapp)
        extra = dict(env or {})
        full_env = {**os.environ, **extra} if interpreter.chroot is None else None
        self.process = subprocess.Popen(
            interpreter.argv(agent_path, extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        self.events: list[dict] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        self._ids = 0

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _pump_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())

    def send_raw(self, line: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self, timeout: float = 300.0) -> dict:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("the agent sent no answer; stderr:\n" + "\n".join(self.stderr[-30:])) from None
            if not line:
                raise AssertionError("the agent exited; stderr:\n" + "\n".join(self.stderr[-30:]))
            message = json.loads(line)  # every stdout line must be protocol JSON
            if "event" in message:
                self.events.append(message)
                continue
            return message

    def call(self, op: str, args: dict | None = None) -> dict:
        self._ids += 1
        answer = self.send_raw(json.dumps({"id": self._ids, "op": op, "args": args or {}}))
        assert answer["id"] == self._ids
        return answer

    def ok(self, op: str, args: dict | None = None) -> dict:
        answer = self.call(op, args)
        assert answer["ok"], answer
        return answer["result"]

    def error(self, op: str, args: dict | None = None) -> dict:
        answer = self.call(op, args)
        assert not answer["ok"], answer
        error = answer["error"]
        assert error["code"] and error["message"] and error["fix"], error
        return error

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.call("bye")
                self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing must not hide a test's own failure
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def host_interpreter() -> Interpreter:
    return Interpreter("host-py311-litert2.3", sys.executable, expect_python=".".join(map(str, sys.version_info[:3])))


def bullseye_root() -> tuple[Path | None, str]:
    """The cached bullseye root (built on first use), or None and the reason it cannot be had here."""
    if os.geteuid() != 0:
        return None, "the bullseye test bed needs root (debootstrap, chroot, mount namespaces)"
    if shutil.which("unshare") is None:
        return None, "unshare (util-linux) is missing"
    done = subprocess.run(["bash", str(TESTBED_SCRIPT)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"the bullseye test bed could not be built: {tail}"
    return Path(done.stdout.strip().splitlines()[-1]), ""


def bullseye_interpreters(root: Path) -> list[Interpreter]:
    return [
        Interpreter("bullseye-py39-litert2.1", "/opt/litert/bin/python", root, "ai_edge_litert", "3.9.2"),
        Interpreter("bullseye-py39-tflite2.14", "/opt/tflite/bin/python", root, "tflite_runtime", "3.9.2"),
    ]


def bare_bullseye(root: Path) -> Interpreter:
    """Python 3.9 with neither numpy nor a runtime: what a fresh Raspberry Pi OS Lite gives."""
    return Interpreter("bullseye-py39-bare", "/usr/bin/python3", root, None, "3.9.2")
