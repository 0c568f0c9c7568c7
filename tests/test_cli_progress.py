"""Progress on a real pseudo terminal and none in pipes; a busy board named with its holder; the --verbose log."""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import sys
import time
from pathlib import Path

import pytest

from edgeprof.deploy import board_lock
from edgeprof.targets import local_target
from tests.conftest import run_cli
from tests.testbed import QUICK_CLI, Board, LineReader, TestBed, cli_process, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
QUICK_LOCAL = ["--warmup-seconds", "0", "--idle-seconds", "0"]


def on_a_terminal(*args: str, timeout: float = 300) -> tuple[int, str]:
    """The CLI with stdout and stderr on a pseudo terminal, as a user at a shell runs it: (exit code, screen text)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="120")
        os.execv(sys.executable, [sys.executable, "-m", "edgeprof", *args])
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def test_profile_shows_its_measured_runs_on_a_terminal_and_nothing_in_a_pipe(models: Path) -> None:
    args = ["profile", str(models / "float.tflite"), "--runs", "200000", "--min-seconds", "1.5", "--max-seconds",
            "2", *QUICK_LOCAL]  # fmt: skip
    code, screen = on_a_terminal(*args)
    assert code == 0, screen
    plain = ANSI.sub("", screen)
    assert "\x1b[" in screen and "━" in screen  # redrawn in place, with a bar
    assert "local" in plain and "measuring" in plain and re.search(r"[\d,]+/[\d,]+ runs", plain), plain
    assert "stored as profile run" in plain  # and the summary after it

    piped = run_cli(*args)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # silent in pipes and CI logs
    assert "measuring" not in piped.stdout and "\x1b[" not in piped.stdout

    code, screen = on_a_terminal(*args, "--json")
    assert code == 0 and "measuring" not in screen and "━" not in screen  # --json: the JSON only


@pytest.mark.slow
def test_compress_shows_training_epochs_on_a_terminal(models: Path, tmp_path: Path) -> None:
    code, screen = on_a_terminal(
        "compress", str(models / "cnn.keras"), "-o", str(tmp_path / "out"), "--data", str(models / "digits.npz"),
        "--prune", "0.5", "--epochs", "2",
    )  # fmt: skip
    assert code == 0, screen
    plain = ANSI.sub("", screen)
    assert re.search(r"step 1/1: epoch 2/2 .*\d+/\d+ batches", plain), plain
    assert "accuracy" in plain  # the training metrics ride along


def test_a_busy_board_names_its_holder_then_gives_up_or_gets_it(models: Path) -> None:
    host = socket.gethostname()
    with board_lock(local_target()):  # this test process holds the board, as another profile would
        done = run_cli("profile", str(models / "int8.tflite"), "--wait-seconds", "1", *QUICK_LOCAL)
        proc = cli_process("profile", str(models / "int8.tflite"), "--runs", "5", *QUICK_LOCAL)
        assert proc.stderr is not None
        lines = LineReader(proc.stderr)
        lines.wait_for(lambda line: line.startswith("waiting for local"), timeout=60)
    assert proc.wait(timeout=120) == 0, lines.text()  # the board came free: the profile ran
    assert done.returncode == 2
    waiting, error = done.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"waiting for local, held by PID {os.getpid()} on {re.escape(host)} since \d\d:\d\d:\d\d "
        r"\(at most 1 s, --wait-seconds\)",
        waiting,
    ), waiting
    assert error.startswith("edgeprof: error: local is still busy after 1 s of waiting: held by PID")
    assert "--wait-seconds" in error


@pytest.mark.ssh
def test_verbose_logs_each_remote_command_with_its_duration_exit_code_and_bytes(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path
) -> None:
    board = boards[1]
    write_config(bed, isolated, [board])
    model = isolated / "fresh.tflite"  # a model the board has not seen: its upload is logged
    model.write_bytes((models / "dynamic.tflite").read_bytes())
    done = run_cli("profile", str(model), "--target", board.name, *QUICK_CLI, "--store", str(isolated / "other.db"),
                   "-v")  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = done.stderr
    assert re.search(rf"ssh {board.name}: connecting to \S+@{re.escape(board.address)}:{board.port} \(attempt 1", log)
    assert re.search(rf"ssh {board.name}: connected and logged in in [0-9.]+ s", log)
    # each command as the board's shell receives it, then its exit code and duration
    assert re.search(rf"ssh {board.name}: run \S*python\S* -S -c 'import json,os,sys,hashlib\.\.\.'<script of", log)
    assert re.search(rf"ssh {board.name}: exit 0 in [0-9.]+ s \(\d+ B out, \d+ B err\)", log)
    size = model.stat().st_size
    assert re.search(rf"ssh {board.name}: sent {size} B to \S+/tmp/\S+\.part in", log)
    assert f"{board.name}: uploaded model, {size} B" in log
    assert re.search(rf"agent {board.name}: profile answered ok in [0-9.]+ s", log)
    assert all(re.match(r"\[\s*[0-9.]+ s\] ", line) for line in log.splitlines()), log  # a timeline, nothing else

    quiet = run_cli("profile", str(model), "--target", board.name, *QUICK_CLI)
    assert quiet.returncode == 0 and quiet.stderr == ""  # no log without asking
    env = run_cli("profile", str(model), "--target", board.name, *QUICK_CLI, env={"EDGEPROF_DEBUG": "1"})
    assert env.returncode == 0 and f"ssh {board.name}: run " in env.stderr
    front = run_cli("--verbose", "targets", "check", board.name)  # the flag before the command works too
    assert front.returncode == 0 and f"ssh {board.name}: run " in front.stderr


def test_verbose_logs_retries_with_their_reason(isolated: Path) -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    (isolated / "edgeprof.toml").write_text(
        f'[targets.gone]\nhost = "127.0.0.1"\nport = {port.getsockname()[1]}\nconnect_attempts = 2\n'
    )
    done = run_cli("targets", "check", "gone", "-v")
    port.close()
    assert done.returncode == 1
    assert re.search(
        r"ssh gone: attempt 1 failed after [0-9.]+ s \(ConnectionRefusedError.*\); retrying in", done.stderr
    )
    assert "after 2 attempts" in done.stderr
