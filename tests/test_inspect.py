"""``edgeprof inspect``: what a model holds and costs, read from the flatbuffer of real converted models."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from edgeprof.tflite import arena, parse
from edgeprof.tflite.inspect import inspect_model
from tests.conftest import run_cli
from tests.helpers.mobilenet import build_once


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 α=0.35 96×96, float32 and full int8, with the MACs of its Keras layers."""
    return build_once(tmp_path_factory.getbasetemp() / "mobilenet")


def _rewrite(data: bytes, edit) -> bytes:
    """Change a real model through the TFLite schema and write it back as a valid flatbuffer."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    edit(model, schema)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _runs_in_litert(path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.invoke()


def test_macs_by_hand_for_a_small_cnn(models: Path) -> None:
    # Conv2D(8, 3x3, same) on 8x8x1: 8*8 positions * 8 filters * 3*3*1 weights; Dense 512->32; Dense 32->10.
    expected = [("CONV_2D", 8 * 8 * 8 * 3 * 3 * 1), ("FULLY_CONNECTED", 512 * 32), ("FULLY_CONNECTED", 32 * 10)]
    for variant in ("float", "int8", "dynamic", "float16"):
        found = inspect_model(models / f"{variant}.tflite")
        assert [(layer.op, layer.macs) for layer in found.layers if layer.macs] == expected, variant
        assert found.macs_total == 4608 + 16384 + 320


@pytest.mark.parametrize("variant", ["f32", "int8"])
def test_macs_match_the_keras_layer_shapes_of_mobilenet_v2(mobilenet: Path, variant: str) -> None:
    keras_layers = json.loads((mobilenet / "keras_layers.json").read_text())
    found = inspect_model(mobilenet / f"mobilenet_{variant}.tflite")
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        want = sorted(layer["macs"] for layer in keras_layers if layer["kind"] == kind)
        got = sorted(layer.macs for layer in found.layers if layer.op == kind)
        assert got == want, kind
    assert found.macs_total == sum(layer["macs"] for layer in keras_layers)
    assert 10e6 < found.macs_total < 12e6  # MobileNetV2 0.35 at 96x96 is quoted at about 11 M MACs


def test_inspect_reports_operators_signatures_and_tensor_types(mobilenet: Path) -> None:
    done = run_cli("inspect", str(mobilenet / "mobilenet_int8.tflite"), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ops = {(row["op"], row["version"]): row["count"] for row in report["operators"]}
    parsed = parse((mobilenet / "mobilenet_int8.tflite").read_bytes())
    assert ops == {(code.name, code.version): n for code, n in parsed.op_counts.items()}
    assert ops[("CONV_2D", 3)] == 35 and ops[("DEPTHWISE_CONV_2D", 3)] == 17  # int8 kernels are version 3
    (signature,) = report["signatures"]
    assert signature["key"] == "serving_default"
    assert signature["inputs"][0]["shape"] == [-1, 96, 96, 3] and signature["inputs"][0]["dtype"] == "FLOAT32"
    assert signature["outputs"][0]["shape"] == [-1, 10]
    types = {row["dtype"]: row for row in report["tensor_types"]}
    # Every weight is int8 and every bias int32; the bytes are those of the buffers.
    assert types["INT8"]["bytes"] == types["INT8"]["parameters"]
    assert types["INT32"]["bytes"] == 4 * types["INT32"]["parameters"]
    assert report["custom_ops"] == []
    text = run_cli("inspect", str(mobilenet / "mobilenet_int8.tflite"))
    assert text.returncode == 0
    assert "DEPTHWISE_CONV_2D" in text.stdout and "tensor arena (estimate)" in text.stdout


def test_weight_sparsity_and_unique_values_are_exact(models: Path, tmp_path: Path) -> None:
    source = (models / "float.tflite").read_bytes()
    fc = parse(source).main.operators[2]  # FULLY_CONNECTED 512 -> 32
    weights_buffer = parse(source).main.tensors[fc.inputs[1]].buffer
    rng = np.random.default_rng(0)
    values = rng.choice(np.array([-0.5, 0.25, 0.75], dtype=np.float32), size=32 * 512)
    values[: 32 * 256] = 0.0  # half of the weights pruned
    rng.shuffle(values)

    def edit(model, _schema) -> None:
        model.buffers[weights_buffer].data = np.frombuffer(values.tobytes(), dtype=np.uint8)

    path = tmp_path / "pruned.tflite"
    path.write_bytes(_rewrite(source, edit))
    _runs_in_litert(path)
    found = inspect_model(path)
    layer = found.layers[2]
    assert layer.op == "FULLY_CONNECTED" and layer.weight_params == 32 * 512
    assert layer.sparsity == 0.5
    assert layer.unique_values == 4  # 0 and the three cluster centres
    assert layer.weight_gzip_bytes < layer.weight_bytes / 4  # few distinct values compress well
    untouched = inspect_model(models / "float.tflite").layers[2]
    assert untouched.sparsity == 0.0 and untouched.unique_values > 1000


def test_unique_values_per_output_channel_show_clustering_through_int8(models: Path, tmp_path: Path) -> None:
    # Per-channel int8 (one scale per output row of the 32x512 dense kernel): 16 clusters become at most 16 int8
    # codes per row, but different codes in different rows. Row r here uses {0, ±k, ±2k, ±3k, ±4k}, k = r % 15 + 1:
    # 9 codes a row, many more over the tensor; the per-channel count shows the clustering survived quantisation.
    source = (models / "int8.tflite").read_bytes()
    parsed = parse(source)
    fc = next(op for op in parsed.main.operators if op.opcode.name == "FULLY_CONNECTED")
    kernel = parsed.main.tensors[fc.inputs[1]]
    assert kernel.shape == (32, 512) and kernel.quantization.per_channel and kernel.quantization.axis == 0
    rng = np.random.default_rng(1)
    codes = np.stack([rng.choice(np.arange(-4, 5) * (r % 15 + 1), size=512) for r in range(32)]).astype(np.int8)

    def edit(model, _schema) -> None:
        model.buffers[kernel.buffer].data = np.frombuffer(codes.tobytes(), dtype=np.uint8)

    path = tmp_path / "clustered.tflite"
    path.write_bytes(_rewrite(source, edit))
    _runs_in_litert(path)
    layer = next(layer for layer in inspect_model(path).layers if layer.op == "FULLY_CONNECTED")
    assert layer.max_unique_per_channel == 9
    assert layer.unique_values == np.unique(codes).size > 9
    assert "(≤9/ch)" in run_cli("inspect", str(path)).stdout


def test_custom_ops_are_named_and_not_guessed(models: Path, tmp_path: Path) -> None:
    source = (models / "float.tflite").read_bytes()

    def edit(model, schema) -> None:
        reshape = next(i for i, c in enumerate(model.operatorCodes) if c.builtinCode == schema.BuiltinOperator.RESHAPE)
        model.operatorCodes[reshape].builtinCode = schema.BuiltinOperator.CUSTOM
        model.operatorCodes[reshape].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        model.operatorCodes[reshape].customCode = "EdgeprofTestOp"

    path = tmp_path / "custom.tflite"
    path.write_bytes(_rewrite(source, edit))
    found = inspect_model(path)
    assert found.custom_ops == ["EdgeprofTestOp"]
    assert "EdgeprofTestOp" in found.macs_not_estimated
    for family in found.runtimes["families"].values():
        assert family["oldest"] is None
        assert any("EdgeprofTestOp" in reason for reason in family["blocked_by"])
    done = run_cli("inspect", str(path))
    assert done.returncode == 0
    assert "custom ops: EdgeprofTestOp" in done.stdout


def test_runtimes_that_can_load_it(models: Path) -> None:
    float_model = inspect_model(models / "float.tflite").runtimes["families"]
    assert float_model["tflite-runtime"]["oldest"] == "2.14.0"
    assert float_model["litert"]["oldest"] is not None
    # TF 2.21's dynamic-range export uses FULLY_CONNECTED v12, which tflite-runtime 2.14 lacks (FIELD-NOTES).
    dynamic = inspect_model(models / "dynamic.tflite").runtimes["families"]
    assert dynamic["tflite-runtime"]["oldest"] is None
    assert any("FULLY_CONNECTED v12" in reason for reason in dynamic["tflite-runtime"]["blocked_by"])
    text = run_cli("inspect", str(models / "dynamic.tflite")).stdout
    assert "none known (FULLY_CONNECTED v12" in text


def test_arena_plan_by_hand(models: Path) -> None:
    # input 8x8x1 f32 (256 B, step 0), conv out 8x8x8 (2048 B, steps 0-1), reshape out 512 (2048 B, steps 1-2),
    # dense out 32 (128 B, steps 2-3), output 10 (40 B -> 64 B aligned, step 3). Largest first, best fit:
    # conv@0, reshape@2048, input@2048 (reshape is not alive at step 0), dense@0, output@128: 4096 B.
    found = inspect_model(models / "float.tflite").arena
    assert found["bytes"] == 4096
    assert found["peak_live_bytes"] == 4096  # conv out + reshape out at step 1: the plan is optimal here
    assert found["no_reuse_bytes"] == 256 + 2048 + 2048 + 128 + 64
    assert found["persistent_bytes"] == 0
    # float16 weights are expanded once by DEQUANTIZE and kept: persistent, not part of the shared arena.
    half = inspect_model(models / "float16.tflite").arena
    assert half["bytes"] == 4096
    float32_copies = [4 * n for n in (72, 8, 16384, 32, 320, 10)]  # kernels and biases, 64-byte aligned
    assert half["persistent_bytes"] == sum(-(-size // 64) * 64 for size in float32_copies)


def test_arena_plan_never_overlaps_live_tensors(mobilenet: Path) -> None:
    for variant in ("f32", "int8"):
        model = parse((mobilenet / f"mobilenet_{variant}.tflite").read_bytes())
        plan = arena.plan_subgraph(model.main)
        assert plan.peak_live_bytes <= plan.bytes <= plan.no_reuse_bytes
        assert plan.bytes < plan.no_reuse_bytes / 3  # MobileNetV2 reuses memory a lot
        allocations = plan.allocations
        for i, a in enumerate(allocations):
            for b in allocations[i + 1 :]:
                if a.overlaps_in_time(b):
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


def test_per_op_counts_are_consistent(mobilenet: Path) -> None:
    found = inspect_model(mobilenet / "mobilenet_f32.tflite")
    counts = collections.Counter(layer.op for layer in found.layers)
    assert {row["op"]: row["count"] for row in found.operators} == dict(counts)
    assert sum(row["macs"] for row in found.operators) == found.macs_total
    weights = sum(layer.weight_params for layer in found.layers)
    assert found.weights["parameters"] == weights
    # float32 weights: 4 bytes each, and the file holds them all.
    assert sum(layer.weight_bytes for layer in found.layers) == 4 * weights < found.size_bytes


@pytest.mark.parametrize("content", [b"", b"hello, not a model", b"\x89HDF\r\n\x1a\n" + bytes(64)])
def test_a_file_that_is_no_model_is_one_clear_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    done = run_cli("inspect", str(path))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: ") and str(path) in lines[0]
    assert "Traceback" not in done.stderr


def test_a_truncated_model_is_one_clear_line(mobilenet: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes((mobilenet / "mobilenet_f32.tflite").read_bytes()[:5000])
    done = run_cli("inspect", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "damaged TFLite model" in done.stderr


@pytest.mark.parametrize("variant", ["f32", "int8"])
def test_host_and_agent_arena_estimates_agree(mobilenet: Path, variant: str) -> None:
    """inspect (from the flatbuffer) and the agent (from the interpreter's own plan, no delegate) replay the same
    planner over two views of one graph: they must give the same arena, or one of them is wrong."""
    import edgeprof

    path = mobilenet / f"mobilenet_{variant}.tflite"
    host = inspect_model(path).arena["bytes"]
    measured = edgeprof.profile(path, delegate="none", runs=3, min_seconds=0, warmup_seconds=0, store=None)
    agent = measured.measurement["memory"]["tensor_arena"]
    assert agent["available"]
    assert host == agent["estimate_bytes"]
