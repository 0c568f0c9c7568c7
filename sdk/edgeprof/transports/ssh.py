"""The ``ssh`` transport: a board reached over SSH with paramiko, wrapped the way Fabric wraps a Connection.

What it adds to a bare paramiko client, and why:

* **Host keys are checked, never learnt.** Keys come from the target's ``known_hosts`` (or ``~/.ssh/known_hosts``)
  and an unknown server is refused (``RejectPolicy``); ``edgeprof targets trust`` is the only way to record one.
* **A vanished board is noticed in seconds.** paramiko's own socket retries for the kernel's full retransmission
  time (≈ 17 minutes when a board drops off the network in the middle of an upload). We open the socket ourselves
  with TCP keepalive and ``TCP_USER_TIMEOUT`` and hand it to paramiko (``connect(sock=...)``).
* **Connecting retries with back-off**, because Wi-Fi boards drop the first SYN more often than one would think; a
  refused host key or a refused login is final and is not retried.
* **``~/.ssh/config`` is honoured** (HostName, User, Port, IdentityFile, ProxyJump), and ssh-agent keys are used.
* **Commands are argument lists.** They are joined with :func:`shlex.join`, so each argument reaches the board's
  shell as one quoted word; relative paths resolve in the remote home, as with ``ssh`` and ``sftp``.
* **Failures are one line.** paramiko logs each failed handshake with a traceback; its logger gets a null handler,
  and what went wrong reaches the user as a :class:`TransportError` (``edgeprof --verbose`` logs our own view:
  each command, its duration and exit code, retries and their reason, bytes sent).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import errno
import getpass
import hashlib
import io
import logging
import os
import queue
import random
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from ..errors import TransportError
from .base import CommandResult, Process, Transport, UploadProgress, log, shown

#: Linux's socket option number, for Pythons built without the constant.
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)

# paramiko logs every failed handshake at ERROR with a traceback; without a handler Python prints those on stderr
# (six tracebacks for one silent port). Our errors say what happened, in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: paramiko's host key algorithms for a key type as known_hosts files it (RSA keys sign with SHA-2 today).
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


@dataclass(frozen=True)
class Endpoint:
    """Where an SSH connection really goes once ``~/.ssh/config`` has been applied."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    proxy_jump: tuple[str, ...] = ()  # hops, outermost first, each "[user@]host[:port]" or a config alias
    from_ssh_config: tuple[str, ...] = field(default=(), compare=False)  # which settings the config supplied

    @property
    def host_key_name(self) -> str:
        """The name OpenSSH and paramiko file this server's key under in known_hosts."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def lock_key(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"

    def describe(self) -> str:
        via = f" via {','.join(self.proxy_jump)}" if self.proxy_jump else ""
        return f"{self.user}@{self.hostname}:{self.port}{via}"


def default_ssh_config() -> Path:
    return Path(os.path.expanduser("~/.ssh/config"))


def _read_ssh_config(path: str | Path | None) -> paramiko.SSHConfig | None:
    path = Path(os.path.expanduser(str(path))) if path else default_ssh_config()
    if not path.is_file():
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, ValueError, paramiko.ConfigParseError) as exc:
        raise TransportError(f"cannot read SSH config {path}: {exc}", "fix or remove that file") from None


def _split_hop(hop: str) -> tuple[str | None, str, int | None]:
    user, _, rest = hop.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = int(port_text)
    return (user or None), host, port


def resolve_endpoint(
    host: str,
    *,
    port: int | None = None,
    user: str | None = None,
    identity_file: str | None = None,
    ssh_config: str | Path | None = None,
    proxy_jump: str | None = None,
) -> Endpoint:
    """Apply ``~/.ssh/config`` to ``host``; explicit target settings win over the config, as on ssh's command line."""
    config = _read_ssh_config(ssh_config)
    found = config.lookup(host) if config is not None else {}
    supplied = []
    hostname = host
    if "hostname" in found and found["hostname"] != host:
        hostname = found["hostname"]
        supplied.append("HostName")
    if port is None and "port" in found:
        port = int(found["port"])
        supplied.append("Port")
    if user is None and "user" in found:
        user = found["user"]
        supplied.append("User")
    identities: list[str] = []
    if identity_file:
        identities.append(os.path.expanduser(identity_file))
    elif "identityfile" in found:
        identities.extend(os.path.expanduser(p) for p in found["identityfile"])
        supplied.append("IdentityFile")
    jump = proxy_jump if proxy_jump is not None else found.get("proxyjump")
    if jump and proxy_jump is None:
        supplied.append("ProxyJump")
    hops = tuple(h.strip() for h in jump.split(",") if h.strip()) if jump and jump.lower() != "none" else ()
    return Endpoint(
        alias=host,
        hostname=hostname,
        port=int(port or 22),
        user=user or getpass.getuser(),
        identity_files=tuple(identities),
        proxy_jump=hops,
        from_ssh_config=tuple(supplied),
    )


