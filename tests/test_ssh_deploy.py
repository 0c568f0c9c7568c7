"""Deployment and faults on real boards: no re-sends, no half-written model in use, a bounded work directory,
Ctrl-C leaving no agent behind, frozen / vanished / slow / lossy boards, and ``targets setup`` from wheels."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import paramiko
import pytest

import edgeprof
from edgeprof.deploy import connect
from edgeprof.errors import TransportError
from edgeprof.targets import resolve_target
from tests.conftest import run_cli
from tests.testbed import QUICK, QUICK_CLI, Board, TestBed, cli_process, needs_netns, write_config

pytestmark = pytest.mark.ssh


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rerun_of_an_unchanged_model_sends_no_model_bytes(
    bed: TestBed, boards: list[Board], isolated: Path, big_model: Path
) -> None:
    board = boards[0]
    write_config(bed, isolated, [board])
    target = resolve_target(board.name)
    remote = board.workdir_on_host / "models" / f"{_sha(big_model)}.tflite"
    if remote.exists():
        remote.unlink()
    uploads: list[dict] = []
    with connect(target, on_event=uploads.append) as first:
        first.ensure_model(big_model.read_bytes(), _sha(big_model))
    assert first.bytes_sent == big_model.stat().st_size and remote.exists()
    inode = remote.stat().st_ino
    link_before = bed.link_bytes(board) if board.host_veth else None

    events: list[dict] = []
    result = edgeprof.profile(big_model, board.name, on_event=events.append, **QUICK)
    assert result.id is not None
    assert not [e for e in events if e.get("event") == "upload" and e.get("what") == "model"]
    assert remote.stat().st_ino == inode  # the very same file: never re-sent, never renamed over
    if link_before is not None:  # and the wire agrees: far fewer bytes than the 8.4 MB model crossed the link
        sent = bed.link_bytes(board) - link_before
        assert sent < big_model.stat().st_size / 20, sent


def test_a_board_killed_mid_upload_never_uses_the_half_written_model(
    bed: TestBed, fresh_board, isolated: Path, big_model: Path
) -> None:
    needs_netns(bed)
    board = fresh_board()
    write_config(bed, isolated, [board])
    bed.rate_limit(board, "16mbit")  # 8.4 MB take ≈ 4 s: time to pull the plug in the middle
    killed = threading.Event()

    def on_event(event: dict) -> None:
        if event.get("what") == "model" and event.get("sent", 0) > 1_000_000 and not killed.is_set():
            killed.set()
            bed.kill(board)

    with pytest.raises(TransportError, match="lost the connection"):
        edgeprof.profile(big_model, board.name, on_event=on_event, **QUICK)
    assert killed.is_set()
    final = board.workdir_on_host / "models" / f"{_sha(big_model)}.tflite"
    parts = list((board.workdir_on_host / "tmp").glob("*.part"))
    assert not final.exists(), "a half-sent model was renamed into place"
    assert parts and 0 < parts[0].stat().st_size < big_model.stat().st_size  # the half-written upload is there...

    bed.restart(board)  # ...and after the reboot it is never used: the model is sent again and checked
    bed.clear_rate_limit(board)
    result = edgeprof.profile(big_model, board.name, **QUICK)
    assert result.latency_ms["count"] >= 5
    assert _sha(final) == _sha(big_model)
    # stale half-written uploads are cleaned once they are old
    old = time.time() - 7200
    os.utime(parts[0], (old, old))
    with connect(resolve_target(board.name)) as live:
        live.prepare()
        live.evict()
    assert not parts[0].exists()


def test_the_work_directory_stays_bounded(bed: TestBed, fresh_board, isolated: Path, models: Path) -> None:
    board = fresh_board()
    write_config(bed, isolated, [board], extra={board.name: {"workdir_max_mb": 0.15}})  # 150 KiB
    names = ["float.tflite", "dynamic.tflite", "float16.tflite", "int8.tflite"]
    for name in names:
        edgeprof.profile(models / name, board.name, store=None, **QUICK)
    on_board = {p.name for p in (board.workdir_on_host / "models").iterdir()}
    files = [p for d in ("models", "data", "out", "agent") for p in (board.workdir_on_host / d).iterdir()]
    used = sum(p.stat().st_size for p in files)
    in_use = (models / "int8.tflite").stat().st_size + next((board.workdir_on_host / "agent").iterdir()).stat().st_size
    assert f"{_sha(models / 'int8.tflite')}.tflite" in on_board  # the model in use is kept
    assert f"{_sha(models / 'float.tflite')}.tflite" not in on_board  # the least recently used went first
    assert used <= max(0.15 * 1024 * 1024, in_use), (used, sorted(p.name for p in files))


# The agent (and the reaper above it) run "python -u .../agent/edgeprof-agent-<sha16>.pyz"; edgeprof's short helper
# commands also name that file, but not after "-u".
AGENT = re.compile(r"-u \S*agent/edgeprof-agent-[0-9a-f]{16}\.pyz")


def _agents(bed: TestBed, board: Board) -> list[int]:
    return bed.processes(board, AGENT)


@pytest.mark.parametrize("fleet", [False, True], ids=["one-board", "fleet"])
def test_ctrl_c_stops_the_agent_on_the_board(
    bed: TestBed, healthy: list[Board], isolated: Path, models: Path, fleet: bool
) -> None:
    chosen = healthy[1:3] if fleet else healthy[1:2]
    write_config(bed, isolated, chosen)
    proc = cli_process(
        "profile", str(models / "float.tflite"), "--target", ",".join(b.name for b in chosen),
        "--min-seconds", "60", "--max-seconds", "120", "--warmup-seconds", "0", "--idle-seconds", "0",
        "--verbose",  # if the agents do not start, the failure shows what each board was doing
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not all(_agents(bed, b) for b in chosen) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not all(_agents(bed, b) for b in chosen):
        proc.kill()
        raise AssertionError(f"the agents should be running on the boards; edgeprof said: {proc.communicate()}")
    time.sleep(2)  # well into their measurement
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    deadline = time.monotonic() + 5
    while any(_agents(bed, b) for b in chosen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_agents(bed, b) for b in chosen), "Ctrl-C left an agent running on a board"


def test_without_the_reaper_an_agent_would_be_orphaned(bed: TestBed, healthy: list[Board], isolated: Path) -> None:
    """Negative control for the test above: a plain exec of the agent survives its channel's close."""
    board = healthy[1]
    write_config(bed, isolated, [board])
    target = resolve_target(board.name)
    with connect(target) as live:
        agent = live.ensure_agent()
        client = live.transport.connect()  # type: ignore[attr-defined]
        channel: paramiko.Channel = client.get_transport().open_session()
        # an agent that keeps busy (like one in the middle of a measurement) and ignores its stdin
        channel.exec_command(f"{board.python} -u -c 'import time; time.sleep(30)' -u {agent}")
        time.sleep(1.0)
        assert _agents(bed, board)
        channel.close()
        time.sleep(1.5)
        orphans = _agents(bed, board)
    try:
        assert orphans, "expected the plain exec to leave its process behind"
    finally:
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)


