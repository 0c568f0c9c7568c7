"""The device agent's protocol, spoken to a real agent process as the host does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def agent(tmp_path: Path):
    from edgeprof._resources import agent_zipapp

    blob, _ = agent_zipapp()
    path = tmp_path / "agent.pyz"
    path.write_bytes(blob)
    process = subprocess.Popen(
        [sys.executable, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def call(message: dict | str) -> dict:
        line = message if isinstance(message, str) else json.dumps(message)
        process.stdin.write(line + "\n")
        process.stdin.flush()
        while True:
            answer = json.loads(process.stdout.readline())
            if "event" not in answer:
                return answer

    yield call
    process.kill()
    process.wait()


def test_zipapp_is_reproducible() -> None:
    from edgeprof._resources import agent_zipapp

    agent_zipapp.cache_clear()
    first = agent_zipapp()
    agent_zipapp.cache_clear()
    assert agent_zipapp() == first


def test_hello_names_agent_runtimes_and_device(agent) -> None:
    answer = agent({"id": 1, "op": "hello"})
    assert answer["ok"] and answer["id"] == 1
    hello = answer["result"]
    assert hello["protocol"] == 1
    assert any(r["name"] == "ai_edge_litert" for r in hello["runtimes"])
    assert hello["device"]["machine"] and hello["device"]["memory"]["total_kb"] > 0


def test_bad_requests_get_structured_errors(agent) -> None:
    assert agent("this is not json")["error"]["code"] == "bad_request"
    assert agent({"id": 2, "op": "dance"})["error"]["code"] == "bad_request"
    answer = agent({"id": 3, "op": "profile", "args": {"model": "/nonexistent.tflite"}})
    assert answer["error"]["code"] == "model_not_found"
    # The agent keeps serving after errors.
    assert agent({"id": 4, "op": "hello"})["ok"]


def test_corrupt_model_is_a_structured_error(agent, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"12345678" * 10)
    answer = agent({"id": 1, "op": "profile", "args": {"model": str(bad)}})
    assert answer["error"]["code"] == "model_corrupt"
    assert answer["error"]["fix"]


def _vermin(path: Path) -> subprocess.CompletedProcess[str]:
    vermin = Path(sys.executable).with_name("vermin")
    return subprocess.run(
        [str(vermin), "--no-tips", "--violations", "-t=3.8-", "--eval-annotations", str(path)],
        capture_output=True,
        text=True,
    )


def test_agent_source_runs_on_python_3_8() -> None:
    done = _vermin(ROOT / "device_agents")
    assert done.returncode == 0, done.stdout + done.stderr


def test_vermin_would_catch_newer_syntax(tmp_path: Path) -> None:
    newer = tmp_path / "newer.py"
    newer.write_text("import zoneinfo\nvalues: list[int] = []\nname = 'v1.2'.removeprefix('v')\n")
    assert _vermin(newer).returncode != 0
