"""Putting the agent, models and data on a board, content-addressed and atomically.

Files on the board are named by their SHA-256, never by the user's file name, so a hostile name can neither run a
command nor escape the work directory, and an unchanged file is never sent twice. An upload goes to a temporary
name and is renamed only after the board has checked its hash, so a half-sent file is never used.
"""

from __future__ import annotations

import contextlib
import posixpath
import secrets
from collections.abc import Iterator

from ._resources import agent_zipapp
from .errors import TransportError
from .modelfile import sha256_bytes
from .session import AgentSession
from .targets import Target
from .transports.base import Transport

# Small helpers run by the board's own Python, so they need nothing but its standard library.
_PREPARE = "import os,sys\nfor d in sys.argv[1:]:\n    os.makedirs(d, exist_ok=True)\n"
_HASHES = """import hashlib,sys
for p in sys.argv[1:]:
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        print(h.hexdigest())
    except OSError:
        print('-')
"""
_COMMIT = """import hashlib,os,sys
tmp, final, want = sys.argv[1:4]
h = hashlib.sha256()
with open(tmp, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
        h.update(chunk)
if h.hexdigest() != want:
    os.remove(tmp)
    sys.stderr.write('checksum mismatch: got %s, want %s\\n' % (h.hexdigest(), want))
    sys.exit(3)
os.replace(tmp, final)
"""


class Board:
    """One target, connected: deploys files and starts agents on it."""

    def __init__(self, target: Target, transport: Transport) -> None:
        self.target = target
        self.transport = transport
        self.workdir = target.workdir
        self.bytes_sent = 0
        self._prepared = False

    def path(self, *parts: str) -> str:
        return posixpath.join(self.workdir, *parts)

    def python(self, script: str, *args: str, timeout: float = 60.0) -> str:
        result = self.transport.run([self.target.python, "-c", script, *args], timeout=timeout)
        if not result.ok:
            error = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TransportError(
                f"{self.target.name}: {self.target.python} failed ({error[-1] if error else result.exit_code})",
                "check the target's python setting and free disk space on the board",
            )
        return result.text()

    def prepare(self) -> None:
        if not self._prepared:
            self.python(_PREPARE, *(self.path(d) for d in ("agent", "models", "data", "tmp", "out")))
            self._prepared = True

    def hashes(self, remote_paths: list[str]) -> dict[str, str | None]:
        lines = self.python(_HASHES, *remote_paths).split()
        return {p: (None if h == "-" else h) for p, h in zip(remote_paths, lines, strict=True)}

    def ensure(self, data: bytes, remote_path: str, sha256: str | None = None) -> bool:
        """Make ``remote_path`` hold ``data``; return True when bytes had to be sent."""
        sha256 = sha256 or sha256_bytes(data)
        self.prepare()
        if self.hashes([remote_path]).get(remote_path) == sha256:
            return False
        temporary = self.path("tmp", f"{sha256[:16]}.{secrets.token_hex(4)}.part")
        self.transport.put(data, temporary)
        self.bytes_sent += len(data)
        self.python(_COMMIT, temporary, remote_path, sha256)
        return True

    def ensure_agent(self) -> str:
        blob, digest = agent_zipapp()
        remote = self.path("agent", f"edgeprof-agent-{digest[:16]}.pyz")
        self.ensure(blob, remote, digest)
        return remote

    def ensure_model(self, data: bytes, sha256: str) -> str:
        remote = self.path("models", f"{sha256}.tflite")
        self.ensure(data, remote, sha256)
        return remote

    def ensure_data(self, data: bytes, suffix: str) -> str:
        digest = sha256_bytes(data)
        remote = self.path("data", f"{digest}{suffix}")
        self.ensure(data, remote, digest)
        return remote

    @contextlib.contextmanager
    def agent(self, timeout: float = 60.0) -> Iterator[AgentSession]:
        """A running agent that has answered ``hello``; stopped on exit, also on Ctrl-C."""
        agent_path = self.ensure_agent()
        process = self.transport.start([self.target.python, "-u", agent_path])
        session = AgentSession(process, board=self.target.name, timeout=timeout)
        try:
            session.start()
            yield session
        finally:
            session.close()


@contextlib.contextmanager
def connect(target: Target) -> Iterator[Board]:
    transport = target.connect()
    try:
        yield Board(target, transport)
    finally:
        transport.close()
