"""Putting the agent, models and data on a board, content-addressed and atomically, one profile at a time.

Files on the board are named by their SHA-256, never by the user's file name, so a hostile name can neither run a
command nor escape the work directory, and an unchanged file is never sent twice. An upload goes to a temporary
name and is renamed only after the board has checked its hash, so a half-sent file is never used. The work
directory stays under ``workdir_max_mb``: the least recently used models and data are evicted.

Only one profile runs on a board at a time (two would spoil each other's numbers): :func:`connect` takes a lock
file per board on the host, which holds across threads and processes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import posixpath
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._resources import agent_zipapp
from .errors import TargetError, TransportError
from .modelfile import sha256_bytes
from .session import AgentSession
from .targets import Target, cache_dir
from .transports.base import Transport

EventHandler = Callable[[dict[str, Any]], None]

log = logging.getLogger("edgeprof.deploy")

#: How long a profile waits for a board another profile holds, unless told otherwise: longer than a profile with
#: the default options takes (warm-up and measurement stop after 150 s each), so queued jobs get their turn, yet a
#: CI job never waits for ever behind one that hangs.
DEFAULT_WAIT_SECONDS = 600.0

# Small helpers run by the board's own Python: standard library only, Python 3.5+ syntax.
_STATUS = r"""import json,os,sys,hashlib
root = sys.argv[1]
for d in ('agent', 'models', 'data', 'tmp', 'out'):
    p = os.path.join(root, d)
    if not os.path.isdir(p):
        os.makedirs(p)
used = 0
for d in ('agent', 'models', 'data', 'out'):
    for name in os.listdir(os.path.join(root, d)):
        try:
            used += os.stat(os.path.join(root, d, name)).st_size
        except OSError:
            pass
hashes = {}
for p in sys.argv[2:]:
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        hashes[p] = h.hexdigest()
        os.utime(p, None)
    except OSError:
        hashes[p] = None
cpu = ''
try:
    with open('/proc/cpuinfo') as f:
        cpu = f.read(8192)
except OSError:
    pass
venv = os.path.join(root, 'venv', 'bin', 'python')
st = os.statvfs(root)
print(json.dumps({'root': os.path.abspath(root), 'used_bytes': used, 'free_bytes': st.f_bavail * st.f_frsize,
                  'hashes': hashes, 'machine': os.uname()[4], 'venv_python': venv if os.access(venv, os.X_OK) else None,
                  'cpuinfo_x86': 'GenuineIntel' in cpu or 'AuthenticAMD' in cpu, 'python': sys.version.split()[0]}))
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
# Least recently used first; never the files this run uses; half-sent uploads older than an hour go too.
_EVICT = r"""import json,os,sys,time
root, limit = sys.argv[1], int(sys.argv[2])
keep = set(os.path.abspath(p) for p in sys.argv[3:])
now = time.time()
removed = []
tmp = os.path.join(root, 'tmp')
for name in os.listdir(tmp):
    p = os.path.join(tmp, name)
    try:
        if now - os.stat(p).st_mtime > 3600:
            os.remove(p)
            removed.append(p)
    except OSError:
        pass
files = []
for d in ('models', 'data', 'out', 'agent'):
    for name in os.listdir(os.path.join(root, d)):
        p = os.path.abspath(os.path.join(root, d, name))
        try:
            st = os.stat(p)
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, p))
total = sum(f[1] for f in files)
for mtime, size, p in sorted(files):
    if total <= limit:
        break
    if p in keep:
        continue
    try:
        os.remove(p)
        total -= size
        removed.append(p)
    except OSError:
        pass
print(json.dumps({'removed': removed, 'used_bytes': total}))
"""
# Runs the agent as a child and kills its process group as soon as our stdin closes: stdin is the SSH channel (or
# the adb shell), so when the host goes away, even by Ctrl-C or a crash, nothing keeps measuring on the board.
REAPER = r"""import os,signal,subprocess,sys,threading
def _deathsig():
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, start_new_session=True, preexec_fn=_deathsig)
def kill(*_):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
def pump():
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        try:
            child.stdin.write(data)
            child.stdin.flush()
        except OSError:
            break
    try:
        child.stdin.close()
    except OSError:
        pass
    try:
        child.wait(1.0)
    except subprocess.TimeoutExpired:
        kill()
def bye(*_):
    kill()
    os._exit(129)
for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(s, bye)
t = threading.Thread(target=pump)
t.daemon = True
t.start()
sys.exit(child.wait())
"""

