"""Every compression step on the architectures edge models are made of, with the figures read back from the .tflite.

The MLPerf Tiny reference models (DS-CNN keyword spotting, ResNet-8) on synthetic data of the right shape, and a
small purpose-built model with SeparableConv2D + BatchNorm, Conv2DTranspose, Conv1D and LSTM. What is asserted is
what a user relies on: the sparsity target is met over the weights pruned, what a step leaves alone is named, an
explicit selection does what it says, and every per-layer figure in the manifest is the exported file's. All jobs
run in one child process (TensorFlow imported once), one epoch on 64 samples each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprof import _toml
from tests.conftest import ROOT
from tests.helpers.compress_jobs import Run, run_jobs

pytestmark = pytest.mark.slow

ONE = {"epochs": 1, "batch_size": 32}
INT8 = {"kind": "quantize", "mode": "int8", "representative_samples": 16}
DEPTHWISE_DEFAULT = 'depthwise kernels, left dense by default: prune them with layers = ["DepthwiseConv2D"]'
KWS_DEPTHWISE = ["depthwise_conv2d", "depthwise_conv2d_1", "depthwise_conv2d_2", "depthwise_conv2d_3"]
PQAT_LAYERS = ["*conv2d*", "batch_normalization*", "activation*", "dense"]
WEIGHT_OP = {"Conv2D": "CONV_2D", "DepthwiseConv2D": "DEPTHWISE_CONV_2D", "Dense": "FULLY_CONNECTED"}


def _synthetic(path: Path, shape: tuple[int, ...], classes: int) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.normal(size=(64, *shape)).astype(np.float32),
        y_train=np.arange(64) % classes,
        x_test=rng.normal(size=(32, *shape)).astype(np.float32),
        y_test=np.arange(32) % classes,
    )
    return path


def _pcqat_recipe() -> dict:
    """examples/recipes/pcqat.toml as shipped, with one epoch a step and the first conv left whole (as people often
    leave the input layer). TF-MOT's PCQAT weight quantizer is one object for every Conv2D: the first kernel without
    zeros turns its sparsity preservation off for all of them, which edgeprof's masks make up for."""
    recipe = _toml.load(ROOT / "examples/recipes/pcqat.toml")
    for step in recipe["step"]:
        step.update(ONE)
    recipe["step"][0]["exclude"] = recipe["step"][1]["exclude"] = ["conv2d"]
    recipe["step"][-1]["representative_samples"] = 16
    return recipe


