"""The latency levers on real training: channel pruning, XNNPACK-sparse pruning, sensitivity, the latency verdict.

Every scenario runs in one helper process (tests/helpers/levers_runs.py: TensorFlow imported once); the tests read
its findings and the files it wrote. No timed assertion: the latency verdict is checked for being there and
consistent with its own figures, never for a speed-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, board_cache: Path, request: pytest.FixtureRequest) -> dict:
    out = tmp_path_factory.mktemp("levers")
    try:
        folder = request.getfixturevalue("real_models")
        ds_cnn = str(folder / "keyword_spotting" / "keyword_spotting.h5")
    except pytest.skip.Exception:
        ds_cnn = ""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EDGEPROF_CACHE_DIR": str(board_cache),
        "EDGEPROF_STORE": str(out / "results.db"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.levers_runs", str(out), *([ds_cnn] if ds_cnn else [])],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["out"] = str(out)
    return found


def scenario(runs: dict, name: str) -> Any:
    value = runs[name]
    assert not (isinstance(value, dict) and "error" in value), value.get("error")
    return value


def test_rewired_model_computes_what_the_channel_masked_original_does(runs: dict) -> None:
    found = scenario(runs, "equivalence")
    for name in ("residual_cnn", "mobilenet", "ds_cnn"):
        if name not in found:
            assert name == "ds_cnn", found.keys()
            continue
        case = found[name]
        assert case["max_diff"] < 1e-4, (name, case["max_diff"])  # rewired == masked, before any fine-tuning
        assert case["changed_by_mask"] > 1e-3, name  # ... and the mask really removed something
        assert case["params"][1] < case["params"][0] * 0.6, (name, case["params"])
    residual = {g["label"]: g for g in found["residual_cnn"]["groups"]}
    # the residual Add ties the stem and the block's projection into one group with one mask
    assert residual["stem + project"]["producers"] == ["stem", "project"]
    assert {"stem_bn", "project_bn", "add"} <= set(residual["stem + project"]["members"])
    assert "dw" in residual["expand"]["members"]  # the depthwise conv's channels go with its input
    assert "flatten" in residual["conv"]["members"]  # the Dense rows behind a Flatten
    assert "model's output" in residual["out"]["blocked"]
    if "ds_cnn" in found:  # MLPerf Tiny's DS-CNN: every pointwise conv with its BN and the depthwise after it
        groups = found["ds_cnn"]["groups"]
        assert sum(1 for g in groups if any("depthwise" in m for m in g["members"])) >= 4


def test_channels_lowers_the_macs_in_the_exported_file(runs: dict) -> None:
    found = scenario(runs, "channels")
    manifest = found["manifest"]
    effect = manifest["steps"][0]["effect"]
    assert manifest["macs"]["tflite"] < 0.35 * manifest["macs"]["source"], manifest["macs"]
    # read back from the flatbuffer by inspect, as a user would
    inspected = run_cli("inspect", str(Path(runs["out"]) / "channels" / "model.tflite"), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["macs_total"] == manifest["macs"]["tflite"] == effect["macs_after"]
    layers = effect["layers"]
    assert layers["expand"]["channels"] == "16/32" and layers["dw"]["macs_after"] == layers["dw"]["macs_before"] // 2
    assert all(g["channels_after"] % 4 == 0 for g in effect["groups"])  # round_to = 4
    assert "channels kept" in found["summary"] and "16/32" in found["summary"]
    assert manifest["headline"]["change"] > -5.0  # fine-tuned: a real model still, on real digits


def test_the_manifest_carries_the_measured_latency_verdict(runs: dict) -> None:
    latency = scenario(runs, "channels")["manifest"]["latency"]
    assert latency["measured"] and latency["target"] == "local" and latency["rounds"] == 3
    assert len(latency["before_run_medians_ms"]) == 3 and len(latency["after_run_medians_ms"]) == 3
    ratio = latency["before_median_ms"] / latency["after_median_ms"]
    assert latency["speedup"] == pytest.approx(ratio)
    if latency["significant"]:
        assert latency["text"] == (f"{ratio:.2f}x faster" if ratio > 1 else f"{1 / ratio:.2f}x slower")
    else:
        assert latency["text"].startswith("no significant change")
    assert latency["conditions"]["delegate"] == "xnnpack"
    assert "latency on local" in scenario(runs, "channels")["summary"]


def test_channels_bad_input_is_one_line_naming_the_layer_and_the_fix(runs: dict) -> None:
    found = scenario(runs, "bad_input")
    assert "stem + project would leave it with none" in found["empty"] and 'exclude = ["stem"]' in found["empty"]
    assert "Concatenate 'concat'" in found["concatenate"]
    assert 'exclude = ["branch_a", "branch_b"]' in found["concatenate"]
    assert "model's output" in found["output"] and 'exclude = ["out"]' in found["output"]
    assert found["ratio_one"].startswith("RecipeError") and "no channel" in found["ratio_one"]
    # taken by default, tied channels are left and named, not an error
    assert set(found["concat_default"]) == {"branch_a", "branch_b", "out"}


def test_xnnpack_policy_prunes_the_1x1_convs_and_says_whether_the_sparse_path_ran(runs: dict) -> None:
    found = scenario(runs, "xnnpack")
    effect = found["manifest"]["steps"][0]["effect"]
    assert effect["policy"] == "PruneForLatencyOnXNNPack"
    assert set(effect["layers"]) == {
        "block0_project",
        *(f"block{i}_{k}" for i in (1, 2, 3, 4) for k in ("expand", "project")),
        "head",
    }
    assert "stem" in effect["skipped"] and "block1_dw" in effect["skipped"]
    assert "DENSIFY v1" in found["manifest"]["tflite"]["ops"]  # the weights are stored sparse
    sparse = found["manifest"]["latency"]["xnnpack_sparse"]
    assert sparse["sparse_tensors"] == 10
    assert isinstance(sparse["taken"], bool)
    if not sparse["taken"]:  # this x86 machine: XNNPACK keeps its dense kernels on AVX CPUs, and says why
        assert sparse["reason"] and sparse["machine"]
    assert "XNNPACK sparse path" in found["summary"]
    assert "PruneForLatencyOnXNNPack refuses this model" in found["refused"]
    assert "ZeroPadding2D(1)" in found["refused"]
    assert found["with_int8"].startswith("RecipeError") and "float models only" in found["with_int8"]
    assert "2/3" in found["too_sparse_for_nothing"]


def test_sensitivity_finds_the_fragile_layer_and_prunes_it_least(runs: dict) -> None:
    found = scenario(runs, "fragile")
    scan = found["scan"]
    assert scan["baseline"] > 0.7, scan["baseline"]
    assert scan["most_sensitive"] == "bottleneck", scan["ranking"]
    rows = {r["layer"]: r for r in scan["rows"]}
    assert rows["bottleneck"]["channels"]["0.5"] > rows["wide2"]["channels"]["0.5"]
    assert rows["out"]["blocked"] and not rows["out"]["channels"]
    assert found["allocation"]["bottleneck"] == min(found["allocation"].values())
    # the channels step reads the scan: the bottleneck loses the fewest channels, 40 % go in total
    groups = {g["group"]: g for g in found["effect"]["groups"]}
    kept = {name: g["channels_after"] / g["channels_before"] for name, g in groups.items()}
    assert "bottleneck" not in groups or kept["bottleneck"] == max(kept.values()), kept
    removed = sum(g["channels_before"] - g["channels_after"] for g in groups.values())
    assert removed == pytest.approx(0.4 * (3 * 32 + 4), abs=3)


def test_sensitivity_command_prints_writes_and_draws_the_scan(runs: dict, tmp_path: Path) -> None:
    model = Path(runs["out"]) / "fragile.keras"
    done = run_cli(
        "sensitivity",
        str(model),
        "--data",
        "builtin:digits",
        "--ratios",
        "0.5",
        "--sparsities",
        "0.75",
        "-o",
        str(tmp_path / "scan.json"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "most sensitive: bottleneck" in done.stdout and "-50% ch" in done.stdout
    scan = json.loads((tmp_path / "scan.json").read_text())
    assert scan["model"]["path"].endswith("fragile.keras") and scan["ratios"] == [0.5]
    report = run_cli(
        "report",
        "--out",
        str(tmp_path / "r.html"),
        "--sensitivity",
        str(tmp_path / "scan.json"),
        "--json",
        cwd=tmp_path,
    )
    assert report.returncode == 0, report.stderr
    assert any(p["name"] == "sensitivity-1" for p in json.loads(report.stdout)["plots"])
    assert "<h2>Sensitivity</h2>" in (tmp_path / "r.html").read_text()
    bad = run_cli("sensitivity", str(model), "--data", "builtin:digits", "--ratios", "1.5", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("edgeprof: error:") and "--ratios" in bad.stderr
