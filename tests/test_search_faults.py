"""Searches on the SSH test bed when things go wrong: an objective a board cannot measure (refused before anything
trains), Ctrl-C (no agent left on the board, --resume runs the interrupted trial again and finishes the study; a
changed space is refused with the difference named), and a board lost mid-study (that trial fails with the reason,
the study goes on)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from edgeprof.store import open_store
from tests.conftest import run_cli
from tests.testbed import Board, LineReader, TestBed, cli_process, write_config

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

AGENT = re.compile(r"-u \S*agent/edgeprof-agent-[0-9a-f]{16}\.pyz")
QUICK = ["--runs", "10", "--min-seconds", "0", "--warmup-seconds", "0", "--repeat", "2"]
PTQ = '[[step]]\nkind = "quantize"\nmode = ["dynamic", "int8", "float16"]\n'


def _space(folder: Path, text: str = PTQ) -> Path:
    path = folder / "space.toml"
    path.write_text(text)
    return path


def _search(models: Path, space: Path, *args: str) -> list[str]:
    return ["search", str(models / "cnn.keras"), "--data", str(models / "digits.npz"), "--space", str(space), *args]


def _show(isolated: Path, study: str) -> dict:
    done = run_cli("search", "show", study, "--json", cwd=isolated)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_objective_a_board_cannot_measure_stops_the_search_before_anything_trains(
    bed: TestBed, boards: list[Board], isolated: Path, models: Path
) -> None:
    write_config(bed, isolated, boards[:2])
    done = run_cli(
        *_search(models, _space(isolated), "--target", "board-1,board-2", "--objectives", "accuracy_drop,energy_mj"),
        cwd=isolated,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: cannot measure energy per inference on board-1:")
    assert "no power sensor" in lines[0] and "rapl" in lines[0]  # the agent's own reasons, plugin by plugin
    assert not (isolated / "edgeprof-search").exists()  # no baseline exported, no trial
    with open_store(isolated / "results.db") as store:
        assert store.compressions() == [] and store.profiles() == []


def test_ctrl_c_leaves_no_agent_and_resume_finishes_the_study(
    bed: TestBed, healthy: list[Board], isolated: Path, models: Path
) -> None:
    board = healthy[0]
    write_config(bed, isolated, [board])
    space = _space(isolated, PTQ.replace(', "float16"', ""))
    slow = ["--runs", "10", "--min-seconds", "20", "--warmup-seconds", "0", "--repeat", "2"]
    out = ["-o", str(isolated / "out")]  # cli_process runs in the repository: keep the study's folder here
    proc = cli_process(*_search(models, space, "--target", board.name, "--sampler", "grid", *out, *slow))
    assert proc.stderr is not None
    lines = LineReader(proc.stderr)
    try:
        lines.wait_for(lambda line: "trial 0: measuring on" in line, timeout=240)
        deadline = time.monotonic() + 60
        while not bed.processes(board, AGENT) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bed.processes(board, AGENT), "an agent should be measuring on the board"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 5
    while bed.processes(board, AGENT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not bed.processes(board, AGENT), "Ctrl-C left an agent running on the board"
    assert "trial 0 interrupted: --resume runs it again" in lines.text()
    study = "cnn-space"
    shown = _show(isolated, study)
    assert shown["counts"] == {"interrupted": 1, "waiting": 2}  # the grid's other recipe, and the interrupted one
    interrupted = shown["trials"][0]["params"]
    resumed = run_cli(*_search(models, space, "--target", board.name, "--sampler", "grid", "--resume", *QUICK),
                      cwd=isolated)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    shown = _show(isolated, study)
    assert shown["counts"] == {"complete": 2, "interrupted": 1}
    assert sorted(t["recipe"] for t in shown["trials"][1:]) == ["quantize dynamic", "quantize int8"]
    assert any(t["state"] == "COMPLETE" and t["params"] == interrupted for t in shown["trials"])
    # the same search only: a changed space is refused, naming what changed; a new run needs --resume
    changed = run_cli(*_search(models, _space(isolated, PTQ), "--target", board.name, "--sampler", "grid", "--resume",
                               *QUICK), cwd=isolated)  # fmt: skip
    assert changed.returncode == 2
    assert "space: quantize.mode: [dynamic, int8] → [dynamic, int8, float16]" in changed.stderr
    again = run_cli(*_search(models, _space(isolated, PTQ.replace(', "float16"', "")), "--target", board.name,
                             "--sampler", "grid", *QUICK), cwd=isolated)  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr


def test_a_board_lost_mid_study_fails_that_trial_and_the_study_goes_on(
    bed: TestBed, boards: list[Board], fresh_board, isolated: Path, models: Path
) -> None:
    victim = fresh_board("victim")
    write_config(bed, isolated, [boards[1], victim], extra={victim.name: {"connect_timeout": 3, "connect_attempts": 1}})
    proc = cli_process(
        *_search(models, _space(isolated), "--target", f"{boards[1].name},victim", "--sampler", "grid", "-o",
                 str(isolated / "out"), *QUICK),
        env={"EDGEPROF_STORE": str(isolated / "results.db")},
    )  # fmt: skip
    assert proc.stderr is not None
    lines = LineReader(proc.stderr)
    try:
        lines.wait_for(lambda line: line.startswith("trial 0: accuracy_drop"), timeout=240)  # trial 0 complete
        lines.wait_for(lambda line: "trial 1: measuring on" in line, timeout=120)
        bed.kill(victim)
        assert proc.wait(timeout=240) == 0, lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    shown = _show(isolated, "cnn-space")
    states = {t["number"]: t for t in shown["trials"]}
    assert states[0]["state"] == "COMPLETE"
    for number in (1, 2):  # lost mid-measurement, then unreachable: each trial fails with the board's reason
        assert states[number]["state"] == "FAIL"
        assert states[number]["error"].startswith("victim: "), states[number]["error"]
    assert "trial 2 FAILED: victim: " in lines.text()
    with open_store(isolated / "results.db") as store:  # what the healthy board measured in trial 1 is stored
        stored = {(r["target"], r["model_name"]) for r in store.profiles()}
        compression = states[1]["compression"]
        assert compression is not None and store.compression(compression)["record"]["search"]["trial"] == 1
    assert (boards[1].name, "model.tflite") in stored
