"""Fixtures for the SSH, fleet and fault tests: real OpenSSH boards from scripts/testbed/testbed.py.

As root the boards are network namespaces (own address, hostname, home, sshd and host key); otherwise they are sshd
processes on loopback ports, and the tests that need namespaces skip with the reason. Test modules import what they
use with ``pytest_plugins = ["tests.testbed"]``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("edgeprof_testbed", ROOT / "scripts" / "testbed" / "testbed.py")
assert _spec is not None and _spec.loader is not None
testbed = importlib.util.module_from_spec(_spec)
sys.modules["edgeprof_testbed"] = testbed
_spec.loader.exec_module(testbed)

TestBed = testbed.TestBed
Board = testbed.Board

#: Short measurements: these tests are about getting there and back, not about the numbers.
QUICK = {"runs": 5, "min_seconds": 0.0, "warmup_seconds": 0.0, "warmup_runs": 1, "idle_seconds": 0.0}
QUICK_CLI = ["--runs", "5", "--min-seconds", "0", "--warmup-seconds", "0", "--idle-seconds", "0"]


def needs_netns(bed: TestBed) -> None:
    reason = testbed.netns_unavailable_reason()
    if reason is None and bed.mode != "netns":
        reason = f"the test bed runs in {bed.mode} mode (EDGEPROF_TESTBED_MODE)"
    if reason is not None:
        pytest.skip(f"namespace boards unavailable: {reason}")


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBed]:
    """The session's test bed (namespaces as root, loopback sshd otherwise); torn down at the end."""
    reason = testbed.sshd_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no OpenSSH test bed: {reason}")
    _claim_for_this_worker(tmp_path_factory)
    the_bed = TestBed(tmp_path_factory.mktemp("testbed"))
    try:
        yield the_bed
    finally:
        the_bed.down()


def _claim_for_this_worker(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One test bed per run: under pytest-xdist every test of it must be in one worker (tests/conftest.py's groups).
    If the groups were lost, two beds would fight over namespaces and ports; say so instead of failing at random."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    claim = tmp_path_factory.getbasetemp().parent / "testbed-worker"
    try:
        with open(claim, "x") as handle:
            handle.write(worker)
    except FileExistsError:
        owner = claim.read_text()
        if owner != worker:
            pytest.fail(
                f"the test bed is already up in worker {owner}: pytest-xdist did not keep the groups of "
                "tests/conftest.py (pytest 9.2 with pytest-xdist 3.8 loses them: pytest-dev/pytest-xdist#1386); "
                "install pytest<9.2, or run with -n 0",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def boards(bed: TestBed) -> list[Board]:
    """Four healthy boards shared by the tests; tests that break a board use :func:`fresh_board` instead."""
    return [bed.add_board(f"board-{i}") for i in range(1, 5)]


@pytest.fixture
def fresh_board(bed: TestBed) -> Iterator[Callable[..., Board]]:
    """Make boards for one test (to break them at will); they are removed afterwards."""
    made: list[Board] = []

    def make(name: str | None = None, **kwargs: object) -> Board:
        board = bed.add_board(name or f"victim-{len(bed.boards) + 1}", **kwargs)
        made.append(board)
        return board

    yield make
    for board in made:
        bed.remove_board(board)


@pytest.fixture
def healthy(bed: TestBed, boards: list[Board]) -> Iterator[list[Board]]:
    """The shared boards, repaired after the test whatever it did."""
    yield boards
    for board in boards:
        bed.repair(board)


def write_config(bed: TestBed, isolated: Path, boards: list[Board], **kwargs: object) -> Path:
    """The test's edgeprof.toml ($EDGEPROF_CONFIG points at it, see tests/conftest.py)."""
    return bed.write_config(isolated / "edgeprof.toml", boards=boards, **kwargs)


_BIG_MODEL = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras as keras
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(1024, activation="relu"),
                          keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(10)])
converter = tf.lite.TFLiteConverter.from_keras_model(model)
open(sys.argv[1], "wb").write(converter.convert())
"""


@pytest.fixture(scope="session")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 8.4 MB float32 MLP (2.1 M parameters): big enough to cut a link in the middle of its upload."""
    path = tmp_path_factory.mktemp("big") / "mlp-8mb.tflite"
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_BIG_MODEL), str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    return path


class LineReader:
    """Reads a subprocess's stderr on a thread and keeps each line with the time it arrived."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for stamp, line in self.lines[seen:]:
                    if predicate(line):
                        return stamp, line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching line within {timeout} s; got: {self.text()!r}")
                self._cond.wait(left)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The edgeprof command line in its own process, stderr piped for live reading."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgeprof", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