def test_a_frozen_board_is_reported_not_waited_for(bed: TestBed, fresh_board, isolated: Path, models: Path) -> None:
    board = fresh_board()
    write_config(bed, isolated, [board])
    frozen_at: list[float] = []

    def on_event(event: dict) -> None:
        if event.get("phase") == "measure" and not frozen_at:
            frozen_at.append(time.monotonic())
            bed.freeze(board)

    with pytest.raises(TransportError, match="frozen or overloaded"):
        edgeprof.profile(models / "float.tflite", board.name, min_seconds=60, idle_seconds=0, on_event=on_event)
    assert time.monotonic() - frozen_at[0] < 25  # 5 s pings, 3 unanswered: ≈ 20 s, not the 7 min profile timeout
    bed.thaw(board)
    deadline = time.monotonic() + 5
    while _agents(bed, board) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _agents(bed, board)


def test_a_board_that_vanishes_mid_run_is_noticed_in_seconds(
    bed: TestBed, fresh_board, isolated: Path, models: Path
) -> None:
    needs_netns(bed)
    board = fresh_board()
    write_config(bed, isolated, [board])
    gone_at: list[float] = []

    def on_event(event: dict) -> None:
        if event.get("phase") == "measure" and not gone_at:
            gone_at.append(time.monotonic())
            bed.link_down(board)

    with pytest.raises(TransportError, match="lost the connection"):
        edgeprof.profile(models / "float.tflite", board.name, min_seconds=60, idle_seconds=0, on_event=on_event)
    assert time.monotonic() - gone_at[0] < 25


