"""Shared fixtures: an isolated store and board cache per test, and small real models built once per session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The device agent's fixtures (its interpreters, incl. the bullseye test bed; running agents), and the board test
# bed's (real sshd boards, scripts/testbed/).
pytest_plugins = ["tests.helpers.agent_fixtures", "tests.helpers.real_models", "tests.testbed"]

# The Ctrl-C tests send SIGINT to the edgeprof they start, as a terminal does. A suite started in the background by a
# non-interactive shell (`./scripts/test &`, nohup) inherits SIGINT ignored, and an ignored signal stays ignored
# across exec: edgeprof would never see it. A handled one is reset to the default on exec, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for ``pytest -n 2 --dist loadgroup`` (./scripts/test): every test of the board test bed in one worker,
    since the bed is one set of namespaces and sshd processes; every other file whole in one worker, so that its
    session fixtures (trained models, a demo store) are built once."""
    for item in items:
        group = "testbed" if "bed" in item.fixturenames else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def board_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("board-cache")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, board_cache: Path) -> Path:
    """No test reads or writes the user's store or cache."""
    monkeypatch.setenv("EDGEPROF_CACHE_DIR", str(board_cache))
    monkeypatch.setenv("EDGEPROF_STORE", str(tmp_path / "results.db"))
    monkeypatch.setenv("EDGEPROF_CONFIG", str(tmp_path / "edgeprof.toml"))
    return tmp_path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """float / dynamic / float16 / int8 .tflite files, the Keras source (.keras, .h5) and digits.npz."""
    out = tmp_path_factory.mktemp("models")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "tests.helpers.make_models", str(out)],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return out


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The installed command line, in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edgeprof", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
