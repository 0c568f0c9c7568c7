"""``profile --repeat N``: N fresh agent processes per model, interleaved between models, stored as one group each;
``compare`` and ``check`` on groups; a failure in the middle keeps what was measured. Real agents on ``local``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import edgeprof
from edgeprof import _table
from edgeprof.budget import upper_bound
from edgeprof.compare import MIN_BAND, NO_CHANGE, compare
from edgeprof.store import open_store
from tests.conftest import run_cli

QUICK = {"runs": 20, "min_seconds": 0.0, "warmup_seconds": 0.0, "idle_seconds": 0.0}
QUICK_CLI = ["--runs", "20", "--min-seconds", "0", "--warmup-seconds", "0", "--idle-seconds", "0"]


@pytest.fixture(scope="module")
def replicated(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two models, three processes each, interleaved on local, in a store of their own."""
    store = tmp_path_factory.mktemp("repeat") / "results.db"
    events: list[dict[str, Any]] = []
    groups = edgeprof.profile_models(
        [models / "float.tflite", models / "int8.tflite"], "local", repeat=3, store=store, on_event=events.append,
        **QUICK,
    )  # fmt: skip
    return {"store": store, "groups": groups, "events": events}


def test_repeat_runs_fresh_agents_interleaved_and_stored_as_one_group_each(replicated: dict[str, Any]) -> None:
    floats, int8s = groups = replicated["groups"]
    pids = [r.pid for g in groups for r in g.runs]
    assert None not in pids and len(set(pids)) == 6  # six agent processes: one per run
    stored_order = sorted((r.id, g.model.name) for g in groups for r in g.runs)
    assert [name for _, name in stored_order] == ["float.tflite", "int8.tflite"] * 3  # a, b, a, b, a, b
    host = [e for e in replicated["events"] if e.get("source") == "host"]
    phases = [e.get("phase") for e in host if e.get("event") == "phase"]
    assert phases.count("connect") == 1 and phases.count("agent") == 6  # one connection for every process
    assert sum(1 for e in host if e.get("event") == "upload" and e.get("what") == "model" and not e["sent"]) <= 2
    with open_store(replicated["store"]) as db:
        for group, other in ((floats, int8s), (int8s, floats)):
            found = db.group(group.id)
            assert found["status"] == "complete" and found["planned"] == 3
            assert [r["id"] for r in found["runs"]] == [r.id for r in group.runs]
            assert [r["group_index"] for r in found["runs"]] == [1, 2, 3]
            assert [p["id"] for p in found["partners"]] == [other.id]
            assert [r["record"]["conditions"]["process"]["pid"] for r in found["runs"]] == group.pids
    # The group's summary: the median of the run medians, the spread between processes, each run's median.
    done = run_cli("results", "show", f"g:{floats.id}", "--store", str(replicated["store"]))
    assert done.returncode == 0, done.stderr
    spread = floats.spread
    assert spread is not None and len(spread.medians_ms) == 3
    assert f"median of run medians {_table.ms(spread.median_ms)} ms" in done.stdout
    assert f"({spread.max_over_min:.1%} max over min" in done.stdout
    for run in floats.runs:
        (row,) = [line for line in done.stdout.splitlines() if line.startswith(f"run #{run.id} ")]
        assert row.split()[3] == _table.ms(run.latency_ms["median"])  # run #N, min, median


def _figures(text: str) -> list[str]:
    """The lines that carry figures: everything a profile prints about its run."""
    return [line for line in text.splitlines() if line.strip()]


