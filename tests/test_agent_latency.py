"""Latency options honoured by a real agent process, the statistics it reports, and its memory figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

QUICK = {"idle_seconds": 0, "energy": "off", "warmup_seconds": 0, "min_seconds": 0}


@pytest.fixture()
def host(start_agent):
    return start_agent()


def _profile(agent, model: Path, **args) -> dict:
    return agent.ok("profile", {"model": str(model), **QUICK, **args})


def test_warmup_by_count_and_by_seconds(host, models: Path) -> None:
    by_count = _profile(host, models / "float.tflite", warmup_runs=7, warmup_seconds=0, runs=3, min_seconds=0)
    assert by_count["warmup"]["runs"] == 7
    by_time = _profile(host, models / "float.tflite", warmup_runs=1, warmup_seconds=0.3, runs=3, min_seconds=0)
    assert by_time["warmup"]["seconds"] >= 0.3 and by_time["warmup"]["runs"] > 7
    none = _profile(host, models / "float.tflite", warmup_runs=0, warmup_seconds=0, runs=3, min_seconds=0)
    assert none["warmup"]["runs"] == 0


def test_runs_by_count_min_and_max_seconds(host, models: Path) -> None:
    exact = _profile(host, models / "float.tflite", runs=37, min_seconds=0, warmup_seconds=0)
    assert exact["latency_ms"]["count"] == 37 == len(exact["samples_ms"])
    long = _profile(host, models / "float.tflite", runs=1, min_seconds=0.3, warmup_seconds=0)
    assert long["measured_seconds"] >= 0.3 and long["latency_ms"]["count"] > 37
    capped = _profile(host, models / "float.tflite", runs=10**9, min_seconds=0, max_seconds=0.2, warmup_seconds=0)
    assert 0.2 <= capped["measured_seconds"] < 0.5 and capped["latency_ms"]["count"] < 10**9


def test_a_pause_between_runs_sets_a_duty_cycle(host, models: Path) -> None:
    result = _profile(host, models / "float.tflite", runs=10, min_seconds=0, warmup_seconds=0, pause_ms=20)
    assert result["measured_seconds"] >= 9 * 0.020  # nine pauses between ten runs
    assert result["latency_ms"]["median"] < 5  # the pause is not inside the timed span
    assert result["options"]["pause_ms"] == 20


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_cpu_pinning_and_threads(host, models: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    result = _profile(host, models / "float.tflite", cpus=[cpu], threads=2, runs=5, min_seconds=0)
    assert result["cpu_affinity"] == [cpu] and result["threads"] == 2
    error = host.error("profile", {"model": str(models / "float.tflite"), "cpus": [4096]})
    assert error["code"] == "bad_request" and "4096" in error["message"]


def test_statistics_are_those_of_the_samples(host, models: Path) -> None:
    result = _profile(host, models / "float.tflite", runs=200, min_seconds=0)
    samples = np.asarray(result["samples_ms"])
    lat = result["latency_ms"]
    for key, q in (("median", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert lat[key] == pytest.approx(np.percentile(samples, q), abs=2e-6)
    assert lat["std"] == pytest.approx(np.std(samples, ddof=1), abs=2e-6)
    assert lat["mean"] == pytest.approx(samples.mean(), abs=2e-6)


def test_very_many_runs_give_a_faithful_histogram(host, models: Path) -> None:
    result = _profile(host, models / "float.tflite", runs=5000, min_seconds=0, max_samples=300)
    assert result["samples_subsampled"] and len(result["samples_ms"]) == 300
    hist = result["histogram"]
    assert sum(hist["counts"]) == result["latency_ms"]["count"] == 5000
    assert hist["edges_ms"][0] == pytest.approx(result["latency_ms"]["min"])
    assert hist["edges_ms"][-1] == pytest.approx(result["latency_ms"]["max"])


def test_inputs_from_an_npz_by_input_name(host, models: Path, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    name = Interpreter(model_path=str(models / "float.tflite")).get_input_details()[0]["name"]
    path = tmp_path / "x.npz"
    np.savez(path, **{name: np.random.rand(3, 8, 8, 1).astype(np.float32), "unrelated": np.zeros(2)})
    assert _profile(host, models / "float.tflite", inputs=str(path), runs=3, min_seconds=0)["inputs"] == "data"


def test_delegates_that_cannot_load_are_structured_errors(host, models: Path) -> None:
    edgetpu = host.error("profile", {"model": str(models / "float.tflite"), "delegate": "edgetpu"})
    assert edgetpu["code"] == "delegate_failed" and "libedgetpu.so.1" in edgetpu["message"]
    assert "Edge TPU" in edgetpu["fix"]
    external = host.error(
        "profile",
        {
            "model": str(models / "float.tflite"),
            "delegate": "/opt/none/libmy_delegate.so",
            "delegate_options": {"backend": "npu"},
        },
    )
    assert external["code"] == "delegate_failed" and "/opt/none/libmy_delegate.so" in external["message"]


def test_xnnpack_log_line_is_kept_as_evidence_but_the_graph_decides(host, models: Path) -> None:
    """LiteRT prints 'Created TensorFlow Lite XNNPACK delegate for CPU.' once per process: the first load has the
    log line, the second does not, and both know from the graph that XNNPACK took every op."""
    first = _profile(host, models / "float.tflite", runs=3, min_seconds=0)["delegation"]
    second = _profile(host, models / "float.tflite", runs=3, min_seconds=0)["delegation"]
    assert first["log"] == "Created TensorFlow Lite XNNPACK delegate for CPU."
    assert "log" not in second
    assert first["applied"] is second["applied"] is True
    assert any("XNNPACK delegate" in line for line in host.stderr)  # still passed on to the host's stderr


def test_memory_figures_and_the_arena_estimate(host, models: Path) -> None:
    xnnpack = _profile(host, models / "float.tflite", runs=3, min_seconds=0)
    plain = _profile(host, models / "float.tflite", runs=3, min_seconds=0, delegate="none")
    mem = xnnpack["memory"]
    assert mem["peak_rss_kb"] == max(mem["peak_rss_load_kb"], mem["peak_rss_inference_kb"])
    assert mem["model_rss_delta_kb"] == mem["rss_after_load_kb"] - mem["rss_before_load_kb"]
    assert mem["rss_allocate_delta_kb"] is not None
    # With XNNPACK the plan is one delegate node: only the input (8x8x1 float) and output (10 floats) live in the
    # arena, the output at the next 64-byte boundary after the input: 256 + 40 bytes.
    assert mem["tensor_arena"]["estimate_bytes"] == 256 + 40 and mem["tensor_arena"]["plan_nodes"] == 1
    # Without a delegate every op runs from the arena, so it holds the intermediate activations too.
    assert plain["memory"]["tensor_arena"]["estimate_bytes"] > 256 + 64
    assert "replayed" in plain["memory"]["tensor_arena"]["method"]
    # Every run also reports the builtin-kernel plan (what `inspect` shows): the plan of a run without a delegate.
    assert mem["tensor_arena"]["builtin_bytes"] == plain["memory"]["tensor_arena"]["estimate_bytes"]
    # Builtin kernels made op temporaries (the convolution's im2col buffer): seen and reported, not placed.
    assert plain["memory"]["tensor_arena"]["temporaries_bytes"] > 0 == mem["tensor_arena"]["temporaries_bytes"]
