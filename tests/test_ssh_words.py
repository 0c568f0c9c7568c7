"""What a user reads when boards misbehave, on the real OpenSSH test bed: one line naming the problem and the fix,
the right exit code, and nothing blamed on a board that is not at fault."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgeprof
from edgeprof.errors import TransportError
from edgeprof.targets import resolve_target
from tests.conftest import run_cli
from tests.testbed import QUICK_CLI, Board, LineReader, TestBed, cli_process, write_config

pytestmark = pytest.mark.ssh

AGENT = re.compile(r"-u \S*agent/edgeprof-agent-[0-9a-f]{16}\.pyz")


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("edgeprof: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@contextlib.contextmanager
def _listener(board: Board, greeting: bytes | None) -> Iterator[int]:
    """A TCP port on the board's address that accepts connections and says nothing (or ``greeting``)."""
    if board.netns:  # inside the board's namespace, where its sshd lives
        script = (
            "import socket,sys,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind((sys.argv[1], 2200)); s.listen(20); print('ready', flush=True); kept=[]\n"
            "while True:\n"
            "    c, _ = s.accept(); kept.append(c)\n"
            "    if sys.argv[2]: c.sendall(sys.argv[2].encode())\n"
        )
        proc = subprocess.Popen(
            ["ip", "netns", "exec", board.netns, sys.executable, "-c", script, board.address,
             (greeting or b"").decode()],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        try:
            yield 2200
        finally:
            proc.kill()
            proc.wait()
        return
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(20)
    kept: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                kept.append(conn)
                if greeting:
                    conn.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize(
    "greeting", [None, b"HTTP/1.0 400 Bad Request\r\n\r\n"], ids=["silent-port", "another-service"]
)
def test_a_port_without_an_ssh_server_is_one_line_and_no_retry(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path, greeting: bytes | None
) -> None:
    board = boards[0]
    with _listener(board, greeting) as port:
        write_config(bed, isolated, [board], extra={board.name: {"port": port, "connect_timeout": 2}})
        done = run_cli("profile", str(models / "int8.tflite"), "--target", board.name, *QUICK_CLI)
        assert done.returncode == 2, done.stderr
        line = _one_error_line(done.stderr)  # not six paramiko tracebacks
        assert "No existing session" not in line
        if greeting is None:
            assert "accepts TCP connections but no SSH server greets there" in line
        else:
            assert "answers, but not as an SSH server (it said 'HTTP/1.0 400 Bad Request')" in line
        assert f"check the port: is sshd listening on port {port}" in line
        transport = resolve_target(board.name).connect()
        with pytest.raises(TransportError):
            transport.run(["true"])
        assert transport.connect_attempts_made == 1  # a wrong port is not a flaky network: no retries


def test_a_hung_agent_is_noticed_soon_after_its_measurement_should_have_ended(
    bed: TestBed, fresh_board, isolated: Path, models: Path
) -> None:
    board = fresh_board()
    write_config(bed, isolated, [board], extra={board.name: {"command_timeout": 20.0}})  # 10 s of slack
    stopped: list[int] = []
    at: list[float] = []

    def on_event(event: dict) -> None:
        if event.get("event") == "phase" and event.get("phase") == "measure" and not stopped:
            at.append(time.monotonic())
            # the agent itself, not the reaper above it: sshd and the connection stay healthy, only the agent hangs
            for pid in bed.processes(board, AGENT):
                if " -c " not in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)

    try:
        with pytest.raises(TransportError) as info:
            edgeprof.profile(
                models / "float.tflite", board.name, max_seconds=5, min_seconds=60, warmup_seconds=0,
                idle_seconds=0, on_event=on_event,
            )  # fmt: skip
        waited = time.monotonic() - at[0]
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert stopped, "the agent was not found on the board"
    message = str(info.value)
    assert "sent nothing for 15 s while measuring" in message, message  # 5 s planned + 10 s of slack
    assert "--timeout" not in message and "command_timeout" in message  # an option that exists
    # before, the deadline was 120 s + 2 x --max-seconds whatever the phase: 130 s here
    assert waited < 60, waited
    deadline = time.monotonic() + 5
    while bed.processes(board, AGENT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not bed.processes(board, AGENT), "the hung agent was left on the board"


@pytest.mark.parametrize("bad", ["missing", "not-tflite"])
def test_a_bad_model_in_a_fleet_is_one_error_before_any_board_is_touched(
    bed: TestBed, boards: list[Board], isolated: Path, bad: str
) -> None:
    write_config(bed, isolated, boards[:2])
    model = isolated / "model.tflite"
    if bad == "not-tflite":
        model.write_text("not a model")
    done = run_cli("profile", str(model), "--target", "board-1,board-2", *QUICK_CLI)
    assert done.returncode == 2, done.stderr  # bad input, as with one target; not 1 ("a board failed")
    line = _one_error_line(done.stderr)
    assert ("does not exist" if bad == "missing" else "not a TFLite model") in line
    assert "stored" not in line and "boards failed" not in line
    assert not (isolated / "results.db").exists()  # no board was touched, nothing was opened


def test_a_missing_identity_file_is_named_at_once_and_no_board_is_blamed(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path
) -> None:
    long_dir = isolated / ("keys-" + "k" * 90) / ("lab-" + "l" * 60)
    missing = long_dir / "id_ed25519"
    write_config(bed, isolated, boards[:2], extra={b.name: {"identity_file": str(missing)} for b in boards[:2]})
    done = run_cli("profile", str(models / "int8.tflite"), "--target", "board-1", *QUICK_CLI)
    assert done.returncode == 2
    line = _one_error_line(done.stderr)
    assert f"the SSH key file of board-1, {missing}, does not exist" in line
    assert "attempts" not in line and "board is on" not in line
    transport = resolve_target("board-1").connect()
    with pytest.raises(TransportError, match="does not exist"):
        transport.run(["true"])
    assert transport.connect_attempts_made == 0  # not retried: the board was never contacted

    # a fleet whose every board fails: nothing was stored, and the log's failure lines are whole
    fleet = run_cli("profile", str(models / "int8.tflite"), "--target", "board-1,board-2", *QUICK_CLI, "--verbose")
    assert fleet.returncode == 1
    assert "2 of 2 boards failed (board-1, board-2); no result was stored" in fleet.stderr
    assert "the other results are stored" not in fleet.stderr
    failed = [line for line in fleet.stderr.splitlines() if ": FAILED: " in line]
    assert len(failed) == 2 and all(line.endswith("and ~/.ssh/id_*") for line in failed), failed


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_ctrl_c_in_a_fleet_says_interrupted_not_failed(
    bed: TestBed, healthy: list[Board], isolated: Path, models: Path, verbose: bool
) -> None:
    chosen = healthy[:2]
    write_config(bed, isolated, chosen)
    before = {b.name: set(bed.processes(b, AGENT)) for b in chosen}  # agents of other tests are not ours

    def ours_running() -> bool:
        return all(set(bed.processes(b, AGENT)) - before[b.name] for b in chosen)

    proc = cli_process(
        "profile", str(models / "float.tflite"), "--target", ",".join(b.name for b in chosen),
        "--min-seconds", "60", "--max-seconds", "120", "--warmup-seconds", "0", "--idle-seconds", "0",
        *(["--verbose"] if verbose else []),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ours_running() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave it holding the boards for the next tests
        raise AssertionError(f"edgeprof did not stop within 30 s of Ctrl-C: {proc.communicate()[1]}") from None
    assert proc.returncode == 130, err
    if verbose:
        for board in chosen:
            assert f"{board.name}: interrupted" in err, err
    assert "FAILED" not in err and "went away" not in err, err
    assert err.rstrip().endswith("edgeprof: interrupted")


def _known(bed: TestBed, board: Board, key_type: str, path: Path) -> Path:
    path.write_text(bed.known_hosts_lines([board], key_type=key_type))
    return path


def test_trust_compares_keys_of_the_same_type_on_a_board_with_two_host_keys(
    bed: TestBed, fresh_board, isolated: Path, tmp_path: Path
) -> None:
    board = fresh_board(host_key_types=("ed25519", "ecdsa"))
    other = fresh_board(host_key_types=("ed25519", "ecdsa"))
    config = write_config(bed, isolated, [board])
    known = config.parent / f"{config.stem}.known_hosts"

    # known_hosts has only the board's ecdsa key; it offers ed25519 first: still the same board
    _known(bed, board, "ecdsa", known)
    done = run_cli("targets", "trust", board.name, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "trusted"
    assert resolve_target(board.name).connect().run(["true"]).ok

    # negative control: another board's ecdsa key under this board's name is a DIFFERENT key
    name = board.address if board.port == 22 else f"[{board.address}]:{board.port}"
    kind, key = other.host_key_pub_of("ecdsa").read_text().split()[:2]
    known.write_text(f"{name} {kind} {key}\n")
    refused = run_cli("targets", "trust", board.name, "--yes")
    assert refused.returncode == 2 and "holds a DIFFERENT ecdsa-sha2-nistp256 key" in refused.stderr

    # only an rsa key is known, the board offers none: a new key to check, not a changed one
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(tmp_path / "rsa")], check=True)
    kind, key = (tmp_path / "rsa.pub").read_text().split()[:2]
    known.write_text(f"{name} {kind} {key}\n")
    with pytest.raises(TransportError, match="offers only a ssh-ed25519 host key") as info:
        resolve_target(board.name).connect().run(["true"])
    assert "CHANGED" not in str(info.value) and "edgeprof targets trust" in info.value.fix
    recorded = run_cli("targets", "trust", board.name, "--yes", "--json")
    assert recorded.returncode == 0, recorded.stderr
    assert json.loads(recorded.stdout)["status"] == "recorded"
    assert "not a changed one" in recorded.stderr and "DIFFERENT" not in recorded.stderr
    assert len(known.read_text().splitlines()) == 2  # the rsa line stays, the ed25519 line is added
    assert resolve_target(board.name).connect().run(["true"]).ok


def test_ctrl_c_also_stops_a_board_that_still_waits_for_its_lock(
    bed: TestBed, healthy: list[Board], isolated: Path, models: Path
) -> None:
    from edgeprof.deploy import board_lock

    chosen = healthy[2:4]
    write_config(bed, isolated, chosen)
    with board_lock(resolve_target(chosen[1].name)):  # another job holds the second board
        proc = cli_process(
            "profile", str(models / "float.tflite"), "--target", ",".join(b.name for b in chosen),
            "--min-seconds", "60", "--max-seconds", "120", "--warmup-seconds", "0", "--idle-seconds", "0", "-v",
        )  # fmt: skip
        assert proc.stderr is not None
        lines = LineReader(proc.stderr)
        lines.wait_for(lambda line: f"{chosen[1].name}: waiting for the board" in line, timeout=60)
        lines.wait_for(lambda line: f"{chosen[0].name}: measuring" in line, timeout=60)
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)  # not after the other job, nor after --wait-seconds
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"edgeprof did not stop within 30 s of Ctrl-C: {lines.text()}") from None
    assert code == 130, lines.text()
    lines.wait_for(lambda line: line == "edgeprof: interrupted", timeout=5)
    for board in chosen:
        assert f"{board.name}: interrupted" in lines.text(), lines.text()
    assert "FAILED" not in lines.text()
