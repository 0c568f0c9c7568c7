"""Failures a field engineer meets, each a structured agent error and one clear line from the host.

The numpy 2 case is reproduced for real: tflite-runtime 2.14.0 (the last release, built against NumPy 1.x) beside
numpy 2 in a virtual environment of this machine's Python, created once and cached outside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.helpers.agent_bed import Interpreter

QUICK = ["--runs", "3", "--min-seconds", "0", "--warmup-seconds", "0", "--idle-seconds", "0"]


def _cache_dir() -> Path:
    for base in (Path("/var/cache/edgeprof-testbed"), Path.home() / ".cache" / "edgeprof-testbed"):
        try:
            base.mkdir(parents=True, exist_ok=True)
            if os.access(base, os.W_OK):
                return base
        except OSError:
            continue
    pytest.skip("no writable cache folder for the test venv")


@pytest.fixture(scope="session")
def numpy2_tflite214() -> Interpreter:
    """Python 3.11 + tflite-runtime 2.14.0 + numpy 2 (pip allows it: tflite-runtime declares no upper bound)."""
    venv = _cache_dir() / f"venv-py{sys.version_info[0]}{sys.version_info[1]}-tflite2.14-numpy2"
    ready = venv / ".ready"
    if not ready.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "tflite-runtime==2.14.0", "numpy>=2,<3"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            pytest.skip("cannot install tflite-runtime 2.14.0 + numpy 2 from PyPI: " + done.stderr.strip()[-300:])
        ready.touch()
    return Interpreter("py311-tflite2.14-numpy2", str(venv / "bin" / "python"), expect_runtime="tflite_runtime")


def test_numpy_2_beside_tflite_runtime_2_14(start_agent, numpy2_tflite214: Interpreter, models: Path) -> None:
    agent = start_agent(numpy2_tflite214)
    hello = agent.ok("hello")
    (runtime,) = [r for r in hello["runtimes"] if r["name"] == "tflite_runtime"]
    assert runtime["version"] == "2.14.0" and runtime["usable"] is False
    assert "NumPy 1.x" in runtime["problem"] and hello["device"]["numpy"].startswith("2.")
    error = agent.error("profile", {"model": str(models / "float.tflite"), "runs": 3})
    assert error["code"] == "runtime_broken"
    assert error["message"].startswith("tflite_runtime 2.14.0 was built for NumPy 1.x but the board has NumPy 2.")
    assert "numpy<2" in error["fix"]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("edgeprof: error: ") and "; " in lines[0] and "Traceback" not in done.stderr
    return lines[0]


def test_host_prints_a_custom_op_as_one_line(odd_models: Path) -> None:
    line = _one_line_error(run_cli("profile", str(odd_models / "flex.tflite"), *QUICK))
    assert "FlexMatrixInverse" in line and "SELECT_TF_OPS" in line


def test_host_prints_a_missing_runtime_as_one_line(models: Path) -> None:
    line = _one_line_error(run_cli("profile", str(models / "float.tflite"), "--runtime", "tflite_runtime", *QUICK))
    assert "tflite_runtime" in line and "pip install tflite-runtime" in line


def test_host_prints_a_corrupt_file_as_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    assert "truncated.tflite" in _one_line_error(run_cli("profile", str(bad), *QUICK))


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda p: np.save(p, np.zeros((4, 28, 28), np.float32)), "expects samples of shape [8, 8, 1]"),
        (lambda p: p.write_bytes(b"not numpy at all"), "cannot read input data"),
        (lambda p: np.save(p, np.full((2, 8, 8, 1), "seven")), "has dtype <U5, not numbers"),
    ],
    ids=["wrong-shape", "not-npy", "strings"],
)
def test_host_prints_bad_input_data_as_one_line(models: Path, tmp_path: Path, make, expect: str) -> None:
    path = tmp_path / "inputs.npy"
    make(path)
    line = _one_line_error(run_cli("profile", str(models / "float.tflite"), "--inputs", str(path), *QUICK))
    assert expect in line


def test_host_prints_bad_options_as_one_line(models: Path, tmp_path: Path) -> None:
    model = str(models / "float.tflite")
    assert "not a CPU list" in _one_line_error(run_cli("profile", model, "--cpus", "zero", *QUICK))
    assert "KEY=VALUE" in _one_line_error(run_cli("profile", model, "--delegate-option", "oops", *QUICK))
    assert "unknown energy sensor 'moonbeam'" in _one_line_error(
        run_cli("profile", model, "--energy", "moonbeam", *QUICK)
    )
    np.savez(tmp_path / "eval.npz", images=np.zeros((3, 8, 8, 1)))
    assert "x_test and y_test" in _one_line_error(
        run_cli("profile", model, "--eval", str(tmp_path / "eval.npz"), *QUICK)
    )
