#!/usr/bin/env python3
"""A test bed of boards on one machine: real OpenSSH servers, one per board, and faults to inject into them.

As root, each board is a network namespace with its own veth link and address (10.X.N.2/30, the host is
10.X.N.1), its own hostname (``unshare --uts``), its own home directory (a private mount namespace whose
/etc/passwd points root's home at the board's folder), and its own sshd with its own host key. Without root, each
board is an sshd on a loopback port with its own host key and work directory; the faults that need root (link down,
bandwidth cap, delay and loss) are then unavailable and say so.

The emulated arm64 board (``scripts/testbed/arm64-board.sh`` builds its root file system once) runs the chroot's own
sshd inside a namespace; qemu-user runs every arm64 binary transparently through binfmt_misc.

Faults: ``link_down`` (the veth goes down, mid-upload if you like), ``kill`` (SIGKILL to every process of the board,
as if it lost power), ``freeze``/``thaw`` (SIGSTOP/SIGCONT), ``rate_limit`` (tbf on the host's side of the link, so
uploads are capped), ``impair`` (delay and loss in user space: this kernel has no netem, so an NFQUEUE rule inside
the board's namespace hands each SSH packet to a small ctypes program that drops or holds it).

Command line (the state lives in DIR, so ``down`` works from another process):

    sudo python3 scripts/testbed/testbed.py up --boards 4 --dir /tmp/bed [--arm64 ROOTFS]
    edgeprof targets list --config /tmp/bed/edgeprof.toml
    sudo python3 scripts/testbed/testbed.py down --dir /tmp/bed
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def is_root() -> bool:
    return os.geteuid() == 0


def netns_unavailable_reason() -> str | None:
    """Why namespace boards cannot run here, or None when they can."""
    if not is_root():
        return "network namespaces, veth links and tc need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2 is not installed (apt-get install iproute2)"
    if not Path(SSHD).exists():
        return "OpenSSH's sshd is not installed (apt-get install openssh-server)"
    return None


def sshd_unavailable_reason() -> str | None:
    if not Path(SSHD).exists():
        return "OpenSSH's sshd is not installed (apt-get install openssh-server; ./scripts/test does it as root)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed (apt-get install openssh-client)"
    return None


def _run(*argv: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(
    address: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5) as sock:
            sock.settimeout(2)
            if sock.recv(64).startswith(b"SSH-"):
                return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"sshd on {address}:{port} did not come up: {tail}")


@dataclass
class Board:
    name: str
    index: int
    mode: str  # netns | loopback
    address: str
    port: int
    state: str  # the board's folder on the host
    hostname: str
    netns: str | None = None
    host_veth: str | None = None
    rootfs: str | None = None  # emulated boards: the chroot
    python: str = sys.executable
    workdir: str = ".edgeprof"
    pid: int | None = None
    impairer_pid: int | None = None
    cgroup: str | None = None  # a CPU quota's cgroup folder, see TestBed.cpu_quota
    host_key_types: tuple[str, ...] = ("ed25519",)  # sshd offers every one of them (ssh-keygen -t names)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        """The board's home directory as seen from the host."""
        return Path(self.state) / "home"

    @property
    def workdir_on_host(self) -> Path:
        path = Path(self.workdir)
        return path if path.is_absolute() else self.home / path

    @property
    def host_key_pub(self) -> Path:
        return self.host_key_pub_of("ed25519")

    def host_key_pub_of(self, kind: str) -> Path:
        """The public host key of one type (``ed25519``, ``ecdsa``, ``rsa``)."""
        return Path(self.state) / f"ssh_host_{kind}_key.pub"


