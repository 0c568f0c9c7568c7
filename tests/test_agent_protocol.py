"""The device agent's protocol, spoken to a real agent process as the host does.

Every test taking ``agent`` runs three times: under this machine's Python 3.11 (ai-edge-litert 2.3, numpy 2), and
under a real Python 3.9.2 on Debian bullseye (the Raspberry Pi OS bullseye generation) with ai-edge-litert 2.1.0
and with tflite-runtime 2.14.0 (numpy 1.26). The bullseye runs skip, with the reason, where the test bed cannot be
built (not root, no Debian mirror or PyPI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"runs": 20, "min_seconds": 0.0, "warmup_seconds": 0.0, "warmup_runs": 2, "idle_seconds": 0}


def test_zipapp_is_reproducible() -> None:
    from edgeprof._resources import agent_zipapp

    agent_zipapp.cache_clear()
    first = agent_zipapp()
    agent_zipapp.cache_clear()
    assert agent_zipapp() == first


def test_hello_names_agent_runtimes_delegates_sensors_and_device(agent) -> None:
    hello = agent.ok("hello")
    assert hello["protocol"] == 1 and hello["agent_version"]
    runtimes = {r["name"]: r for r in hello["runtimes"]}
    expected = agent.interpreter.expect_runtime
    assert runtimes[expected]["usable"] is True, runtimes
    device = hello["device"]
    assert device["python"] == agent.interpreter.expect_python
    assert device["machine"] == "x86_64" and device["kernel"]
    assert device["memory"]["total_kb"] > 0 and device["cpu"]["count"] >= 1
    delegates = {d["name"]: d for d in hello["delegates"]}
    assert set(delegates) == {"xnnpack", "none", "edgetpu", "external"}
    assert delegates["xnnpack"]["available"] and delegates["xnnpack"]["float32"] is True
    assert delegates["edgetpu"]["available"] is False and "libedgetpu" in delegates["edgetpu"]["reason"]
    # This machine has no power sensor: every plugin says why.
    energy = hello["sensors"]["energy"]
    assert energy["found"] == [] and "rapl" in energy["unavailable"] and "jetson-ina3221" in energy["unavailable"]


def test_xnnpack_int8_support_is_probed_not_assumed(agent) -> None:
    """tflite-runtime 2.14's wheel runs int8 graphs without XNNPACK; LiteRT's applies it. The probe must see that."""
    delegates = {d["name"]: d for d in agent.ok("hello")["delegates"]}
    assert delegates["xnnpack"]["int8"] is (agent.interpreter.expect_runtime != "tflite_runtime")


def test_bad_requests_get_structured_errors(agent) -> None:
    assert agent.send_raw("this is not json")["error"]["code"] == "bad_request"
    assert agent.error("dance")["code"] == "bad_request"
    assert agent.error("profile", {"model": "/nonexistent.tflite"})["code"] == "model_not_found"
    assert agent.error("profile", {"model": "/x.tflite", "runs": 0})["code"] == "bad_request"
    assert agent.error("profile", {"model": "/x.tflite", "colour": "red"})["code"] == "bad_request"
    assert agent.error("profile", {"model": "/x.tflite", "energy": "moonbeam"})["code"] == "bad_request"
    assert agent.ok("hello")["protocol"] == 1  # the agent keeps serving after errors


def test_corrupt_model_is_a_structured_error(agent, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"12345678" * 10)
    error = agent.error("profile", {"model": agent.interpreter.place(bad)})
    assert error["code"] == "model_corrupt"
    assert "cannot load the model" in error["message"]


def test_profile_reports_latency_memory_delegation_and_conditions(agent, models: Path) -> None:
    result = agent.ok("profile", {"model": agent.interpreter.place(models / "float.tflite"), "threads": 1, **QUICK})
    assert result["runtime"]["name"] == agent.interpreter.expect_runtime
    lat = result["latency_ms"]
    assert lat["count"] == len(result["samples_ms"]) >= 20
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["median"] == pytest.approx(float(np.median(result["samples_ms"])), abs=1e-5)
    assert result["warmup"]["runs"] >= 2
    assert result["init_ms"] == pytest.approx(result["load_ms"] + result["allocate_ms"])
    assert result["delegation"]["applied"] is True and result["delegation"]["fully_delegated"] is True
    mem = result["memory"]
    assert mem["peak_reset_before_load"] is True and mem["peak_reset_before_inference"] is True
    assert mem["peak_rss_kb"] >= mem["rss_after_load_kb"] > 0
    assert mem["tensor_arena"]["available"] and mem["tensor_arena"]["estimate_bytes"] > 0
    assert mem["board"]["total_kb"] > 0
    assert result["energy"]["available"] is False and "no power sensor" in result["energy"]["reason"]
    assert "throttled" in result and "before" in result["thermal"] and "after" in result["thermal"]
    phases = [e["phase"] for e in agent.events if e["event"] == "phase"]
    assert phases == ["load", "warmup", "measure"]


def test_int8_delegation_is_recorded_from_the_graph(agent, models: Path) -> None:
    result = agent.ok("profile", {"model": agent.interpreter.place(models / "int8.tflite"), **QUICK})
    delegation = result["delegation"]
    if agent.interpreter.expect_runtime == "tflite_runtime":
        assert delegation["applied"] is False and delegation["delegated_ops"] == 0
        assert "CONV_2D" in delegation["undelegated_ops"]
    else:
        assert delegation["applied"] is True and delegation["delegated_ops"] == delegation["ops"]


def test_delegate_none_runs_builtin_kernels(agent, models: Path) -> None:
    result = agent.ok(
        "profile", {"model": agent.interpreter.place(models / "float.tflite"), "delegate": "none", **QUICK}
    )
    assert result["delegate"] == "none"
    assert result["delegation"]["applied"] is False and result["delegation"]["delegate_nodes"] == 0


def test_custom_ops_are_named_in_a_structured_error(agent, odd_models: Path) -> None:
    flex = agent.error("profile", {"model": agent.interpreter.place(odd_models / "flex.tflite")})
    assert flex["code"] == "custom_op_unsupported"
    assert "FlexMatrixInverse" in flex["message"] and "SELECT_TF_OPS" in flex["fix"]
    custom = agent.error("profile", {"model": agent.interpreter.place(odd_models / "custom.tflite")})
    assert custom["code"] == "custom_op_unsupported" and "MatrixInverse" in custom["message"]


def test_a_runtime_too_old_for_the_model_says_which_op(agent, models: Path) -> None:
    """TF 2.21 writes dynamic-range FULLY_CONNECTED as version 12, which tflite-runtime 2.14 predates."""
    args = {"model": agent.interpreter.place(models / "dynamic.tflite"), **QUICK}
    if agent.interpreter.expect_runtime != "tflite_runtime":
        assert agent.ok("profile", args)["latency_ms"]["count"] >= 20
        return
    error = agent.error("profile", args)
    assert error["code"] == "op_unsupported"
    assert "too old" in error["message"] and "FULLY_CONNECTED" in error["message"] and "12" in error["message"]
    assert "upgrade" in error["fix"]


def test_predict_returns_every_output(agent, models: Path, tmp_path: Path) -> None:
    x = np.load(models / "digits.npz")["x_test"][:25]
    np.save(tmp_path / "x.npy", x)
    out = agent.interpreter.place(tmp_path / "x.npy").replace("x.npy", "out.npy")
    result = agent.ok(
        "predict",
        {
            "model": agent.interpreter.place(models / "int8.tflite"),
            "inputs": agent.interpreter.place(tmp_path / "x.npy"),
            "output": out,
        },
    )
    assert result["count"] == 25 and result["output_shapes"] == [[25, 10]]
    outputs = np.load(agent.interpreter.outside(out))
    assert outputs.shape == (25, 10) and outputs.dtype == np.float32  # dequantised


def test_a_board_without_numpy_or_runtime_still_answers(start_agent, bare, models: Path) -> None:
    agent = start_agent(bare)
    hello = agent.ok("hello")
    assert hello["runtimes"] == []
    assert set(hello["runtimes_missing"]) == {"ai_edge_litert", "tflite_runtime", "tensorflow"}
    assert hello["device"]["python"] == "3.9.2" and "unavailable" in hello["device"]["numpy"]
    error = agent.error("profile", {"model": bare.place(models / "float.tflite")})
    assert error["code"] == "runtime_missing" and "numpy" in error["message"]


def test_asking_for_a_runtime_the_board_lacks(start_agent, models: Path) -> None:
    error = start_agent().error("profile", {"model": str(models / "float.tflite"), "runtime": "tflite_runtime"})
    assert error["code"] == "runtime_missing"
    assert "tflite_runtime" in error["message"] and "pip install tflite-runtime" in error["fix"]


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
