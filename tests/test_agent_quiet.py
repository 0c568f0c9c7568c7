"""A quiet timed process: power sampling and thermal watching run in a sibling process, and the threads the
interpreter really used are counted.

The board is a Raspberry Pi 5 laid out as its kernel and firmware show it (tests/helpers/fake_boards.py): its power
sensor is read by spawning ``vcgencmd pmic_read_adc`` (10 Hz) and its throttle state by ``vcgencmd get_throttled``
(1 Hz). The fake vcgencmd writes down which process spawned it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import fake_boards
from tests.helpers.mobilenet import build_once

QUICK = {"idle_seconds": 0, "energy": "off", "warmup_seconds": 0, "min_seconds": 0}


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_once(tmp_path_factory.getbasetemp() / "mobilenet")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            found.update(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return found


def test_the_timed_process_runs_no_sampler_thread_and_spawns_nothing(start_agent, models: Path, tmp_path: Path):
    root = tmp_path / "pi5"
    fake_boards.raspberry_pi_5(root)
    calls = tmp_path / "vcgencmd.log"
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "state", log=calls)
    # numpy's OpenBLAS would start an idle thread pool of its own at import: one thread, so every thread counts.
    env = {"EDGEPROF_SYSFS_ROOT": str(root), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"}
    agent = start_agent(env=env)
    pid = agent.process.pid
    threads_seen: list[int] = []
    children_seen: set[int] = set()
    done = threading.Event()

    def look_while_it_measures() -> None:
        while not done.is_set() and not any(e.get("phase") == "measure" for e in list(agent.events)):
            time.sleep(0.002)
        while not done.is_set():
            threads_seen.append(len(os.listdir(f"/proc/{pid}/task")))
            children_seen.update(_children(pid))
            time.sleep(0.01)

    looker = threading.Thread(target=look_while_it_measures)
    looker.start()
    try:
        result = agent.ok(
            "profile",
            {
                "model": str(models / "float.tflite"),
                "threads": 1,
                "runs": 10,
                "min_seconds": 1.5,
                "warmup_seconds": 0.1,
                "idle_seconds": 0.3,
            },
        )
    finally:
        done.set()
        looker.join()
    sampler = result["conditions"]["sampler"]
    assert sampler["ran"] is True and sampler["where"] == "sibling" and sampler["pid"] != pid
    assert sampler["energy"]["sensor"] == "rpi5-pmic" and sampler["energy"]["spawns_process"] is True
    assert sampler["energy"]["target_rate_hz"] == 10 and sampler["energy"]["samples"] >= 10
    assert sampler["thermal"]["polls"] >= 1 and sampler["thermal"]["spawns_process"] is True
    assert result["energy"]["available"] is True and result["energy"]["sampler"] == "sibling"
    # Every vcgencmd was spawned by the sibling, none by the timed process.
    spawners = {line.split()[0] for line in calls.read_text().splitlines()}
    assert spawners == {str(sampler["pid"])}
    assert {line.split()[1] for line in calls.read_text().splitlines()} == {"pmic_read_adc", "get_throttled"}
    # While it measured, the timed process ran one thread (the loop's: one inference thread, no pool) and had no
    # child but the sibling.
    assert threads_seen and max(threads_seen) == 1, threads_seen
    assert children_seen <= {sampler["pid"]}
    assert result["stability"]["timer"]["empty_call_ns"] > 0


def test_the_old_way_is_still_there_and_says_so(start_agent, models: Path, tmp_path: Path) -> None:
    root = tmp_path / "ina"
    fake_boards.ina226(root)
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})
    args = {"model": str(models / "float.tflite"), "runs": 5, "min_seconds": 0.3, "warmup_seconds": 0}
    result = agent.ok("profile", {**args, "idle_seconds": 0, "sampling": "in-process"})
    sampler = result["conditions"]["sampler"]
    assert sampler["where"] == "in-process" and "sampling: in-process" in sampler["reason"]
    assert sampler["energy"]["sensor"] == "ina2xx" and sampler["energy"]["target_rate_hz"] == 100
    assert any("inside the timed process" in w for w in result["stability"]["warnings"])
    # The sampler's own thread is not counted as an inference thread.
    assert result["conditions"]["threads"]["used"] == 1
    error = agent.error("profile", {**args, "sampling": "thread"})
    assert error["code"] == "bad_request" and "sampling" in error["message"]


def test_conditions_under_every_interpreter(agent, models: Path) -> None:
    """Python 3.11 and Python 3.9 (bullseye) with ai-edge-litert or tflite-runtime: the sibling starts from the
    zipapp, and the threads and the timer are measured."""
    args = {"model": agent.interpreter.place(models / "float.tflite"), "threads": 1, **QUICK, "min_seconds": 0.1}
    result = agent.ok("profile", args)
    sampler = result["conditions"]["sampler"]
    assert sampler["where"] == "sibling" and isinstance(sampler["pid"], int) and "reason" not in sampler
    assert result["conditions"]["threads"]["used"] >= 1 and result["conditions"]["threads"]["requested"] == 1
    timer = result["stability"]["timer"]
    assert timer["empty_call_ns"] > 0 and timer["back_to_back_ns"] >= 0 and "perf_counter" in timer["clock"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_threads_actually_used_are_counted(start_agent, mobilenet: Path) -> None:
    agent = start_agent()
    model = str(mobilenet / "mobilenet_f32.tflite")
    one = agent.ok("profile", {"model": model, "threads": 1, "runs": 20, **{**QUICK, "min_seconds": 0.3}})
    two = agent.ok("profile", {"model": model, "threads": 2, "runs": 20, **{**QUICK, "min_seconds": 0.3}})
    assert one["conditions"]["threads"]["used"] == 1 and one["conditions"]["threads"]["created"] == 0
    assert two["conditions"]["threads"]["used"] == 2 and two["conditions"]["threads"]["created"] >= 1
    assert len(two["conditions"]["threads"]["busy_cpu_s"]) == 2
    assert not any(w.startswith("threads:") for w in one["stability"]["warnings"] + two["stability"]["warnings"])


def test_compare_says_when_the_sampler_differs(start_agent, models: Path, tmp_path: Path) -> None:
    from edgeprof.compare import compare

    root = tmp_path / "ina"
    fake_boards.ina226(root)
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})
    args = {"model": str(models / "float.tflite"), "runs": 200, "min_seconds": 0.2, "warmup_seconds": 0}
    sibling = agent.ok("profile", {**args, "idle_seconds": 0})
    inside = agent.ok("profile", {**args, "idle_seconds": 0, "sampling": "in-process"})
    off = agent.ok("profile", {**args, "idle_seconds": 0, "energy": "off"})
    assert "the runs differ in sampler: sibling, ina2xx at 100 Hz vs in-process, ina2xx at 100 Hz" in (
        compare(sibling, inside).notes
    )
    assert "the runs differ in sampler: sibling, ina2xx at 100 Hz vs none" in compare(sibling, off).notes
    assert not any("sampler" in note for note in compare(sibling, sibling).notes)


def test_a_sibling_that_dies_mid_run_costs_the_energy_figure_not_the_profile(start_agent, models, tmp_path) -> None:
    root = tmp_path / "ina"
    fake_boards.ina226(root)
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})

    def kill_the_sibling() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e.get("phase") == "measure" for e in list(agent.events)):
            time.sleep(0.002)
        for child in _children(agent.process.pid):
            os.kill(child, 9)

    killer = threading.Thread(target=kill_the_sibling)
    killer.start()
    args = {"model": str(models / "float.tflite"), "runs": 5, "min_seconds": 1.0, "warmup_seconds": 0}
    result = agent.ok("profile", {**args, "idle_seconds": 0})
    killer.join()
    assert result["latency_ms"]["count"] >= 5
    assert result["energy"]["available"] is False and "ended before it handed over" in result["energy"]["reason"]
    assert (
        result["conditions"]["sampler"]["where"] == "sibling" and "exit -9" in result["conditions"]["sampler"]["reason"]
    )
    assert result["throttled"] is None
