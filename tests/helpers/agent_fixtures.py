"""pytest fixtures for the agent tests: the zipapp, the interpreters it runs under, running agents, odd models.

Import them into a test module by name (``from tests.helpers.agent_fixtures import agent, ...``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.agent_bed import (
    ROOT,
    Agent,
    Interpreter,
    bare_bullseye,
    bullseye_interpreters,
    bullseye_root,
    host_interpreter,
)

INTERPRETERS = ["host", "bullseye-litert", "bullseye-tflite"]


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeprof._resources import agent_zipapp

    path = tmp_path_factory.mktemp("agent") / "edgeprof-agent.pyz"
    path.write_bytes(agent_zipapp()[0])
    return path


@pytest.fixture(scope="session")
def bullseye() -> Iterator[tuple[Path | None, str]]:
    """(root, "") when the bullseye test bed is here (built once, cached), else (None, why not)."""
    root, why = bullseye_root()
    yield root, why
    if root is not None:
        shutil.rmtree(root / "tmp" / "edgeprof-agent-tests", ignore_errors=True)


@pytest.fixture(params=INTERPRETERS)
def interpreter(request: pytest.FixtureRequest, bullseye: tuple[Path | None, str]) -> Interpreter:
    if request.param == "host":
        return host_interpreter()
    root, why = bullseye
    if root is None:
        pytest.skip(why)
    litert, tflite = bullseye_interpreters(root)
    return litert if request.param == "bullseye-litert" else tflite


@pytest.fixture()
def bare(bullseye: tuple[Path | None, str]) -> Interpreter:
    root, why = bullseye
    if root is None:
        pytest.skip(why)
    return bare_bullseye(root)


@pytest.fixture()
def start_agent(zipapp: Path) -> Iterator:
    """``start_agent(interpreter, env=None) -> Agent``; every agent started is stopped after the test."""
    started: list[Agent] = []

    def start(interpreter: Interpreter | None = None, env: dict[str, str] | None = None) -> Agent:
        agent = Agent(interpreter or host_interpreter(), zipapp, env)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()


@pytest.fixture()
def agent(start_agent, interpreter: Interpreter) -> Agent:
    return start_agent(interpreter)


@pytest.fixture(scope="session")
def odd_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flex.tflite (a Flex custom op from SELECT_TF_OPS) and custom.tflite (a plain custom op)."""
    out = tmp_path_factory.mktemp("odd-models")
    subprocess.run(
        [sys.executable, "-m", "tests.helpers.agent_models", str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return out