def test_bandwidth_cap_delay_and_loss(bed: TestBed, fresh_board, isolated: Path, big_model: Path) -> None:
    needs_netns(bed)
    board = fresh_board()
    write_config(bed, isolated, [board])
    target = resolve_target(board.name)
    data = big_model.read_bytes()

    with connect(target) as live:
        live.prepare()
        started = time.monotonic()
        live.transport.run(["true"])
        rtt_clean = time.monotonic() - started
        bed.rate_limit(board, "40mbit")
        started = time.monotonic()
        live.transport.put(data, "capped.bin")
        capped = time.monotonic() - started
    assert capped >= 0.8 * len(data) * 8 / 40e6, capped  # tbf really caps uploads (≈ 1.7 s for 8.4 MB)
    bed.clear_rate_limit(board)

    bed.impair(board, delay_ms=40, loss=0.03, seed=1)
    try:
        with connect(target) as live:
            live.prepare()
            started = time.monotonic()
            live.transport.run(["true"])
            rtt_slow = time.monotonic() - started
        assert rtt_slow - rtt_clean > 0.15  # a command is several round trips of ≥ 80 ms each
        result = edgeprof.profile(big_model, board.name, **QUICK)  # and a lossy, slow link still gets there
        assert result.latency_ms["count"] >= 5
    finally:
        bed.clear_impairment(board)
    log = (Path(board.state) / "impair.log").read_text()
    dropped = int(log.rsplit("packets, ", 1)[1].split()[0])
    assert dropped > 0, log


def test_setup_installs_numpy_and_litert_from_wheels(bed: TestBed, fresh_board, isolated: Path, models: Path) -> None:
    wheels = os.environ.get("EDGEPROF_TESTBED_WHEELS")
    if not wheels:
        pytest.skip("no cached wheels: scripts/services/testbed.sh downloads them (run ./scripts/test)")
    board = fresh_board()
    # no python setting: the board's python3 makes the venv, and profiles then use the venv
    write_config(bed, isolated, [board], extra={board.name: {"python": None}})
    assert "python =" not in (isolated / "edgeprof.toml").read_text()
    done = run_cli("targets", "setup", board.name, "--wheels", wheels, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ai_edge_litert 2.3.0" in done.stdout and "ready to profile" in done.stdout
    venv_python = board.workdir_on_host / "venv" / "bin" / "python"
    assert venv_python.exists()
    checked = run_cli("targets", "check", board.name, "--json")
    assert checked.returncode == 0, checked.stderr
    row = json.loads(checked.stdout)[0]
    assert row["python_path"].endswith("venv/bin/python") and "ai_edge_litert 2.3.0" in row["runtimes"]
    profiled = run_cli("profile", str(models / "int8.tflite"), "--target", board.name, *QUICK_CLI, "--json")
    assert profiled.returncode == 0, profiled.stderr
    # a python setting (here the board's bare system Python, without LiteRT) wins over the venv: check says so,
    # instead of sending the user to run 'targets setup' again
    write_config(bed, isolated, [board], extra={board.name: {"python": "/usr/bin/python3"}})
    pinned = run_cli("targets", "check", board.name)
    assert pinned.returncode == 1
    assert f"the python that [targets.{board.name}]" in pinned.stderr and "venv/bin/python" in pinned.stderr
    assert "remove python from" in pinned.stderr and "run 'edgeprof targets setup" not in pinned.stderr
    # a folder without wheels is refused with the fix
    empty = isolated / "empty"
    empty.mkdir()
    refused = run_cli("targets", "setup", board.name, "--wheels", str(empty))
    assert refused.returncode == 2 and "pip download" in refused.stderr
