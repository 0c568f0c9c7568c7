"""The agent's runtimes on this machine: the full TensorFlow's interpreter, a runtime that cannot be used, and a
custom op only the XNNPACK delegate provides."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

QUICK = ["--runs", "3", "--min-seconds", "0", "--warmup-seconds", "0", "--idle-seconds", "0"]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: ") and "Traceback" not in done.stderr, lines
    return lines[0]


@pytest.mark.slow
def test_profile_through_the_tensorflow_runtime(models: Path) -> None:
    # On TensorFlow 2.21 the interpreter is tf.lite.Interpreter; the package `tensorflow.lite` has none.
    runs = {}
    for delegate in ("xnnpack", "none"):
        done = run_cli("profile", str(models / "float.tflite"), "--runtime", "tensorflow", "--delegate", delegate,
                       "--json", *QUICK)  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs[delegate] = json.loads(done.stdout)
    for result in runs.values():
        assert result["runtime"]["name"] == "tensorflow" and result["runtime"]["version"].startswith("2.")
        assert result["latency_ms"]["median"] > 0
    assert runs["xnnpack"]["delegation"]["applied"] is True
    assert runs["none"]["delegation"]["applied"] is False


def test_a_runtime_without_an_interpreter_is_named_not_the_model(start_agent, models: Path, tmp_path: Path) -> None:
    # A TensorFlow whose tensorflow.lite holds no Interpreter (as the bare package is on TF 2.21, and as TF's
    # announced removal of tf.lite will leave it): placed first on the agent's path, it shadows the real one.
    package = tmp_path / "site" / "tensorflow"
    (package / "lite").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lite" / "__init__.py").write_text("")
    agent = start_agent(env={"PYTHONPATH": str(tmp_path / "site")})
    error = agent.error("profile", {"model": str(models / "float.tflite"), "runtime": "tensorflow", "runs": 3})
    assert error["code"] == "runtime_missing", error
    assert "tensorflow" in error["message"] and "Interpreter" in error["message"]
    assert "float.tflite" not in error["message"] and "model" not in error["message"]


def test_an_xnnpack_custom_op_without_xnnpack_is_one_line(real_models: Path) -> None:
    # MediaPipe's selfie segmentation uses Convolution2DTransposeBias, which LiteRT's XNNPACK delegate provides.
    path = real_models / "tflite" / "selfie_segmentation.tflite"
    if not path.exists():
        pytest.skip(f"{path} is missing: the mediapipe wheel could not be downloaded (scripts/testbed/real_models.py)")
    assert run_cli("profile", str(path), *QUICK).returncode == 0
    line = _one_line_error(run_cli("profile", str(path), "--delegate", "none", *QUICK))
    assert "Convolution2DTransposeBias, which only the XNNPACK delegate provides" in line
    assert "--delegate xnnpack" in line