@dataclass(frozen=True)
class Timeouts:
    """How long to wait before calling a board gone. Defaults suit a Pi on poor Wi-Fi."""

    connect: float = 10.0  # TCP connect + SSH handshake + login, per attempt
    command: float = 60.0  # a helper command on the board, and each SFTP operation
    dead_after: float = 8.0  # TCP_USER_TIMEOUT: unacknowledged data for this long means the board is gone
    keepalive_idle: float = 4.0  # first TCP keepalive probe after this much silence
    keepalive_interval: float = 2.0
    # Like OpenSSH's ServerAliveInterval/CountMax: a frozen board's kernel still acknowledges TCP, so only a request
    # its sshd must answer tells a hung board from a slow one. 0 turns it off.
    alive_interval: float = 5.0
    alive_count_max: int = 3
    connect_attempts: int = 3  # with exponential back-off between them


def open_socket(hostname: str, port: int, timeouts: Timeouts) -> socket.socket:
    """A TCP connection that notices a dead peer in seconds (keepalive + ``TCP_USER_TIMEOUT``)."""
    sock = socket.create_connection((hostname, port), timeout=timeouts.connect)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(timeouts.keepalive_idle)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, int(timeouts.keepalive_interval)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    with contextlib.suppress(OSError):  # Linux only; elsewhere keepalive still helps
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_USER_TIMEOUT, int(timeouts.dead_after * 1000))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def default_known_hosts() -> Path:
    return Path(os.path.expanduser("~/.ssh/known_hosts"))


class _Permanent(Exception):
    """A connection failure that retrying cannot fix (host key, login)."""