_live_boards: set[Board] = set()
_live_lock = threading.Lock()
_aborted = threading.Event()


def _check_aborted(target: Target) -> None:
    if _aborted.is_set():
        raise TransportError(f"{target.name}: stopped before it began (interrupted)", "run the profile again")


def reset_abort() -> None:
    """Allow new board connections again after :func:`abort_all` (a new fleet begins)."""
    _aborted.clear()


def abort_all() -> None:
    """Drop every open board connection (Ctrl-C in a fleet): each board's reaper then stops its agent. Boards that
    were still waiting for their lock or connecting do not start either (until :func:`reset_abort`)."""
    _aborted.set()
    with _live_lock:
        boards = list(_live_boards)
    for board in boards:
        with contextlib.suppress(Exception):
            board.transport.close()


class Board:
    """One target, connected: deploys files and starts agents on it."""

    def __init__(self, target: Target, transport: Transport, on_event: EventHandler | None = None) -> None:
        self.target = target
        self.transport = transport
        self.workdir = target.workdir
        self.bytes_sent = 0
        self.on_event = on_event
        self.status: dict[str, Any] | None = None
        self._hashes: dict[str, str | None] = {}
        self._in_use: set[str] = set()

    # -- helpers ------------------------------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event({"event": event, "source": "host", **fields})

    def path(self, *parts: str) -> str:
        return posixpath.join(self.workdir, *parts)

    @property
    def python_path(self) -> str:
        """The venv made by ``edgeprof targets setup`` unless the config names a Python."""
        venv = (self.status or {}).get("venv_python")
        return venv if venv and self.target.python_is_default else self.target.python

    def python(self, script: str, *args: str, timeout: float | None = None, python: str | None = None) -> str:
        interpreter = python or self.target.python
        # -S: no site-packages for these standard-library helpers, which halves the interpreter's start-up.
        result = self.transport.run([interpreter, "-S", "-c", script, *args], timeout=timeout)
        if not result.ok:
            error = result.stderr.decode("utf-8", "replace").strip().splitlines()
            last = error[-1] if error else f"exit code {result.exit_code}"
            if result.exit_code == 127 or ("not found" in last and interpreter in last):
                raise TargetError(
                    f"{self.target.name} has no {interpreter} ({last})",
                    f"install Python 3.8+ on the board or set python for {self.target.name}; "
                    f"'edgeprof targets setup {self.target.name}' prepares a board",
                )
            raise TransportError(
                f"{self.target.name}: {interpreter} failed ({last})",
                "check the target's python setting and free disk space on the board",
            )
        return result.text()

    # -- state of the board -------------------------------------------------------------------------------------

    def prepare(self, *hash_paths: str) -> dict[str, Any]:
        """Make the work directory and learn the board's state (and the hashes of ``hash_paths``) in one command."""
        if self.status is None:
            self.emit("phase", phase="connect")
        paths = [p for p in hash_paths if p not in self._hashes]
        if self.status is None or paths:
            status = json.loads(self.python(_STATUS, self.workdir, *paths).strip().splitlines()[-1])
            self._hashes.update(status.pop("hashes"))
            self.status = status
        assert self.status is not None
        return self.status

    def device_facts(self) -> dict[str, Any]:
        """What the host knows about the board beyond the agent's own facts: chiefly whether it is emulated."""
        status = self.status or {}
        facts: dict[str, Any] = {"board_kind": self.target.kind}
        if self.target.emulated:
            facts.update(emulated=True, emulated_reason=f"target {self.target.name} is configured as emulated")
        elif status.get("cpuinfo_x86") and status.get("machine") not in ("x86_64", "i686", "i386", "amd64"):
            facts.update(
                emulated=True,
                emulated_reason=f"{status.get('machine')} userland on an x86 CPU (/proc/cpuinfo): qemu-user emulation",
            )
        else:
            facts["emulated"] = False
        return facts

    def hashes(self, remote_paths: list[str]) -> dict[str, str | None]:
        self.prepare(*remote_paths)
        return {p: self._hashes.get(p) for p in remote_paths}

    # -- uploads ------------------------------------------------------------------------------------------------

    def ensure(self, data: bytes, remote_path: str, sha256: str | None = None, *, what: str = "file") -> bool:
        """Make ``remote_path`` hold ``data``; return True when bytes had to be sent."""
        sha256 = sha256 or sha256_bytes(data)
        self._in_use.add(remote_path)
        if self.hashes([remote_path]).get(remote_path) == sha256:
            log.debug("%s: %s already on the board (%s), 0 B sent", self.target.name, what, remote_path)
            return False
        temporary = self.path("tmp", f"{sha256[:16]}.{secrets.token_hex(4)}.part")
        total = len(data)
        last = [0.0]

        def progress(sent: int, _total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.2 or sent == total:
                last[0] = now
                self.emit("upload", what=what, sent=sent, total=total)

        self.emit("upload", what=what, sent=0, total=total)
        started = time.monotonic()
        self.transport.put(data, temporary, progress)
        self.bytes_sent += total
        self.python(_COMMIT, temporary, remote_path, sha256)
        log.debug("%s: uploaded %s, %d B, to %s in %.3f s (checked and renamed into place)", self.target.name, what,
                  total, remote_path, time.monotonic() - started)  # fmt: skip
        self._hashes[remote_path] = sha256
        if self.status is not None:
            self.status["used_bytes"] = int(self.status.get("used_bytes", 0)) + total
        return True

    def agent_path(self) -> str:
        return self.path("agent", f"edgeprof-agent-{agent_zipapp()[1][:16]}.pyz")

    def ensure_agent(self) -> str:
        blob, digest = agent_zipapp()
        remote = self.agent_path()
        self.ensure(blob, remote, digest, what="agent")
        return remote

    def ensure_model(self, data: bytes, sha256: str) -> str:
        remote = self.path("models", f"{sha256}.tflite")
        self.prepare(remote, self.agent_path())  # one round trip learns both hashes
        self.ensure(data, remote, sha256, what="model")
        return remote

    def ensure_data(self, data: bytes, suffix: str) -> str:
        if suffix not in (".npy", ".npz"):
            raise TargetError(f"input data must be a .npy or .npz file, not {suffix!r}", "convert it with numpy.save")
        digest = sha256_bytes(data)
        remote = self.path("data", f"{digest}{suffix}")
        self.ensure(data, remote, digest, what="data")
        return remote

    def evict(self) -> dict[str, Any]:
        """Bring the work directory under ``workdir_max_mb``, keeping what this run uses."""
        limit = int(self.target.workdir_max_mb * 1024 * 1024)
        done = json.loads(self.python(_EVICT, self.workdir, str(limit), *sorted(self._in_use)).strip())
        for path in done["removed"]:
            self._hashes.pop(path, None)
        if self.status is not None:
            self.status["used_bytes"] = done["used_bytes"]
        if done["removed"]:
            self.emit("evicted", files=len(done["removed"]))
        return done

    # -- the agent ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def agent(self, timeout: float | None = None, *, probe: bool = True) -> Iterator[AgentSession]:
        """A running agent that has answered ``hello`` (``probe=False``: without probing the runtimes); stopped on
        exit, also on Ctrl-C (on the board too)."""
        agent_path = self.ensure_agent()
        status = self.prepare()
        if int(status.get("used_bytes", 0)) > self.target.workdir_max_mb * 1024 * 1024:
            self.evict()
        python = self.python_path
        argv = [python, "-u", agent_path]
        if self.transport.kind != "local":
            argv = [python, "-S", "-c", REAPER, *argv]
        self.emit("phase", phase="agent")
        process = self.transport.start(argv)
        limit = timeout if timeout is not None else max(60.0, self.target.command_timeout)
        session = AgentSession(process, board=self.target.name, timeout=limit)
        try:
            session.start(probe=probe)
            device = session.hello.setdefault("device", {})
            for key, value in self.device_facts().items():
                device.setdefault(key, value)
            yield session
        except BaseException:
            session.close(graceful=False)
            raise
        else:
            session.close()


# -- one profile per board at a time ---------------------------------------------------------------------------


def _holder(fd: int) -> str:
    """Who holds a board lock, from what the holder wrote into the lock file: "PID 123 on HOST since 10:17:25"."""
    raw = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip()
    try:
        info = json.loads(raw)
        since = _dt.datetime.fromisoformat(info["since"]).astimezone().strftime("%H:%M:%S")
        text = f"PID {int(info['pid'])} on {info['host']} since {since}"
        return text + (f" ({info['command']})" if info.get("command") else "")
    except (ValueError, KeyError, TypeError):
        return raw or "another process"


@contextlib.contextmanager
def board_lock(target: Target, on_event: EventHandler | None = None, timeout: float | None = None) -> Iterator[None]:
    """An exclusive lock on the board, held across threads and processes on this host (``flock``).

    The lock file is named by a hash of the board's address, so two target names for one board share it and no
    name can reach the file system. The holder writes its PID, host, start time and command into it, so a waiting
    profile can say whom it waits for. ``timeout`` (seconds, None for ever) bounds the wait.
    """
    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(target.lock_key().encode()).hexdigest()[:32]
    path = folder / f"{key}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        holder = ""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            _check_aborted(target)
            now = _holder(fd)
            if now != holder:  # the first wait, or another job got the board first
                holder = now
                log.info("%s: waiting for the board, held by %s", target.name, holder)
                if on_event is not None:
                    on_event({"event": "phase", "source": "host", "phase": "waiting", "holder": holder,
                              "since": time.time() - (time.monotonic() - started)})  # fmt: skip
            if timeout is not None and time.monotonic() - started >= timeout:
                raise TransportError(
                    f"{target.name} is still busy after {timeout:g} s of waiting: held by {holder}",
                    "one profile runs on a board at a time; wait for that job, or wait longer with --wait-seconds N "
                    "(wait_seconds= in Python; inf waits for ever)",
                )
            time.sleep(0.1 if timeout is None else max(0.0, min(0.1, timeout - (time.monotonic() - started))))
        if holder:
            log.info("%s: got the board after %.1f s of waiting", target.name, time.monotonic() - started)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["edgeprof", *sys.argv[1:3]])[:80] if sys.argv and "edgeprof" in sys.argv[0] else "",
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def connect(
    target: Target,
    *,
    on_event: EventHandler | None = None,
    exclusive: bool = True,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
) -> Iterator[Board]:
    """A connected :class:`Board`; ``exclusive`` (for measuring) waits until no other profile uses the board,
    at most ``wait_seconds`` (None: for ever)."""
    _check_aborted(target)
    with board_lock(target, on_event, wait_seconds) if exclusive else contextlib.nullcontext():
        transport = target.connect()
        board = Board(target, transport, on_event)
        with _live_lock:
            _live_boards.add(board)
        try:
            _check_aborted(target)  # Ctrl-C came while this board waited for its lock: it was not in the list above
            yield board
        finally:
            with _live_lock:
                _live_boards.discard(board)
            transport.close()
