"""``edgeprof profile`` on the local target shows everything the agent measured: --json and the summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import edgeprof
from tests.conftest import run_cli
from tests.helpers import fake_boards

QUICK = ["--runs", "20", "--min-seconds", "0.3", "--warmup-seconds", "0.05"]


def test_json_on_this_machine_has_every_figure_and_says_what_is_missing(models: Path) -> None:
    done = run_cli("profile", str(models / "float.tflite"), *QUICK, "--threads", "1", "--pause-ms", "1", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for key in ("min", "mean", "median", "p90", "p95", "p99", "max", "std", "count"):
        assert key in data["latency_ms"]
    assert data["init_ms"] == pytest.approx(data["load_ms"] + data["allocate_ms"])
    assert data["delegation"]["applied"] is True and data["options"]["pause_ms"] == 1
    assert data["memory"]["peak_rss_load_kb"] > 0 and data["memory"]["tensor_arena"]["available"]
    assert data["memory"]["board"]["total_kb"] > 0
    # This VM has no power sensor, no thermal zone, no cpufreq: each figure says so instead of inventing one.
    assert data["energy"] == {**data["energy"], "available": False} and "no power sensor" in data["energy"]["reason"]
    assert data["throttled"] is None and "no throttling source" in data["thermal"]["throttle_reason"]
    assert "no cpufreq" in data["device"]["cpu"]["frequency_scaling"]
    assert data["options"]["energy"] == "auto" and data["options"]["idle_seconds"] == 1.0


@pytest.fixture()
def throttling_pi5(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "pi5"
    fake_boards.raspberry_pi_5(root)
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "state")
    (tmp_path / "state").write_text("0x50005\n")
    return {"EDGEPROF_SYSFS_ROOT": str(root), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}


def test_a_pi_5_run_reports_energy_temperature_and_throttling(models: Path, throttling_pi5: dict) -> None:
    args = ("profile", str(models / "float.tflite"), *QUICK, "--idle-seconds", "0.3")
    data = json.loads(run_cli(*args, "--json", env=throttling_pi5).stdout)
    energy = data["energy"]
    assert energy["available"] is True and energy["sensor"] == "rpi5-pmic"
    assert energy["mean_w"] == pytest.approx(fake_boards.pmic_watts()) and energy["idle_w"] == pytest.approx(
        fake_boards.pmic_watts()
    )
    assert energy["mj_per_inference_above_idle"] == pytest.approx(0, abs=1e-9)
    assert data["throttled"] is True and data["device"]["board"] == "Raspberry Pi 5 Model B Rev 1.0"
    summary = run_cli(*args, env=throttling_pi5)
    assert summary.returncode == 0, summary.stderr
    text = summary.stdout
    assert "energy: " in text and "mJ/inference" in text and "Raspberry Pi 5 PMIC" in text
    assert "temperature (cpu-thermal): 51.6 -> 51.6 C" in text
    assert "CPU clocks: 2400 -> 2400 MHz" in text
    assert "THROTTLED during the run: vcgencmd: under-voltage detected, currently throttled" in text


def test_summary_says_why_there_is_no_energy(models: Path) -> None:
    done = run_cli("profile", str(models / "float.tflite"), *QUICK, "--energy", "off")
    assert "energy: unavailable (disabled by request (--energy off))" in done.stdout
    assert "throttling: unknown" in done.stdout


def test_eval_compares_accuracy_on_the_board_with_the_host(models: Path) -> None:
    done = run_cli("profile", str(models / "int8.tflite"), *QUICK, "--eval", str(models / "digits.npz"), "--json")
    assert done.returncode == 0, done.stderr
    acc = json.loads(done.stdout)["accuracy"]
    # The figure the board reports is the one a plain interpreter gives for the same file and data.
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(models / "digits.npz")
    interpreter = Interpreter(model_path=str(models / "int8.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.float32  # int8 inside, float at the edges, as this model was converted
    hits = 0
    for x, y in zip(data["x_test"], data["y_test"], strict=True):
        interpreter.set_tensor(inp["index"], x[None].astype(np.float32))
        interpreter.invoke()
        hits += int(interpreter.get_tensor(out["index"])[0].argmax() == y)
    assert acc["samples"] == len(data["y_test"])
    assert acc["board"]["accuracy"] == pytest.approx(hits / len(data["y_test"]))
    assert acc["host"]["accuracy"] == acc["board"]["accuracy"] and acc["agreement"] == 1.0
    assert acc["difference"]["accuracy"] == 0 and acc["board_runtime"]["name"] == "ai_edge_litert"
    text = run_cli("profile", str(models / "int8.tflite"), *QUICK, "--eval", str(models / "digits.npz")).stdout
    assert "accuracy on the board: " in text and "same class for 100.00% of 360 samples of digits.npz" in text


def test_python_api_exposes_energy_thermal_and_accuracy(models: Path) -> None:
    result = edgeprof.profile(
        models / "float.tflite", runs=5, min_seconds=0, warmup_seconds=0, eval_data=models / "digits.npz", store=None
    )
    assert result.energy["available"] is False and result.throttled is None
    assert result.thermal["throttle_sources"] == []
    assert 0.8 < result.accuracy["board"]["accuracy"] <= 1.0
    assert "accuracy on the board" in result.summary()
