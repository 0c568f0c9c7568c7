"""The ssh transport against real OpenSSH servers: quoting, host keys, trust, ~/.ssh/config, ssh-agent, timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from edgeprof.errors import TransportError
from edgeprof.targets import resolve_target
from edgeprof.transports.ssh import SSHTransport, Timeouts
from tests.conftest import run_cli
from tests.testbed import Board, TestBed, write_config

pytestmark = pytest.mark.ssh

HOSTILE_ARGS = [
    "plain",
    "two words",
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "' ; touch {canary} ; '",
    '" ; touch {canary} ; "',
    "a\nb",
    "*",
    "-rf",
    "über ✓",
    "",
]


def _transport(board: Board, bed: TestBed, **kwargs: object) -> SSHTransport:
    options: dict[str, object] = {
        "port": board.port,
        "user": "root" if board.mode == "netns" else os.environ.get("USER") or _user(),
        "identity_file": str(bed.key),
        "timeouts": Timeouts(connect=5, command=10, connect_attempts=1),
        "name": board.name,
    }
    options.update(kwargs)
    return SSHTransport(board.address, **options)  # type: ignore[arg-type]


def _user() -> str:
    import getpass

    return getpass.getuser()


def _known_hosts(bed: TestBed, board: Board, tmp_path: Path) -> str:
    path = tmp_path / "known_hosts"
    path.write_text(bed.known_hosts_lines([board]))
    return str(path)


def test_arguments_reach_the_board_as_words(bed: TestBed, boards: list[Board], tmp_path: Path) -> None:
    board = boards[0]
    canary = board.home / "canary"
    args = [a.format(canary=canary) for a in HOSTILE_ARGS]
    with _transport(board, bed, known_hosts=_known_hosts(bed, board, tmp_path)) as t:
        done = t.run(["python3", "-c", "import json,sys; print(json.dumps(sys.argv[1:]))", *args])
    assert done.ok, done.stderr
    import json

    assert json.loads(done.stdout) == args
    assert not canary.exists()


def test_relative_paths_resolve_in_the_remote_home(bed: TestBed, boards: list[Board], tmp_path: Path) -> None:
    board = boards[0]
    with _transport(board, bed, known_hosts=_known_hosts(bed, board, tmp_path)) as t:
        home = t.run(["sh", "-c", 'echo "$HOME"; pwd']).text().split()
        t.put(b"payload\x00\xff", "edgeprof-test.bin")
        assert t.get("edgeprof-test.bin") == b"payload\x00\xff"
        t.run(["rm", "edgeprof-test.bin"])
    assert home[0] == home[1]
    if board.mode == "netns":  # the board's own home, not the host's /root
        assert home[0] == str(board.home)


def test_unknown_host_key_is_refused(bed: TestBed, boards: list[Board], isolated: Path) -> None:
    board = boards[0]
    write_config(bed, isolated, [board], trusted=False)
    with pytest.raises(TransportError, match="host key edgeprof does not know") as info:
        resolve_target(board.name).connect().run(["true"])
    assert f"edgeprof targets trust {board.name}" in info.value.fix
    done = run_cli("profile", "/nonexistent.tflite", "--target", board.name)  # the model error comes first
    assert done.returncode == 2
    done = run_cli("targets", "check", board.name)
    assert done.returncode == 1 and "host key edgeprof does not know" in done.stderr
    # negative control: the same board with its key recorded is reachable
    write_config(bed, isolated, [board], trusted=True)
    assert resolve_target(board.name).connect().run(["true"]).ok


def test_changed_host_key_is_refused_loudly(bed: TestBed, boards: list[Board], tmp_path: Path) -> None:
    board, other = boards[0], boards[1]
    kind, key = other.host_key_pub.read_text().split()[:2]  # another board's key under this board's name
    name = board.address if board.port == 22 else f"[{board.address}]:{board.port}"
    known = tmp_path / "known_hosts"
    known.write_text(f"{name} {kind} {key}\n")
    with pytest.raises(TransportError, match="has CHANGED") as info:
        _transport(board, bed, known_hosts=str(known)).run(["true"])
    assert "ssh-keygen -f" in info.value.fix


def _fingerprint(pub: Path) -> str:
    return subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True).stdout


def test_trust_shows_the_fingerprint_and_records_only_on_confirmation(
    bed: TestBed, boards: list[Board], isolated: Path
) -> None:
    board = boards[1]
    config = write_config(bed, isolated, [board], trusted=False)
    known = config.parent / f"{config.stem}.known_hosts"
    expected = _fingerprint(board.host_key_pub).split()[1]  # SHA256:...

    declined = subprocess.run(
        ["python", "-m", "edgeprof", "targets", "trust", board.name], input="n\n", capture_output=True, text=True
    )
    assert declined.returncode == 1 and expected in declined.stdout and "not recorded" in declined.stderr
    assert known.read_text() == ""
    no_answer = subprocess.run(
        ["python", "-m", "edgeprof", "targets", "trust", board.name], input="", capture_output=True, text=True
    )
    assert no_answer.returncode != 0 and known.read_text() == ""

    accepted = subprocess.run(
        ["python", "-m", "edgeprof", "targets", "trust", board.name], input="y\n", capture_output=True, text=True
    )
    assert accepted.returncode == 0, accepted.stderr
    assert expected in accepted.stdout and "recorded in" in accepted.stdout
    assert resolve_target(board.name).connect().run(["true"]).ok
    again = run_cli("targets", "trust", board.name, "--yes")
    assert again.returncode == 0 and "already trusted" in again.stdout
    assert len(known.read_text().splitlines()) == 1


def test_trust_yes_records_without_asking(bed: TestBed, boards: list[Board], isolated: Path) -> None:
    board = boards[2]
    write_config(bed, isolated, [board], trusted=False)
    done = run_cli("targets", "trust", board.name, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "recorded"
    assert answer["fingerprint"] == _fingerprint(board.host_key_pub).split()[1]
    again = json.loads(run_cli("targets", "trust", board.name, "--json").stdout)
    assert again["status"] == "trusted"
    checked = run_cli("targets", "check", board.name, "--json")
    assert checked.returncode == 0, checked.stderr


def test_ssh_config_alias_and_proxy_jump(
    bed: TestBed, boards: list[Board], isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    jump, board = boards[0], boards[1]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    user = "root" if board.mode == "netns" else _user()
    (home / ".ssh" / "known_hosts").write_text(bed.known_hosts_lines([jump, board]))
    (home / ".ssh" / "config").write_text(
        f"Host lab-jump\n  HostName {jump.address}\n  Port {jump.port}\n  User {user}\n  IdentityFile {bed.key}\n"
        f"Host lab-board\n  HostName {board.address}\n  Port {board.port}\n  User {user}\n"
        f"  IdentityFile {bed.key}\n"
        f"Host lab-behind\n  HostName {board.address}\n  Port {board.port}\n  User {user}\n"
        f"  IdentityFile {bed.key}\n  ProxyJump lab-jump\n"
    )
    monkeypatch.setenv("HOME", str(home))
    (isolated / "edgeprof.toml").write_text(
        '[targets.direct]\nhost = "lab-board"\n\n[targets.behind]\nhost = "lab-behind"\n'
    )
    with resolve_target("direct").connect() as t:
        assert t.run(["hostname"]).text().strip() == board.hostname
    with resolve_target("behind").connect() as t:
        assert t.run(["hostname"]).text().strip() == board.hostname
        assert len(t._hops) == 1  # really through the jump host


def test_ssh_agent_keys_are_used(bed: TestBed, boards: list[Board], tmp_path: Path, monkeypatch) -> None:
    board = boards[0]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)  # no key files: only the agent can log us in
    monkeypatch.setenv("HOME", str(home))
    known = _known_hosts(bed, board, tmp_path)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(TransportError, match="no SSH key to log in"):  # negative control: no agent, no key
        _transport(board, bed, identity_file=None, known_hosts=known).run(["true"])
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(bed.key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with _transport(board, bed, identity_file=None, known_hosts=known) as t:
            assert t.run(["true"]).ok
    finally:
        agent.terminate()
        agent.wait()


def test_connecting_retries_with_back_off_then_says_why(tmp_path: Path) -> None:
    closed = 1  # nothing listens on port 1 of loopback: connection refused at once
    t = SSHTransport("127.0.0.1", port=closed, timeouts=Timeouts(connect=2, connect_attempts=3), name="gone")
    started = time.monotonic()
    with pytest.raises(TransportError, match="after 3 attempts") as info:
        t.run(["true"])
    elapsed = time.monotonic() - started
    assert t.connect_attempts_made == 3
    assert 1.5 <= elapsed < 5  # 0.5 s then 1 s of back-off (+ jitter), no more
    assert "ConnectionRefusedError" in str(info.value) and "edgeprof targets check" in info.value.fix


def test_a_command_that_hangs_times_out(bed: TestBed, boards: list[Board], tmp_path: Path) -> None:
    board = boards[0]
    with _transport(board, bed, known_hosts=_known_hosts(bed, board, tmp_path)) as t:
        started = time.monotonic()
        with pytest.raises(TransportError, match="did not finish within 1 s"):
            t.run(["sleep", "30"], timeout=1)
        assert time.monotonic() - started < 3
        assert t.run(["true"]).ok  # the connection survives a timed-out command