@pytest.fixture(scope="module")
def runs(real_models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("archs")
    small = tmp / "small"
    subprocess.run(
        [sys.executable, "-m", "tests.helpers.arch_models", str(small)],
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    kws = {
        "model": str(real_models / "keyword_spotting/keyword_spotting.h5"),
        "data": str(_synthetic(tmp / "kws.npz", (50, 10, 1), 12)),
    }
    resnet = {
        "model": str(real_models / "image_classification/image_classification.h5"),
        "data": str(_synthetic(tmp / "resnet.npz", (32, 32, 3), 10)),
    }

    def on(name: str) -> dict:
        return {"model": str(small / f"{name}.h5"), "data": str(small / f"{name}.npz")}

    def steps(*items: dict) -> dict:
        return {"recipe": {"step": list(items)}}

    prune = {"kind": "prune", "sparsity": 0.5, **ONE}
    jobs = {
        "kws_prune_int8": {**kws, **steps(prune, INT8)},
        "kws_depthwise_pqat": {
            **kws,
            **steps(
                {**prune, "layers": ["DepthwiseConv2D"]},
                # A per-layer selection: every conv, BatchNorm, activation and the Dense; not dropout or pooling.
                {"kind": "quantize", "mode": "pqat", "layers": PQAT_LAYERS, "representative_samples": 16, **ONE},
            ),
        },
        "kws_pcqat": {**kws, "recipe": _pcqat_recipe()},
        "kws_cluster_depthwise": {**kws, **steps({"kind": "cluster", "layers": ["DepthwiseConv2D"], **ONE})},
        "resnet_prune_int8": {**resnet, **steps(prune, INT8)},
        "zoo_prune_int8": {**on("zoo"), **steps(prune, INT8)},
        "zoo_chosen_pqat": {
            **on("zoo"),
            **steps({**prune, "layers": ["SeparableConv2D", "LSTM"]}, {"kind": "quantize", "mode": "pqat", **ONE}),
        },
        "conv1d_qat_chosen": {**on("conv1d"), **steps({"kind": "quantize", "mode": "qat", "layers": ["Conv1D"]})},
        "gru_int8": {**on("gru"), **steps(INT8)},
    }
    return run_jobs(tmp, jobs)


def _weight_ops(run: Run) -> dict[str, tuple[str, str, np.ndarray]]:
    """Every conv / fully connected weight tensor of the exported file: name -> (op, op output name, values)."""
    graph = run.tflite.main
    found = {}
    for op in graph.operators:
        if op.opcode.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            tensor = graph.tensors[op.inputs[1]]
            found[tensor.name] = (op.opcode.name, graph.tensors[op.outputs[0]].name, np.asarray(tensor.data))
    return found


def _tflite_shape(layer_type: str, shape: list[int]) -> tuple[int, ...]:
    """How TFLite stores a Keras kernel: output channels first; depthwise as (1, h, w, channels)."""
    if layer_type == "DepthwiseConv2D":
        return (1, shape[0], shape[1], shape[2] * shape[3])
    if layer_type == "Dense":
        return (shape[1], shape[0])
    return (shape[3], shape[0], shape[1], shape[2])


def _check_every_row_against_the_file(run: Run) -> None:
    """Each conv/dense row names a weight tensor of its own kind and shape and carries that tensor's figures; each
    BatchNormalization row names the conv whose exported op it went into; no tensor is claimed twice."""
    ops = _weight_ops(run)
    layers = run.manifest["layers"]
    claimed = {}
    for row in layers:
        if row["type"] not in WEIGHT_OP:
            continue
        (kernel,) = row["kernels"]
        op, output, values = ops[kernel["tflite_tensor"]]
        assert op == WEIGHT_OP[row["type"]], row
        assert values.shape == _tflite_shape(row["type"], kernel["shape"]), row
        assert row["tflite_sparsity"] == pytest.approx(np.mean(values == 0)), row
        assert row["tflite_dtype"] == "INT8"
        # Zeros that pruning made stay zeros in the int8 file (it can only add zeros, by rounding).
        assert np.sum(values == 0) >= round(kernel["sparsity"] * values.size), row
        assert kernel["tflite_tensor"] not in claimed.values(), row
        claimed[row["name"]] = kernel["tflite_tensor"]
    assert sorted(claimed.values()) == sorted(ops), "every weight tensor belongs to exactly one layer"
    for row in layers:
        if row["type"] == "BatchNormalization":
            assert "tflite_dtype" not in row and "tflite_sparsity" not in row, row
            _, output, _ = ops[claimed[row["tflite_folded_into"]]]
            assert f"/{row['name']}/" in output, (row, output)  # the conv's op computes the BatchNorm too


def test_pruning_a_ds_cnn_meets_its_target_and_names_the_depthwise_kernels(runs: dict[str, Run]) -> None:
    effect = runs["kws_prune_int8"].step("prune")["effect"]
    # The target holds over the weights pruned (Conv2D and Dense kernels), measured, not assumed.
    assert effect["reached_sparsity"] >= 0.495, effect
    assert effect["pruned_params"] == 22_016 - 2_304
    assert set(effect["layers"]) == {"conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "dense"}
    # The depthwise kernels are left dense by default, each named with the way to prune it.
    assert effect["skipped"] == dict.fromkeys(KWS_DEPTHWISE, DEPTHWISE_DEFAULT)
    assert ", ".join(KWS_DEPTHWISE) in effect["text"] and 'layers = ["DepthwiseConv2D"]' in effect["text"]
    assert effect["model_kernel_sparsity"] == pytest.approx(0.5 * (22_016 - 2_304) / 22_016, abs=0.002)


def test_ds_cnn_and_resnet_layer_tables_are_the_exported_files(runs: dict[str, Run]) -> None:
    for name in ("kws_prune_int8", "resnet_prune_int8"):
        _check_every_row_against_the_file(runs[name])
    resnet = runs["resnet_prune_int8"].manifest
    assert resnet["steps"][0]["effect"]["skipped"] == {}  # nothing depthwise: every kernel pruned
    assert any(op.startswith("ADD ") for op in resnet["tflite"]["ops"])  # the residual Adds survived


def test_chosen_depthwise_kernels_are_pruned_and_pqat_keeps_their_zeros(runs: dict[str, Run]) -> None:
    run = runs["kws_depthwise_pqat"]
    effect = run.step("prune")["effect"]
    assert set(effect["layers"]) == set(KWS_DEPTHWISE) and effect["skipped"] == {}
    assert all(s >= 0.495 for s in effect["layers"].values()), effect
    quantize = run.step("quantize")["effect"]
    assert quantize["zero_masks"] == KWS_DEPTHWISE  # TF-MOT's prune-preserve skips DepthwiseConv2D: edgeprof masks
    for op, _, values in _weight_ops(run).values():
        zeros = np.mean(values == 0)
        assert (zeros >= 0.495) if op == "DEPTHWISE_CONV_2D" else (zeros < 0.1), (op, zeros)


def test_pcqat_recipe_runs_on_a_conv_batchnorm_model_and_names_what_clustering_skips(runs: dict[str, Run]) -> None:
    run = runs["kws_pcqat"]
    cluster = run.step("cluster")["effect"]
    assert cluster["skipped"] == dict.fromkeys(
        KWS_DEPTHWISE, "depthwise kernels: TF-MOT's ClusteringRegistry does not cluster them"
    )
    assert set(cluster["layers"]) == {"conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "dense"}
    assert cluster["zero_masks"] == []  # every pruned kernel is clustered: TF-MOT keeps their zeros itself
    quantize = run.step("quantize")["effect"]
    assert quantize["scheme"] == "Default8BitClusterPreserveQuantizeScheme" and quantize["skipped"] == {}
    assert "batch_normalization" in quantize["layers"]  # the whole model annotated, BatchNorm included
    assert quantize["zero_masks"] == ["conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "dense"]
    pruned = set(run.step("prune")["effect"]["layers"])
    assert pruned == {"conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "dense"}
    for name in pruned:  # zeros and clusters both reach the int8 file, in the Keras model too
        kept = quantize["preserved"][name]
        assert kept["sparsity_tflite"] >= 0.79 and kept["unique_values_tflite"] <= 16, (name, kept)
        assert next(r for r in run.manifest["layers"] if r["name"] == name)["sparsity"] >= 0.79
    folded = {
        r["name"]: r.get("tflite_folded_into") for r in run.manifest["layers"] if r["type"] == "BatchNormalization"
    }
    assert folded["batch_normalization"] == "conv2d" and folded["batch_normalization_1"] == "depthwise_conv2d"


def test_clustering_chosen_depthwise_layers_stops_naming_them(runs: dict[str, Run]) -> None:
    error = runs["kws_cluster_depthwise"].error
    assert f"layers {', '.join(KWS_DEPTHWISE)} cannot be clustered" in error
    assert "ClusteringRegistry does not cluster them" in error
    assert "exclude = [" + ", ".join(f'"{n}"' for n in KWS_DEPTHWISE) + "] in the cluster step" in error


def test_separable_conv_figures_count_both_kernels_and_match_the_file(runs: dict[str, Run]) -> None:
    run = runs["zoo_prune_int8"]
    effect = run.step("prune")["effect"]
    # TF-MOT prunes a SeparableConv2D's pointwise kernel; its depthwise half is left dense and named.
    assert effect["pruned_kernels"]["separable_conv2d"] == ["pointwise_kernel"]
    reason = 'depthwise kernels, left dense by default: prune them with layers = ["SeparableConv2D"]'
    assert effect["skipped"] == dict.fromkeys(
        ["separable_conv2d/depthwise_kernel", "separable_conv2d_1/depthwise_kernel"], reason
    )
    assert {"conv2d_transpose", "conv1d", "lstm", "dense"} <= set(effect["layers"])
    assert effect["pruned_kernels"]["lstm"] == ["kernel", "recurrent_kernel"]
    assert effect["reached_sparsity"] >= 0.495
    ops = {name: values for name, (_, _, values) in _weight_ops(run).items()}
    rows = {row["name"]: row for row in run.manifest["layers"]}
    separable = rows["separable_conv2d_1"]
    depthwise, pointwise = separable["kernels"]
    assert (depthwise["name"], pointwise["name"]) == ("depthwise_kernel", "pointwise_kernel")
    assert (depthwise["tflite_op"], pointwise["tflite_op"]) == ("DEPTHWISE_CONV_2D", "CONV_2D")
    both = np.concatenate([ops[k["tflite_tensor"]].ravel() for k in (depthwise, pointwise)])
    # The row is both kernels together, in Keras and in the file (not one kernel's figure for the layer).
    assert separable["kernel_params"] == both.size == depthwise["params"] + pointwise["params"]
    assert separable["tflite_sparsity"] == pytest.approx(np.mean(both == 0))
    assert separable["sparsity"] == pytest.approx(0.5 * pointwise["params"] / both.size, abs=0.01)
    assert rows["batch_normalization"]["tflite_folded_into"] == "separable_conv2d"
    # An LSTM's kernel and recurrent kernel are its op's four input and four recurrent gate tensors.
    lstm = {k["name"]: k for k in rows["lstm"]["kernels"]}
    assert lstm["kernel"]["tflite_op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert lstm["kernel"]["tflite_sparsity"] >= 0.495 and lstm["recurrent_kernel"]["tflite_sparsity"] >= 0.495
    for name in ("conv1d", "conv2d_transpose", "dense"):
        assert rows[name]["tflite_sparsity"] >= 0.495, rows[name]


def test_chosen_separable_and_lstm_are_pruned_whole_and_pqat_keeps_float_layers_zeros(runs: dict[str, Run]) -> None:
    run = runs["zoo_chosen_pqat"]
    effect = run.step("prune")["effect"]
    assert effect["pruned_kernels"] == {
        "separable_conv2d": ["depthwise_kernel", "pointwise_kernel"],
        "separable_conv2d_1": ["depthwise_kernel", "pointwise_kernel"],
        "lstm": ["kernel", "recurrent_kernel"],
    }
    assert effect["skipped"] == {}
    quantize = run.step("quantize")["effect"]
    # PQAT takes the whole model; what TF-MOT's scheme has no config for is left float, named, and frozen.
    assert set(quantize["skipped"]) == {"conv2d_transpose", "conv1d", "lstm"}
    assert "no quantize config for Conv1D" in quantize["skipped"]["conv1d"]
    assert set(quantize["frozen"]) == {"conv2d_transpose", "conv1d", "lstm"}
    # TF-MOT's QAT replaces each SeparableConv2D by a DepthwiseConv2D and a Conv2D: the effect says which is which.
    assert list(quantize["split"]) == ["separable_conv2d", "separable_conv2d_1"]
    types = {row["name"]: row["type"] for row in run.manifest["layers"]}
    for parts in quantize["split"].values():
        assert [types[part] for part in parts] == ["DepthwiseConv2D", "Conv2D"], parts
    graph = run.tflite.main
    depthwise = [v for op, _, v in _weight_ops(run).values() if op == "DEPTHWISE_CONV_2D"]
    assert len(depthwise) == 2 and all(np.mean(v == 0) >= 0.45 for v in depthwise)
    lstm = next(op for op in graph.operators if op.opcode.name == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    recurrent = np.stack([np.asarray(graph.tensors[i].data) for i in lstm.inputs[5:9]])
    assert np.mean(recurrent == 0) >= 0.495


def test_qat_on_chosen_layers_tf_mot_cannot_take_names_them(runs: dict[str, Run]) -> None:
    error = runs["conv1d_qat_chosen"].error
    assert error.startswith("layers conv1d, conv1d_1 cannot be quantised by qat: "), error
    assert "TF-MOT's Default8BitQuantizeScheme has no quantize config for Conv1D" in error
    assert error.endswith('leave them out with exclude = ["conv1d", "conv1d_1"] in the quantize step'), error


def test_full_integer_gru_is_refused_in_one_line(runs: dict[str, Run]) -> None:
    error = runs["gru_int8"].error
    assert "crashes on int8 quantisation of GRU/SimpleRNN layers (gru)" in error
    assert "dynamic or float16" in error