class SSHProcess(Process):
    """A command on the board whose stdin/stdout is an SSH channel."""

    def __init__(self, channel: paramiko.Channel, board: str, why_lost: Callable[[BaseException], str]) -> None:
        self._channel = channel
        self._board = board
        self._why_lost = why_lost
        self._started = time.monotonic()
        self._lines: queue.Queue[bytes | BaseException] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        threading.Thread(target=self._pump, daemon=True, name=f"ssh-stdout-{board}").start()
        threading.Thread(target=self._pump_stderr, daemon=True, name=f"ssh-stderr-{board}").start()

    def _pump(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._channel.recv(65536)  # b"" at end of file, also when the connection closes
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._lines.put(line + b"\n")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._lines.put(exc)
            return
        if buffer:
            self._lines.put(buffer)
        # A clean end sends an exit status before the channel closes; a dropped connection does not (paramiko then
        # sets the status event with exit status -1).
        self._channel.status_event.wait(2.0)
        transport = self._channel.get_transport()
        if self._channel.exit_status == -1 or transport is None or not transport.is_active():
            self._lines.put(ConnectionError())
            return
        self._lines.put(b"")

    def _pump_stderr(self) -> None:
        pending = b""
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            while True:
                chunk = self._channel.recv_stderr(65536)
                if not chunk:
                    break
                pending += chunk
                *done, pending = pending.split(b"\n")
                self._stderr.extend(line.decode("utf-8", "replace") for line in done)
        if pending:
            self._stderr.append(pending.decode("utf-8", "replace"))

    def send(self, data: bytes) -> None:
        try:
            self._channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"lost the connection to {self._board} ({self._why_lost(exc)})",
                "check that the board is up and reachable",
            ) from None

    def readline(self, timeout: float | None) -> bytes:
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output within {timeout} s") from None
        if isinstance(item, BaseException):
            self._lines.put(item)  # every later read fails the same way
            raise TransportError(
                f"lost the connection to {self._board} ({self._why_lost(item)})",
                "check that the board is up and reachable",
            )
        if item == b"":
            self._lines.put(b"")
        return item

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def terminate(self) -> None:
        # Closing the channel closes the command's stdin on the board; the board-side reaper that Board.agent()
        # wraps around the agent then kills the agent's process group, so nothing is left running there.
        with contextlib.suppress(Exception):
            self._channel.close()

    def wait(self, timeout: float | None = None) -> int | None:
        if self._channel.status_event.wait(timeout):
            code = self._channel.recv_exit_status()
            log.debug("ssh %s: the started command exited %d after %.3f s", self._board, code,
                      time.monotonic() - self._started)  # fmt: skip
            return code
        return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError | ConnectionError) and not str(exc).strip():
        return "the connection closed: the board went away or its sshd died"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SSHTransport(Transport):
    """One board over SSH. Connects lazily, on first use, and reconnects never: a dropped board is an error."""

    kind = "ssh"

    def __init__(
        self,
        host: str,
        *,
        port: int | None = None,
        user: str | None = None,
        identity_file: str | None = None,
        known_hosts: str | None = None,
        ssh_config: str | None = None,
        proxy_jump: str | None = None,
        timeouts: Timeouts | None = None,
        name: str | None = None,
        address: tuple[str, int] | None = None,
    ) -> None:
        """``address`` connects somewhere other than the host key's name (an adb port forward, for instance)."""
        self.address = address
        self.endpoint = resolve_endpoint(
            host, port=port, user=user, identity_file=identity_file, ssh_config=ssh_config, proxy_jump=proxy_jump
        )
        self.name = name or host
        self.ssh_config = ssh_config
        self.known_hosts = Path(os.path.expanduser(known_hosts)) if known_hosts else default_known_hosts()
        self.timeouts = timeouts or Timeouts()
        self._client: paramiko.SSHClient | None = None
        self._hops: list[paramiko.SSHClient] = []
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.connect_attempts_made = 0
        self.dead_reason: str | None = None

    # -- connecting -------------------------------------------------------------------------------------------

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            try:
                client.load_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise TransportError(f"cannot read {self.known_hosts}: {exc}", "fix or remove that file") from None
        system = Path("/etc/ssh/ssh_known_hosts")
        if system.is_file():
            with contextlib.suppress(OSError, paramiko.SSHException):
                client.load_system_host_keys(str(system))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    def _identity_files(self, endpoint: Endpoint, label: str) -> list[str]:
        """The key files to offer. A missing or unreadable ``identity_file`` is a typo in the config: said at once,
        naming the file, never retried (the board is not to blame). OpenSSH skips a missing ``IdentityFile`` of
        ``~/.ssh/config``, and so do we."""
        usable = []
        for path in endpoint.identity_files:
            if os.path.isfile(path) and os.access(path, os.R_OK):
                usable.append(path)
            elif "IdentityFile" in endpoint.from_ssh_config:
                log.debug("ssh %s: IdentityFile %s (SSH config) does not exist; skipped, as ssh does", label, path)
            else:
                problem = "does not exist" if not os.path.exists(path) else "cannot be read"
                raise TransportError(
                    f"the SSH key file of {label}, {path}, {problem}",
                    f"fix identity_file of {self.name} in the config ('edgeprof targets show {self.name}' shows it), "
                    "or remove it to log in with ssh-agent and ~/.ssh/id_*",
                )
        return usable

    def _await_greeting(self, sock: socket.socket, endpoint: Endpoint, label: str) -> None:
        """An SSH server speaks first (``SSH-2.0-...``). A port that accepts TCP but says nothing, or says something
        else, is not an SSH server: one clear line instead of paramiko's banner errors, and no retry."""
        wait = self.timeouts.connect
        where = f"{label} ({endpoint.hostname} port {endpoint.port})"
        fix = (
            f"check the port: is sshd listening on port {endpoint.port} of {endpoint.hostname}, or another service? "
            "(if it is the board's sshd, the board is frozen or overloaded)"
        )
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            raise _Permanent(
                TransportError(f"{where} accepts TCP connections but no SSH server greets there ({wait:g} s)", fix)
            )
        try:
            head = sock.recv(256, socket.MSG_PEEK)
        except OSError:
            return  # paramiko's read reports it
        if head and b"SSH-" not in head and b"\n" in head:
            said = head.split(b"\n", 1)[0].decode("ascii", "replace").strip()
            said = "".join(c if c.isprintable() else "?" for c in said)[:60]
            raise _Permanent(TransportError(f"{where} answers, but not as an SSH server (it said {said!r})", fix))

    def _login(
        self, client: paramiko.SSHClient, endpoint: Endpoint, sock: socket.socket | paramiko.Channel, *, label: str
    ) -> None:
        t = self.timeouts
        try:
            identities = self._identity_files(endpoint, label)
        except TransportError as exc:
            raise _Permanent(exc) from None
        if isinstance(sock, socket.socket):
            self._await_greeting(sock, endpoint, label)
        try:
            client.connect(
                endpoint.hostname,
                port=endpoint.port,
                username=endpoint.user,
                key_filename=identities or None,
                allow_agent=True,
                look_for_keys=not identities,
                sock=sock,
                timeout=t.connect,
                banner_timeout=t.connect,
                auth_timeout=t.connect,
                channel_timeout=t.connect,
            )
        except paramiko.BadHostKeyException as exc:
            if exc.key.get_name() != exc.expected_key.get_name():  # another type than the one known: not a change
                raise _Permanent(
                    TransportError(
                        f"{label} ({endpoint.host_key_name}) offers only a {exc.key.get_name()} host key and "
                        f"{self.known_hosts} knows only its {exc.expected_key.get_name()} key, so the connection "
                        "was refused",
                        f"check the new key's fingerprint and record it with 'edgeprof targets trust {self.name}'",
                    )
                ) from None
            raise _Permanent(
                TransportError(
                    f"the host key of {label} ({endpoint.host_key_name}) has CHANGED: it is now "
                    f"{fingerprint(exc.key)}, {self.known_hosts} has {fingerprint(exc.expected_key)}; "
                    "someone may be intercepting the connection",
                    f"if the board was re-installed, remove the old key (ssh-keygen -f {self.known_hosts} "
                    f"-R '{endpoint.host_key_name}') and run 'edgeprof targets trust {self.name}'",
                )
            ) from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "protocol banner" in text:  # through a jump host, where we cannot peek at the stream ourselves
                raise _Permanent(
                    TransportError(
                        f"{label} ({endpoint.hostname} port {endpoint.port}) accepts connections but no SSH server "
                        "greets there",
                        f"check the port: is sshd listening on port {endpoint.port} of {endpoint.hostname}?",
                    )
                ) from None
            if "not found in known_hosts" in text:
                raise _Permanent(
                    TransportError(
                        f"{label} ({endpoint.host_key_name}) has a host key edgeprof does not know, "
                        f"so the connection was refused",
                        f"check its fingerprint and record it with 'edgeprof targets trust {self.name}'",
                    )
                ) from None
            if isinstance(exc, paramiko.PasswordRequiredException):
                raise _Permanent(
                    TransportError(
                        f"the SSH key for {label} is encrypted and ssh-agent does not hold it",
                        f"add it to ssh-agent: ssh-add {' '.join(endpoint.identity_files) or '~/.ssh/id_ed25519'}",
                    )
                ) from None
            if "No authentication methods available" in text:
                raise _Permanent(
                    TransportError(
                        f"no SSH key to log in to {label} with (no identity_file, no ssh-agent key, no ~/.ssh/id_*)",
                        "make one (ssh-keygen -t ed25519), install it on the board (ssh-copy-id), or start ssh-agent",
                    )
                ) from None
            if isinstance(exc, paramiko.AuthenticationException):
                keys = ", ".join(endpoint.identity_files) or "ssh-agent and ~/.ssh/id_*"
                raise _Permanent(
                    TransportError(
                        f"{endpoint.user}@{endpoint.hostname} refused our SSH keys ({keys})",
                        f"install your public key on the board (ssh-copy-id -p {endpoint.port} "
                        f"{endpoint.user}@{endpoint.hostname}) or set identity_file for {label}",
                    )
                ) from None
            raise

    def _tunnel(self) -> tuple[socket.socket | paramiko.Channel, list[paramiko.SSHClient]]:
        """A byte stream to the board: a TCP socket, or a channel through the ProxyJump hosts (outermost first)."""
        hops = [
            resolve_endpoint(h, user=u, port=p, ssh_config=self.ssh_config, proxy_jump="none")
            for u, h, p in (_split_hop(hop) for hop in self.endpoint.proxy_jump)
        ]
        clients: list[paramiko.SSHClient] = []
        try:
            sock: socket.socket | paramiko.Channel | None = None
            for index, hop in enumerate(hops):
                if sock is None:
                    sock = open_socket(hop.hostname, hop.port, self.timeouts)
                client = self._new_client()
                clients.append(client)
                self._login(client, hop, sock, label=f"jump host {hop.alias} of {self.name}")
                transport = client.get_transport()
                assert transport is not None
                transport.set_keepalive(max(1, int(self.timeouts.keepalive_idle)))
                nxt = hops[index + 1] if index + 1 < len(hops) else self.endpoint
                sock = transport.open_channel(
                    "direct-tcpip", (nxt.hostname, nxt.port), ("127.0.0.1", 0), timeout=self.timeouts.connect
                )
            if sock is None:
                sock = open_socket(*(self.address or (self.endpoint.hostname, self.endpoint.port)), self.timeouts)
        except BaseException:
            for client in reversed(clients):
                with contextlib.suppress(Exception):
                    client.close()
            raise
        return sock, clients

    def _connect_once(self) -> paramiko.SSHClient:
        sock, hops = self._tunnel()
        client = self._new_client()
        try:
            self._login(client, self.endpoint, sock, label=self.name)
        except BaseException:
            client.close()
            for hop in reversed(hops):
                hop.close()
            raise
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(max(1, int(self.timeouts.keepalive_idle)))
        self._hops = hops
        if self.timeouts.alive_interval > 0:
            threading.Thread(target=self._watch, args=(transport,), daemon=True, name=f"ssh-alive-{self.name}").start()
        return client

    def _watch(self, transport: paramiko.Transport) -> None:
        """Ask the board's sshd for a reply every ``alive_interval``; close the connection when none comes."""
        interval, count = self.timeouts.alive_interval, max(1, self.timeouts.alive_count_max)
        while transport.is_active():
            time.sleep(interval)
            if not transport.is_active():
                return
            answered = threading.Event()

            def ping(done: threading.Event = answered) -> None:
                with contextlib.suppress(Exception):
                    transport.global_request("keepalive@openssh.com", wait=True)  # any reply, even a refusal
                done.set()

            threading.Thread(target=ping, daemon=True).start()
            if not answered.wait(interval * count):
                self.dead_reason = (
                    f"its sshd answered nothing for {interval * count:.0f} s: the board is frozen or overloaded"
                )
                log.debug("ssh %s: closing the connection: %s", self.name, self.dead_reason)
                transport.close()
                return

    def why_lost(self, exc: BaseException) -> str:
        return self.dead_reason or _why(exc)

    def connect(self) -> paramiko.SSHClient:
        with self._lock:
            if self._client is not None:
                return self._client
            if self._closed:  # closed on purpose (the work is over, or Ctrl-C): never quietly connect again
                raise TransportError(
                    f"the connection to {self.name} was closed by edgeprof", "start the work again if it was stopped"
                )
            self._identity_files(self.endpoint, self.name)  # a typo in the config is not worth three attempts
            attempts = max(1, self.timeouts.connect_attempts)
            delay = 0.5
            last: BaseException | None = None
            for attempt in range(1, attempts + 1):
                self.connect_attempts_made = attempt
                started = time.monotonic()
                log.debug("ssh %s: connecting to %s (attempt %d of %d)", self.name, self.endpoint.describe(),
                          attempt, attempts)  # fmt: skip
                try:
                    self._client = self._connect_once()
                    log.debug("ssh %s: connected and logged in in %.3f s", self.name, time.monotonic() - started)
                    return self._client
                except _Permanent as exc:
                    log.debug("ssh %s: attempt %d failed for good: %s", self.name, attempt, exc.args[0])
                    raise exc.args[0] from None
                except socket.gaierror as exc:
                    if exc.errno != socket.EAI_AGAIN:
                        raise TransportError(
                            f"cannot resolve {self.endpoint.hostname!r} for {self.name}",
                            "check the target's host (an address, a DNS name or a ~/.ssh/config alias)",
                        ) from None
                    last = exc
                except (OSError, EOFError, paramiko.SSHException) as exc:
                    last = exc
                if attempt < attempts:
                    pause = delay * (1 + 0.2 * random.random())
                    log.debug("ssh %s: attempt %d failed after %.3f s (%s); retrying in %.2f s", self.name, attempt,
                              time.monotonic() - started, _why(last), pause)  # fmt: skip
                    time.sleep(pause)
                    delay *= 2
            assert last is not None
            raise TransportError(
                f"cannot connect to {self.name} ({self.endpoint.describe()}) after {attempts} attempts: {_why(last)}",
                "check that the board is on, on the network, and runs sshd; 'edgeprof targets check' tests it",
            )

    def fetch_host_key(self, prefer: Sequence[str] = ()) -> paramiko.PKey:
        """The key the server presents, without logging in; for ``edgeprof targets trust``.

        ``prefer`` lists key types (as known_hosts names them) to ask for first: a board that holds several host
        keys presents the one of a type we already know, if it has one, so a known key is compared with its own kind.
        Jump hosts must already be trusted: trust is given one host at a time.
        """
        hops: list[paramiko.SSHClient] = []
        try:
            sock, hops = self._tunnel()
            if isinstance(sock, socket.socket):
                self._await_greeting(sock, self.endpoint, self.name)
            transport = paramiko.Transport(sock)
            try:
                options = transport.get_security_options()
                wanted = [a for kind in prefer for a in _ALGORITHMS.get(kind, (kind,)) if a in options.key_types]
                options.key_types = [*dict.fromkeys(wanted), *(a for a in options.key_types if a not in wanted)]
                transport.banner_timeout = self.timeouts.connect
                transport.start_client(timeout=self.timeouts.connect)
                return transport.get_remote_server_key()
            finally:
                transport.close()
        except _Permanent as exc:
            raise exc.args[0] from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"cannot reach {self.name} ({self.endpoint.describe()}): {_why(exc)}",
                "check that the board is on and runs sshd",
            ) from None
        finally:
            for hop in reversed(hops):
                hop.close()

    def known_host_keys(self) -> dict[str, paramiko.PKey]:
        """The keys recorded for this board, by type (``ssh-ed25519``, ``ecdsa-sha2-nistp256``, ``ssh-rsa``...)."""
        client = self._new_client()
        keys = client.get_host_keys().lookup(self.endpoint.host_key_name)
        return {kind: keys[kind] for kind in keys} if keys else {}

    # -- commands ---------------------------------------------------------------------------------------------

    def _transport(self) -> paramiko.Transport:
        client = self.connect()
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"the connection to {self.name} dropped", "check that the board is up and reachable")
        return transport

    def _session(self) -> paramiko.Channel:
        try:
            return self._transport().open_session(timeout=self.timeouts.connect)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"lost the connection to {self.name} ({self.why_lost(exc)})", "check that the board is up and reachable"
            ) from None

    def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        limit = self.timeouts.command if timeout is None else timeout
        channel = self._session()
        started = time.monotonic()
        log.debug("ssh %s: run %s", self.name, shown(argv))
        deadline = started + limit
        out, err = io.BytesIO(), io.BytesIO()
        try:
            channel.exec_command(shlex.join(argv))
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportError(
                        f"{argv[0]} on {self.name} did not finish within {limit:.0f} s",
                        "the board may be overloaded or frozen; retry, or raise the target's command_timeout",
                    )
                select.select([channel], [], [], min(remaining, 1.0))
                while channel.recv_ready():
                    out.write(channel.recv(65536))
                while channel.recv_stderr_ready():
                    err.write(channel.recv_stderr(65536))
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                if channel.closed and not channel.exit_status_ready():
                    raise EOFError("the channel closed without an exit status")
            code = channel.recv_exit_status()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"lost the connection to {self.name} while running {argv[0]} ({self.why_lost(exc)})",
                "check that the board is up and reachable",
            ) from None
        finally:
            channel.close()
        log.debug("ssh %s: exit %d in %.3f s (%d B out, %d B err)", self.name, code, time.monotonic() - started,
                  out.tell(), err.tell())  # fmt: skip
        return CommandResult(tuple(argv), code, out.getvalue(), err.getvalue())

    def start(self, argv: Sequence[str]) -> Process:
        channel = self._session()
        log.debug("ssh %s: start %s", self.name, shown(argv))
        try:
            channel.exec_command(shlex.join(argv))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"cannot start {argv[0]} on {self.name} ({_why(exc)})", "check that the board is up and reachable"
            ) from None
        return SSHProcess(channel, self.name, self.why_lost)

    # -- files ------------------------------------------------------------------------------------------------

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(self._transport())
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise TransportError(
                    f"cannot open SFTP on {self.name} ({_why(exc)})",
                    "the board's sshd needs an SFTP subsystem (Subsystem sftp internal-sftp)",
                ) from None
            assert self._sftp is not None
            # A frozen board still acknowledges TCP, so only an operation timeout notices it.
            self._sftp.get_channel().settimeout(self.timeouts.command)
        return self._sftp

    def put(self, data: bytes, remote_path: str, progress: UploadProgress | None = None) -> None:
        started = time.monotonic()
        try:
            self._sftp_client().putfo(io.BytesIO(data), remote_path, file_size=len(data), callback=progress)
            took = time.monotonic() - started
            log.debug("ssh %s: sent %d B to %s in %.3f s (%.1f MB/s)", self.name, len(data), remote_path, took,
                      len(data) / max(took, 1e-6) / 1e6)  # fmt: skip
        except TransportError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EACCES, errno.ENOENT):
                raise TransportError(
                    f"cannot write {remote_path} on {self.name}: {exc.strerror}",
                    "free disk space on the board or fix the target's workdir",
                ) from None
            raise TransportError(
                f"lost the connection to {self.name} during an upload ({self.why_lost(exc)})",
                "check that the board is up and reachable; the half-sent file is never used",
            ) from None

    def get(self, remote_path: str) -> bytes:
        buffer = io.BytesIO()
        try:
            self._sftp_client().getfo(remote_path, buffer)
        except TransportError:
            raise
        except FileNotFoundError:
            raise TransportError(f"{remote_path} does not exist on {self.name}", "the agent did not write it") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(
                f"lost the connection to {self.name} during a download ({self.why_lost(exc)})",
                "check that the board is up and reachable",
            ) from None
        log.debug("ssh %s: fetched %d B from %s", self.name, buffer.tell(), remote_path)
        return buffer.getvalue()

    def close(self) -> None:
        """Drop the connection for good: a later command fails instead of connecting again."""
        self._closed = True
        for thing in (self._sftp, self._client, *reversed(self._hops)):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        self._sftp, self._client, self._hops = None, None, []