class TestBed:
    """Boards on this machine; :meth:`down` removes every namespace, link and process it made."""

    __test__ = False  # not a pytest test class

    def __init__(self, root: str | os.PathLike[str], *, mode: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.mode = mode or os.environ.get("EDGEPROF_TESTBED_MODE") or ("netns" if is_root() else "loopback")
        if self.mode == "netns" and (reason := netns_unavailable_reason()):
            raise RuntimeError(reason)
        self.tag = f"{random.randrange(0x10000):04x}"
        self.subnet = random.randrange(64, 250)
        self.boards: dict[str, Board] = {}
        self.key = self.root / "id_ed25519"
        if not self.key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeprof-testbed", "-f", str(self.key))

    # -- state ------------------------------------------------------------------------------------------------

    def save(self) -> None:
        data = {
            "mode": self.mode,
            "tag": self.tag,
            "subnet": self.subnet,
            "boards": {n: asdict(b) for n, b in self.boards.items()},
        }
        (self.root / "testbed.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> TestBed:
        data = json.loads((Path(root) / "testbed.json").read_text())
        bed = cls(root, mode=data["mode"])
        bed.tag, bed.subnet = data["tag"], data["subnet"]
        bed.boards = {n: Board(**b) for n, b in data["boards"].items()}
        return bed

    # -- boards -----------------------------------------------------------------------------------------------

    def _write_sshd_files(
        self, state: Path, listen: str, port: int, inside: str, key_types: tuple[str, ...] = ("ed25519",)
    ) -> None:
        """Host keys, authorized key and sshd_config; ``inside`` is how sshd sees ``state`` (differs in a chroot)."""
        state.mkdir(parents=True, exist_ok=True)
        for kind in key_types:
            key = state / f"ssh_host_{kind}_key"
            if not key.exists():
                _run("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", state.name, "-f", str(key))
        shutil.copy(f"{self.key}.pub", state / "authorized_keys")
        (state / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {listen}",
                    f"Port {port}",
                    *(f"HostKey {inside}/ssh_host_{kind}_key" for kind in key_types),
                    f"AuthorizedKeysFile {inside}/authorized_keys",
                    f"PidFile {inside}/sshd.pid",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    "AllowTcpForwarding yes",
                    "MaxStartups 100:30:200",
                    "MaxSessions 64",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def add_board(
        self,
        name: str | None = None,
        *,
        rootfs: str | None = None,
        python: str | None = None,
        host_key_types: tuple[str, ...] = ("ed25519",),
    ) -> Board:
        """A running board; ``host_key_types`` gives its sshd one host key of each type (``ed25519``, ``ecdsa``)."""
        index = max((b.index for b in self.boards.values()), default=0) + 1
        name = name or f"board-{index}"
        state = self.root / "boards" / name
        (state / "home").mkdir(parents=True, exist_ok=True)
        if self.mode == "netns":
            board = self._add_netns_board(name, index, state, rootfs, host_key_types)
        else:
            if rootfs:
                raise RuntimeError("an emulated board needs root (namespaces and a chroot)")
            board = self._add_loopback_board(name, index, state, host_key_types)
        if python:
            board.python = python
        self.save()
        return board

    def _add_loopback_board(self, name: str, index: int, state: Path, key_types: tuple[str, ...]) -> Board:
        port = _free_port()
        self._write_sshd_files(state, "127.0.0.1", port, str(state), key_types)
        board = Board(
            name=name,
            index=index,
            mode="loopback",
            address="127.0.0.1",
            port=port,
            state=str(state),
            hostname=socket.gethostname(),
            workdir=str(state / "home" / ".edgeprof"),
            host_key_types=key_types,
        )
        if is_root():  # a home of its own (see _private_passwd), so the host's ~/.bashrc does not run per command
            self._private_passwd(state)
            board.workdir = ".edgeprof"
        self.boards[name] = board
        self._start_sshd(board)
        return board

    def _private_passwd(self, state: Path) -> None:
        """A copy of /etc/passwd whose root home is the board's folder, bind-mounted in the board's mount namespace."""
        passwd = Path("/etc/passwd").read_text().splitlines()
        fields = passwd[0].split(":")
        assert fields[0] == "root", "the first /etc/passwd entry should be root"
        fields[5] = str(state / "home")
        (state / "passwd").write_text("\n".join([":".join(fields), *passwd[1:]]) + "\n")

    def _add_netns_board(
        self, name: str, index: int, state: Path, rootfs: str | None, key_types: tuple[str, ...]
    ) -> Board:
        ns = f"ep{self.tag}-{index}"
        host_veth, board_veth = f"e{self.tag}{index:02d}h", f"e{self.tag}{index:02d}b"
        host_ip, board_ip = f"10.{self.subnet}.{index}.1", f"10.{self.subnet}.{index}.2"
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", host_veth, "type", "veth", "peer", "name", board_veth, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_veth)
        _run("ip", "link", "set", host_veth, "up")
        # Boards reach each other through the host (ProxyJump tests); only these links forward, not the host's own.
        _run("sysctl", "-q", "-w", f"net.ipv4.conf.{host_veth}.forwarding=1")
        _run("ip", "-n", ns, "addr", "add", f"{board_ip}/30", "dev", board_veth)
        _run("ip", "-n", ns, "link", "set", board_veth, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "route", "add", "default", "via", host_ip)
        board = Board(
            name=name,
            index=index,
            mode="netns",
            address=board_ip,
            port=22,
            state=str(state),
            hostname=name,
            netns=ns,
            host_veth=host_veth,
            rootfs=rootfs,
            host_key_types=key_types,
        )
        self.boards[name] = board  # from here on, down() cleans it up
        if rootfs:
            inside = "/etc/edgeprof-board"
            Path(rootfs, inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
            Path(rootfs, "run/sshd").mkdir(parents=True, exist_ok=True)
            self._write_sshd_files(state, board_ip, 22, inside, key_types)
            board.python = "/opt/edgeprof-venv/bin/python"
        else:
            self._write_sshd_files(state, board_ip, 22, str(state), key_types)
            self._private_passwd(state)
        self._start_sshd(board)
        return board

    def _start_sshd(self, board: Board) -> None:
        state = Path(board.state)
        log = state / "sshd.log"
        if board.mode == "loopback" and not (state / "passwd").exists():
            argv = [SSHD, "-D", "-e", "-f", str(state / "sshd_config")]
        elif board.mode == "loopback":
            script = (
                'set -e; mount --bind "$1/passwd" /etc/passwd; mkdir -p /run/sshd; exec "$2" -D -e -f "$1/sshd_config"'
            )
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(state), SSHD]
        elif board.rootfs:
            root = board.rootfs
            # /proc and /dev for the chroot, the board's own home over the cached root's /root, never /sys (LiteRT's
            # CPU detection crashes under qemu when it can read /sys).
            script = (
                'set -e; hostname "$1"; root="$2"; state="$3"; '
                'mount -t proc proc "$root/proc"; mount --rbind /dev "$root/dev"; '
                'mount --bind "$state" "$root/etc/edgeprof-board"; mount --bind "$state/home" "$root/root"; '
                'exec chroot "$root" /usr/sbin/sshd -D -e -f /etc/edgeprof-board/sshd_config'
            )
            argv = [
                "ip", "netns", "exec", board.netns or "", "unshare", "--uts", "--mount", "--propagation", "private",
                "sh", "-c", script, "sh", board.hostname, root, str(state),
            ]  # fmt: skip
        else:
            script = (
                'set -e; hostname "$1"; state="$2"; mount --bind "$state/passwd" /etc/passwd; '
                'mkdir -p /run/sshd; exec "$3" -D -e -f "$state/sshd_config"'
            )
            argv = [
                "ip", "netns", "exec", board.netns or "", "unshare", "--uts", "--mount", "--propagation", "private",
                "sh", "-c", script, "sh", board.hostname, str(state), SSHD,
            ]  # fmt: skip
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        board.pid = proc.pid
        _wait_listening(board.address, board.port, 60 if board.rootfs else 10, proc, log)
        self.save()

    def restart(self, board: Board) -> None:
        """Power the board back on after :meth:`kill` (its files survive, as on a real board)."""
        self.kill(board)
        self._start_sshd(board)

    # -- the edgeprof.toml for the boards ------------------------------------------------------------------------

    def known_hosts_lines(self, boards: list[Board] | None = None, key_type: str = "ed25519") -> str:
        """known_hosts lines for the boards' host keys of one type (``ssh-keygen -t`` names it)."""
        lines = []
        for board in boards or list(self.boards.values()):
            kind, key = board.host_key_pub_of(key_type).read_text().split()[:2]
            name = board.address if board.port == 22 else f"[{board.address}]:{board.port}"
            lines.append(f"{name} {kind} {key}")
        return "\n".join(lines) + "\n"

    def write_config(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        boards: list[Board] | None = None,
        trusted: bool = True,
        extra: dict[str, dict[str, object]] | None = None,
        groups: dict[str, list[str]] | None = None,
    ) -> Path:
        """An edgeprof.toml with one target per board; ``trusted`` also writes their host keys to known_hosts."""
        path = Path(path) if path else self.root / "edgeprof.toml"
        known = path.parent / f"{path.stem}.known_hosts"
        known.write_text(self.known_hosts_lines(boards) if trusted else "")
        lines = ["# Written by scripts/testbed/testbed.py: one target per test-bed board.", ""]
        for board in boards or list(self.boards.values()):
            settings: dict[str, object] = {
                "kind": "linux",
                "host": board.address,
                "port": board.port,
                "user": "root" if board.mode == "netns" else _whoami(),
                "identity_file": str(self.key),
                "known_hosts": str(known),
                "python": board.python,
                "workdir": board.workdir,
                "workdir_max_mb": 512,
                "connect_attempts": 2,
                "description": f"test-bed board {board.name} ({board.mode}"
                + (f" {board.netns}" if board.netns else "")
                + (", emulated arm64" if board.rootfs else "")
                + ")",
            }
            if board.rootfs:
                settings["emulated"] = True
                settings["command_timeout"] = 180.0
            settings.update((extra or {}).get(board.name, {}))
            lines.append(f"[targets.{board.name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in settings.items() if value is not None)
            lines.append("")
        if groups:
            lines.append("[groups]")
            lines.extend(f"{group} = {_toml_value(members)}" for group, members in groups.items())
            lines.append("")
        path.write_text("\n".join(lines))
        return path

    # -- looking at boards -----------------------------------------------------------------------------------------

    def pids(self, board: Board) -> list[int]:
        """Every process of the board: its namespace's, or (loopback) sshd and its descendants."""
        if board.mode == "netns" and board.netns:
            done = _run("ip", "netns", "pids", board.netns, check=False)
            return [int(p) for p in done.stdout.split()]
        found = {board.pid} if board.pid else set()
        changed = True
        while changed:
            changed = False
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    pid = int(stat.parent.name)
                    ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                    if ppid in found and pid not in found:
                        found.add(pid)
                        changed = True
        return sorted(p for p in found if p)

    def processes(self, board: Board, needle: str | re.Pattern[str]) -> list[int]:
        """Processes of the board whose command line contains ``needle`` or matches the pattern (also orphans of
        loopback boards)."""
        candidates = set(self.pids(board))
        if board.mode == "loopback":
            candidates |= {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
        hits = []
        for pid in candidates:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cwd = os.readlink(f"/proc/{pid}/cwd") if board.mode == "loopback" else ""
                mine = board.mode == "netns" or board.state in cmdline or cwd.startswith(board.state)
                found = needle.search(cmdline) if isinstance(needle, re.Pattern) else needle in cmdline
                if found and state != "Z" and mine:
                    hits.append(pid)
        return hits

    def link_bytes(self, board: Board) -> int:
        """Bytes the host has sent to the board over its link (netns boards only)."""
        assert board.host_veth, "loopback boards have no link of their own"
        return int(Path(f"/sys/class/net/{board.host_veth}/statistics/tx_bytes").read_text())

    # -- faults ----------------------------------------------------------------------------------------------------

    def _need_link(self, board: Board, fault: str) -> str:
        if board.host_veth is None:
            raise RuntimeError(f"{fault} needs a namespace board (root); {board.name} is a loopback board")
        return board.host_veth

    def link_down(self, board: Board) -> None:
        _run("ip", "link", "set", self._need_link(board, "link down"), "down")

    def link_up(self, board: Board) -> None:
        _run("ip", "link", "set", self._need_link(board, "link up"), "up")

    def kill(self, board: Board) -> None:
        """SIGKILL every process of the board, as if it lost power."""
        for pid in self.pids(board):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if board.pid:
            with contextlib.suppress(ChildProcessError, ProcessLookupError):
                os.waitpid(board.pid, 0)
        deadline = time.monotonic() + 5
        while self.pids(board) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A chroot board's mounts lived in its private mount namespace, which died with its processes.
        board.pid = None
        self.save()

    def freeze(self, board: Board) -> None:
        for pid in self.pids(board):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self, board: Board) -> None:
        for pid in self.pids(board):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def rate_limit(self, board: Board, rate: str = "1mbit") -> None:
        """Cap what the host sends to the board (uploads) with a token bucket (tbf)."""
        veth = self._need_link(board, "a bandwidth cap")
        _run("tc", "qdisc", "replace", "dev", veth, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms")

    def clear_rate_limit(self, board: Board) -> None:
        _run("tc", "qdisc", "del", "dev", self._need_link(board, "a bandwidth cap"), "root", check=False)

    def impair(self, board: Board, *, delay_ms: float = 0.0, loss: float = 0.0, seed: int = 0) -> None:
        """Delay and drop the board's SSH packets in user space (NFQUEUE inside the board's namespace)."""
        ns = board.netns
        if ns is None:
            raise RuntimeError("delay and loss need a namespace board (root)")
        self.clear_impairment(board)
        iptables = shutil.which("iptables-legacy") or "iptables"
        queue = 100 + board.index
        for chain, flag in (("INPUT", "--dport"), ("OUTPUT", "--sport")):
            _run("ip", "netns", "exec", ns, iptables, "-A", chain, "-p", "tcp", flag, str(board.port),
                 "-j", "NFQUEUE", "--queue-num", str(queue))  # fmt: skip
        log = Path(board.state) / "impair.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, str(HERE / "impair.py"), "--queue", str(queue),
                 "--delay-ms", str(delay_ms), "--loss", str(loss), "--seed", str(seed)],
                stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        board.impairer_pid = proc.pid
        deadline = time.monotonic() + 5
        while b"ready" not in log.read_bytes() and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the packet impairer failed: {log.read_text()[-800:]}")
            time.sleep(0.02)
        self.save()

    def clear_impairment(self, board: Board) -> None:
        if board.netns:
            iptables = shutil.which("iptables-legacy") or "iptables"
            _run("ip", "netns", "exec", board.netns, iptables, "-F", check=False)
        if board.impairer_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(board.impairer_pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(board.impairer_pid, 0)
            board.impairer_pid = None

    def cpu_quota(self, board: Board, cpus: float) -> None:
        """Give the board its own CPU share (a CFS quota on its processes and all they start).

        Boards on this host share its cores; real boards each have their own. A quota per board makes N boards
        behave like N machines of ``cpus`` CPUs each (so 8 boards of 0.25 CPU fit 2 host cores).
        """
        v1 = Path("/sys/fs/cgroup/cpu")
        v2 = Path("/sys/fs/cgroup")
        controllers = (v2 / "cgroup.controllers").read_text().split() if (v2 / "cgroup.controllers").exists() else []
        if (v1 / "cpu.cfs_quota_us").exists():
            folder = v1 / f"edgeprof-testbed-{board.name}-{os.getpid()}"
            folder.mkdir(exist_ok=True)
            (folder / "cpu.cfs_period_us").write_text("100000")
            (folder / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
        elif "cpu" in controllers:
            folder = v2 / f"edgeprof-testbed-{board.name}-{os.getpid()}"
            folder.mkdir(exist_ok=True)
            (folder / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")
        else:
            raise RuntimeError("this kernel offers no cgroup cpu controller for a CPU quota")
        for pid in self.pids(board):
            with contextlib.suppress(OSError):
                (folder / "cgroup.procs").write_text(str(pid))
        board.cgroup = str(folder)
        self.save()

    def clear_cpu_quota(self, board: Board) -> None:
        if not board.cgroup:
            return
        folder = Path(board.cgroup)
        parent = folder.parent / "cgroup.procs"
        with contextlib.suppress(OSError):
            for pid in (folder / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    parent.write_text(pid)
        with contextlib.suppress(OSError):
            folder.rmdir()
        board.cgroup = None
        self.save()

    def repair(self, board: Board) -> None:
        """Undo every fault: thaw, link up, no cap, no impairment, sshd running."""
        self.thaw(board)
        if board.host_veth:
            self.link_up(board)
            self.clear_rate_limit(board)
        self.clear_impairment(board)
        if board.pid is None or not Path(f"/proc/{board.pid}").exists():
            self.restart(board)

    # -- teardown ----------------------------------------------------------------------------------------------

    def remove_board(self, board: Board) -> None:
        """Stop one board and remove its namespace and link (its folder stays, for post-mortems)."""
        with contextlib.suppress(Exception):
            self.thaw(board)
        with contextlib.suppress(Exception):
            self.clear_impairment(board)
        with contextlib.suppress(Exception):
            self.kill(board)
        with contextlib.suppress(Exception):
            self.clear_cpu_quota(board)
        if board.netns:
            _run("ip", "link", "del", board.host_veth or "", check=False)
            _run("ip", "netns", "del", board.netns, check=False)
        self.boards.pop(board.name, None)
        self.save()

    def down(self) -> None:
        for board in list(self.boards.values()):
            self.remove_board(board)


def _whoami() -> str:
    import getpass

    return getpass.getuser()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return f'"{text}"'  # a TOML basic string


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start boards and write DIR/edgeprof.toml")
    up.add_argument("--boards", type=int, default=4)
    up.add_argument("--dir", required=True)
    up.add_argument("--arm64", metavar="ROOTFS", help="also boot the emulated arm64 board from this root")
    up.add_argument("--mode", choices=["netns", "loopback"])
    down = sub.add_parser("down", help="stop every board of DIR")
    down.add_argument("--dir", required=True)
    status = sub.add_parser("status", help="list the boards of DIR")
    status.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        bed = TestBed(args.dir, mode=args.mode)
        for _ in range(args.boards):
            bed.add_board()
        if args.arm64:
            bed.add_board("arm64", rootfs=args.arm64)
        config = bed.write_config(groups={"testbed": ["board-*"]})
        print(f"{len(bed.boards)} boards up ({bed.mode}); config: {config}")
        print(f"try: edgeprof targets check --config {config} testbed")
    elif args.command == "down":
        TestBed.load(args.dir).down()
    else:
        bed = TestBed.load(args.dir)
        for board in bed.boards.values():
            alive = board.pid is not None and Path(f"/proc/{board.pid}").exists()
            print(f"{board.name:10} {board.address}:{board.port} {board.mode:8} {'up' if alive else 'down'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