def test_results_show_prints_the_figures_profile_printed(models: Path, isolated: Path) -> None:
    done = run_cli("profile", str(models / "int8.tflite"), *QUICK_CLI, "--eval", str(models / "digits.npz"))
    assert done.returncode == 0, done.stderr
    printed = _figures(done.stdout)
    assert printed[-1].startswith("stored as profile run ")
    run_id = printed[-1].split()[-1]
    shown = run_cli("results", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    again = _figures(shown.stdout)
    assert again[0].startswith(f"profile run {run_id}, ")
    # Line by line, the same figures, in the same words: the one renderer behind both.
    assert again[1 : len(printed)] == printed[:-1]
    for needle in ("p95", "delegate: ", "tensor arena", "accuracy on the board", "stability: "):
        assert any(needle in line for line in again), needle
    # and a group: what profile --repeat printed is what results show g:N prints
    grouped = run_cli("profile", str(models / "float.tflite"), *QUICK_CLI, "--repeat", "2")
    assert grouped.returncode == 0, grouped.stderr
    lines = _figures(grouped.stdout)
    group_id = lines[-1].split()[3]  # "stored as group g:N (profile runs ...)"
    shown = _figures(run_cli("results", "show", group_id).stdout)
    assert shown[1 : len(lines)] == lines[:-1]


def _my_agents() -> list[int]:
    """This test process's agent children (the local transport starts them directly)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and b"edgeprof-agent" in cmdline:
            found.append(int(entry))
    return found


def test_a_board_failure_in_the_middle_keeps_what_was_measured(models: Path, tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    killed: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("phase") == "measure" and (event.get("run") or {}).get("index") == 2 and not killed:
            for pid in _my_agents():  # the second process dies while it measures, as on a board that crashes
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with pytest.raises(edgeprof.EdgeprofError) as failure:
        edgeprof.profile(
            models / "float.tflite", repeat=3, store=store, on_event=on_event, runs=20, min_seconds=0.5,
            warmup_seconds=0, idle_seconds=0,
        )  # fmt: skip
    assert killed
    message = str(failure.value)
    assert "exited during 'profile'" in message and "after 1 of 3 runs; those are stored in group(s) g:1" in message
    with open_store(store) as db:
        found = db.group(1)
        assert found["status"] == "incomplete" and "exited during 'profile'" in found["record"]["error"]
        assert [r["group_index"] for r in found["runs"]] == [1] and len(db.profiles()) == 1
    shown = run_cli("results", "show", "g:1", "--store", str(store))
    assert shown.returncode == 0 and "STOPPED after 1 of 3 processes: " in shown.stdout


def _shifted(record: dict[str, Any], factor: float, batch: str, index: int) -> dict[str, Any]:
    """A run of the same model ``factor`` times slower (its samples and statistics), as round ``index`` of ``batch``."""
    latency = {k: (v if k == "count" else v * factor) for k, v in record["latency_ms"].items()}
    group = {"id": hash(batch) % 1000, "index": index, "of": 3, "batch": batch}
    return {**record, "latency_ms": latency, "samples_ms": [x * factor for x in record["samples_ms"]], "group": group}


def test_compare_takes_groups_and_tests_at_the_process_level(replicated: dict[str, Any]) -> None:
    floats, int8s = replicated["groups"]
    done = run_cli("results", "compare", f"g:{floats.id}", f"g:{int8s.id}", "--store", str(replicated["store"]),
                   "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["groups"] == [floats.id, int8s.id]
    assert result["a"]["ids"] == [r.id for r in floats.runs] and result["b"]["ids"] == [r.id for r in int8s.runs]
    assert result["paired"] is True and result["test"] == "paired t over 3 rounds"  # interleaved: paired by round
    assert result["alpha"] == 0.05 and result["min_change"] >= MIN_BAND
    assert result["a"]["median_ms"] == pytest.approx(floats.spread.median_ms)  # the median of the run medians
    text = run_cli("results", "compare", f"g:{floats.id}", f"g:{int8s.id}", "--store", str(replicated["store"]))
    assert "process-to-process noise of 3+3 runs, paired by round" in text.stdout
    # The statistics on known changes of the same real runs:
    runs = [r.to_dict() for r in floats.runs]
    same = compare([_shifted(r, 1.0, "x", i) for i, r in enumerate(runs)], [_shifted(r, 1.0, "y", i) for i, r in
                   enumerate(runs)])  # fmt: skip
    assert same.verdict == NO_CHANGE and same.change == pytest.approx(0.0) and not same.paired
    slower = compare(
        [_shifted(r, 1.0, "x", i) for i, r in enumerate(runs)],
        [_shifted(r, k, "x", i) for i, (r, k) in enumerate(zip(runs, (1.06, 1.05, 1.04), strict=True))],
    )
    assert slower.paired and slower.significant and slower.verdict == "1.05x slower", slower.summary()
    assert slower.ci_low < 0.05 < slower.ci_high
    # Process noise that swamps the change (runs 25 % apart within a round) is no significant change.
    noisy = compare(
        [_shifted(r, 1.0, "x", i) for i, r in enumerate(runs)],
        [_shifted(r, k, "x", i) for i, (r, k) in enumerate(zip(runs, (1.3, 0.95, 1.0), strict=True))],
    )
    assert noisy.verdict == NO_CHANGE and noisy.min_change > 0.1
    # One run a side, from groups: the band is what single processes of those groups differ by, not 10 %.
    single = compare(runs[0], runs[1], noise=([1.0, 1.01, 0.99], [1.0, 1.02, 1.0]))
    assert single.min_change < 0.1 and "single processes differ by within their groups" in single.band_from


def test_check_bounds_a_figure_over_the_newest_group(replicated: dict[str, Any], models: Path, tmp_path: Path) -> None:
    floats = replicated["groups"][0]
    budget = tmp_path / "budget.toml"
    budget.write_text("[limits]\np90_ms = 1000\n")
    p90s = [r.latency_ms["p90"] for r in floats.runs]
    for args in (["--from-store", "--model", "float.tflite"], [str(models / "float.tflite")]):
        done = run_cli("check", "--budget", str(budget), *args, "--store", str(replicated["store"]), "--json")
        assert done.returncode == 0, done.stderr
        assert "profiling" not in done.stderr  # the stored group is used
        (p90,) = json.loads(done.stdout)["checks"]
        assert sorted(p90["profile_ids"]) == sorted(r.id for r in floats.runs)
        assert p90["value"] == pytest.approx(upper_bound(p90s)) and p90["value"] > p90["mean"]
        assert "95% upper bound over 3 runs" in p90["reason"]


@pytest.mark.ssh
def test_a_fleet_repeats_on_every_board(bed: Any, boards: list[Any], isolated: Path, models: Path) -> None:
    from tests.testbed import write_config

    write_config(bed, isolated, boards[:2])
    done = run_cli(
        "profile", str(models / "float.tflite"), str(models / "int8.tflite"), "--target", "board-1,board-2",
        "--repeat", "2", *QUICK_CLI, "--json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [b["target"] for b in data["boards"]] == ["board-1", "board-2"]
    for board in data["boards"]:
        assert board["ok"] and [g["model"]["name"] for g in board["groups"]] == ["float.tflite", "int8.tflite"]
        for group in board["groups"]:
            assert group["measured"] == 2 and group["error"] is None
            assert len({r["conditions"]["process"]["pid"] for r in group["runs"]}) == 2
            assert {r["target"] for r in group["runs"]} == {board["target"]}
    with open_store(isolated / "results.db") as db:
        assert len(db.groups()) == 4 and len(db.profiles()) == 8
        assert all(g["status"] == "complete" for g in db.groups())
    table = run_cli("profile", str(models / "int8.tflite"), "--target", "board-1,board-2", "--repeat", "2", *QUICK_CLI)
    assert table.returncode == 0 and "processes" in table.stdout and "stored as g:" in table.stdout, table.stdout
