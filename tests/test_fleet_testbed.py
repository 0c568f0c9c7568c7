"""Fleets on the test bed: boards in parallel, one live line each, failures reported while the others finish, and
one profile per board at a time, also across processes. The timelines come from ``--verbose``'s log lines."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import edgeprof
from tests.testbed import QUICK_CLI, Board, LineReader, TestBed, cli_process, needs_netns, write_config

pytestmark = pytest.mark.ssh

STAMP = re.compile(r"\[\s*([0-9.]+) s\] ([\w.-]+): (.*)")


def _phases(text: str) -> dict[str, dict[str, float]]:
    """board -> {first phase word: seconds since the CLI started}, from the --verbose log lines."""
    seen: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = STAMP.match(line)
        if match:
            seconds, board, state = float(match[1]), match[2], match[3]
            seen.setdefault(board, {}).setdefault(state.split()[0].rstrip(":"), seconds)
    return seen


def _stored(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT target, model_name FROM profiles ORDER BY id").fetchall()


def test_four_boards_at_once(bed: TestBed, boards: list[Board], isolated: Path, models: Path) -> None:
    write_config(bed, isolated, boards, groups={"lab": ["board-*"]})
    proc = cli_process(
        "profile", str(models / "float.tflite"), "--target", "lab", "--min-seconds", "1.5", "--warmup-seconds", "0",
        "--idle-seconds", "0", "--verbose",
    )  # fmt: skip
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    phases = _phases(err)
    assert sorted(phases) == [b.name for b in boards]
    for name, seen in phases.items():
        assert {"connecting", "measuring", "done"} <= set(seen), (name, seen)
    # concurrently: every board was measuring before the first one finished
    assert max(s["measuring"] for s in phases.values()) < min(s["done"] for s in phases.values())
    assert "4 ok, 0 failed" in out
    assert sorted(t for t, _ in _stored(isolated / "results.db")) == [b.name for b in boards]


def test_a_board_whose_link_drops_mid_upload_fails_alone_and_fast(
    bed: TestBed, boards: list[Board], fresh_board, isolated: Path, big_model: Path
) -> None:
    needs_netns(bed)
    victim = fresh_board("victim")
    others = boards[:3]
    write_config(bed, isolated, [*others, victim])
    bed.rate_limit(victim, "8mbit")  # its upload takes ≈ 8 s: we cut the link in the middle
    proc = cli_process(
        "profile", str(big_model), "--target", "board-1,board-2,board-3,victim", *QUICK_CLI, "--verbose",
    )  # fmt: skip
    assert proc.stderr is not None
    lines = LineReader(proc.stderr)
    lines.wait_for(lambda line: "victim" in line and "uploading model" in line, timeout=60)
    time.sleep(1.0)
    bed.link_down(victim)
    down_at = time.monotonic()
    failed_at, failed = lines.wait_for(lambda line: "victim" in line and "FAILED" in line, timeout=60)
    assert failed_at - down_at < 15, f"reported after {failed_at - down_at:.1f} s"
    assert "lost the connection to victim" in failed
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.wait(timeout=120) == 1
    assert "3 ok, 1 failed" in out
    assert "1 of 4 boards failed (victim)" in lines.text()
    stored = _stored(isolated / "results.db")
    assert sorted(t for t, _ in stored) == ["board-1", "board-2", "board-3"]
    assert {m for _, m in stored} == {big_model.name}


def test_one_profile_per_board_even_across_processes(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path
) -> None:
    write_config(bed, isolated, boards)
    args = ["--min-seconds", "2", "--warmup-seconds", "0", "--idle-seconds", "0", "--verbose"]
    started = time.monotonic()
    first = cli_process("profile", str(models / "float.tflite"), "--target", "board-1,board-2", *args)
    time.sleep(0.3)
    second_started = time.monotonic()
    second = cli_process("profile", str(models / "int8.tflite"), "--target", "board-1,board-3", *args)
    err1 = first.communicate(timeout=120)[1]
    err2 = second.communicate(timeout=120)[1]
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    a = {k: v + 0 for k, v in _phases(err1)["board-1"].items()}
    b = {k: v + (second_started - started) for k, v in _phases(err2)["board-1"].items()}
    first_run, second_run = sorted([(a["measuring"], a["done"]), (b["measuring"], b["done"])])
    assert first_run[1] <= second_run[0] + 0.2, (a, b)  # board-1's two measurements did not overlap
    assert "waiting" in _phases(err2)["board-1"] or "waiting" in _phases(err1)["board-1"]


def test_two_names_for_one_board_share_its_lock(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path
) -> None:
    board = boards[2]
    write_config(bed, isolated, [board])
    config = isolated / "edgeprof.toml"
    text = config.read_text()
    alias = text[text.index(f"[targets.{board.name}]") :].replace(f"[targets.{board.name}]", "[targets.same-board]")
    config.write_text(text + "\n" + alias)
    windows: dict[str, list[float]] = {}
    lock = threading.Lock()

    def progress(name: str, event: dict) -> None:
        with lock:
            if (event.get("event"), event.get("phase")) == ("phase", "measure") or event.get("event") == "done":
                windows.setdefault(name, []).append(time.monotonic())

    fleet = edgeprof.profile_fleet(
        models / "float.tflite", [board.name, "same-board"], on_event=progress, min_seconds=1.0, idle_seconds=0
    )
    assert fleet.ok, [o.error for o in fleet.outcomes]
    (_, first_end), (second_start, _) = sorted(windows.values())
    assert first_end <= second_start  # serialised


def test_globs_and_json(bed: TestBed, boards: list[Board], isolated: Path, models: Path) -> None:
    import json

    write_config(bed, isolated, boards)
    proc = cli_process("profile", str(models / "int8.tflite"), "--target", "board-[12]", *QUICK_CLI, "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["ok"] and [b["target"] for b in data["boards"]] == ["board-1", "board-2"]
    assert all(b["result"]["latency_ms"]["count"] >= 5 for b in data["boards"])
