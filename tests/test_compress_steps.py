"""Every compression step on real (small) training, each with its measured effect asserted.

All jobs run in one child process (TensorFlow imported once) on the test CNN (16.8k parameters) and
scikit-learn's digits; the assertions read the manifest and the exported .tflite, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.compress_jobs import Run, run_jobs

FAST = {"epochs": 1, "learning_rate": 1e-3}
PRUNE = {"kind": "prune", "sparsity": 0.75, "epochs": 3}


def _jobs(models: Path) -> dict[str, dict]:
    def job(*steps: dict, **extra: object) -> dict:
        return {
            "model": str(models / "cnn.keras"),
            "data": str(models / "digits.npz"),
            "recipe": {"step": list(steps)},
            **extra,
        }

    return {
        "prune_poly": job(
            {"kind": "prune", "sparsity": 0.8, "begin_step": 0, "end_step": 83, "frequency": 5, "epochs": 4}
        ),
        "prune_const": job(
            {"kind": "prune", "sparsity": 0.6, "schedule": "constant", "layers": ["dense"], "epochs": 2}
        ),
        "prune_24": job({"kind": "prune", "structure": "2:4", "layers": ["Dense"], "epochs": 2}),
        "cluster": job(
            {"kind": "cluster", "clusters": 4, "init": "linear", "per_channel": True, "exclude": ["dense_1"], **FAST}
        ),
        "dynamic": job({"kind": "quantize", "mode": "dynamic"}),
        "float16": job({"kind": "quantize", "mode": "float16"}),
        "int16x8": job({"kind": "quantize", "mode": "int16x8", "representative_samples": 50}),
        "int8_io": job({"kind": "quantize", "mode": "int8", "int8_io": True, "representative_samples": 50}),
        "qat": job({"kind": "quantize", "mode": "qat", **FAST}),
        "prune_qat": job(PRUNE, {"kind": "quantize", "mode": "qat", **FAST}),
        "pqat": job(PRUNE, {"kind": "quantize", "mode": "pqat", **FAST}),
        "cqat": job({"kind": "cluster", "clusters": 8, **FAST}, {"kind": "quantize", "mode": "cqat", **FAST}),
        "pcqat": job(PRUNE, {"kind": "cluster", "clusters": 8, **FAST}, {"kind": "quantize", "mode": "pcqat", **FAST}),
        "l1": job({"kind": "l1", "strength": 1e-3, "threshold": 0.05, "epochs": 2}),
        "lowrank_rank": job({"kind": "lowrank", "rank": 8, "layers": ["dense"], **FAST}),
        "lowrank_energy": job({"kind": "lowrank", "energy": 0.8, **FAST}, {"kind": "quantize", "mode": "int8"}),
        "distill": job(
            {"kind": "distill", "student": "tests.helpers.students:tiny_mlp", "temperature": 4, "alpha": 0.1}
        ),
    }


@pytest.fixture(scope="module")
def runs(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_jobs(tmp_path_factory.mktemp("steps"), _jobs(models))


def _weights(run: Run, op: str = "") -> dict[str, np.ndarray]:
    """The stored weight tensor of every FULLY_CONNECTED / CONV_2D op, by op output name."""
    graph = run.tflite.main
    found = {}
    for operator in graph.operators:
        if operator.opcode.name in ("FULLY_CONNECTED", "CONV_2D") and (not op or operator.opcode.name == op):
            tensor = graph.tensors[operator.inputs[1]]
            if tensor.data is not None:
                found[graph.tensors[operator.outputs[0]].name] = np.asarray(tensor.data)
    return found


def _accuracy_drop(run: Run) -> float:
    m = run.manifest
    return m["source"]["metrics"]["accuracy"] - m["tflite"]["metrics"]["accuracy"]


def _layer(run: Run, name: str) -> dict:
    return next(layer for layer in run.manifest["layers"] if layer["name"] == name)


def test_polynomial_pruning_reaches_its_target_on_the_mask_grid(runs: dict[str, Run]) -> None:
    effect = runs["prune_poly"].step("prune")["effect"]
    # end_step 83 is moved onto the mask-update grid of frequency 5, so the last update really happens.
    assert effect["schedule"] | {"total_steps": 0} == {
        "kind": "polynomial",
        "begin_step": 0,
        "end_step": 80,
        "frequency": 5,
        "total_steps": 0,
    }
    assert all(s >= 0.795 for s in effect["layers"].values()), effect["layers"]
    # The exported float model carries the zeros, and the per-layer table says so.
    for weights in _weights(runs["prune_poly"]).values():
        assert np.mean(weights == 0) >= 0.79
    assert all(layer["tflite_sparsity"] >= 0.79 for layer in runs["prune_poly"].manifest["layers"])
    assert _accuracy_drop(runs["prune_poly"]) <= 0.04


def test_constant_schedule_prunes_only_the_selected_layer(runs: dict[str, Run]) -> None:
    effect = runs["prune_const"].step("prune")["effect"]
    assert effect["schedule"]["kind"] == "constant"
    assert list(effect["layers"]) == ["dense"]
    assert _layer(runs["prune_const"], "dense")["sparsity"] == pytest.approx(0.6, abs=0.01)
    # Negative control: the layers left out keep every weight.
    assert _layer(runs["prune_const"], "conv2d")["sparsity"] == 0
    assert _layer(runs["prune_const"], "dense_1")["sparsity"] == 0


def test_2_of_4_pruning_keeps_two_of_every_four_input_weights(runs: dict[str, Run]) -> None:
    effect = runs["prune_24"].step("prune")["effect"]
    assert effect["target_sparsity"] == 0.5 and effect["structure"] == "2:4"
    assert set(effect["layers"]) == {"dense", "dense_1"}  # selected by type: every Dense, not the Conv2D
    assert effect["m_by_n_blocks"] == {"dense": 1.0, "dense_1": 1.0}
    fully_connected = _weights(runs["prune_24"], "FULLY_CONNECTED")
    assert len(fully_connected) == 2
    for weights in fully_connected.values():  # TFLite stores FULLY_CONNECTED weights as (outputs, inputs)
        outputs, inputs = weights.shape
        blocks = weights[:, : inputs // 4 * 4].reshape(outputs, -1, 4)
        assert np.all((blocks == 0).sum(axis=-1) >= 2)
        # Negative control: along the output axis the pattern does not hold, so the axis above is the real one.
        across = weights[: outputs // 4 * 4].T.reshape(inputs, -1, 4)
        assert not np.all((across == 0).sum(axis=-1) >= 2)
    conv = _weights(runs["prune_24"], "CONV_2D")
    assert all(np.mean(w == 0) == 0 for w in conv.values())


def test_per_channel_clustering_with_linear_init(runs: dict[str, Run]) -> None:
    effect = runs["cluster"].step("cluster")["effect"]
    assert set(effect["layers"]) == {"conv2d", "dense"}
    conv = next(iter(_weights(runs["cluster"], "CONV_2D").values()))  # (out, h, w, in)
    per_channel = [np.unique(channel).size for channel in conv.reshape(conv.shape[0], -1)]
    assert max(per_channel) <= 4
    assert np.unique(conv).size > 4  # each channel has its own 4 centroids
    assert _layer(runs["cluster"], "dense")["unique_values"] <= 4
    assert _layer(runs["cluster"], "dense_1")["unique_values"] > 100  # excluded: untouched
    assert _accuracy_drop(runs["cluster"]) <= 0.06


def test_post_training_modes_store_the_types_they_promise(runs: dict[str, Run]) -> None:
    def weight_types(run: Run) -> set[str]:
        return {row["dtype"] for row in run.manifest["tflite"]["weights"] if row["params"] >= 1024}

    assert weight_types(runs["dynamic"]) == {"INT8"}
    assert runs["dynamic"].tflite.main.tensors[runs["dynamic"].tflite.main.inputs[0]].dtype == "FLOAT32"
    assert weight_types(runs["float16"]) == {"FLOAT16"}
    int16 = runs["int16x8"].manifest["tflite"]["tensor_types"]
    assert int16.get("INT16", 0) > 0 and weight_types(runs["int16x8"]) == {"INT8"}
    graph = runs["int8_io"].tflite.main
    assert graph.tensors[graph.inputs[0]].dtype == "INT8" and graph.tensors[graph.outputs[0]].dtype == "INT8"
    assert runs["int8_io"].step("quantize")["effect"]["representative_samples"] == 50
    for name in ("dynamic", "float16", "int16x8", "int8_io"):
        assert _accuracy_drop(runs[name]) <= 0.02, name
    assert runs["dynamic"].manifest["sizes"]["raw_ratio"] > 3


def test_qat_exports_an_int8_model(runs: dict[str, Run]) -> None:
    effect = runs["qat"].step("quantize")["effect"]
    assert effect["scheme"] == "Default8BitQuantizeScheme"
    assert all(row["dtype"] == "INT8" for row in runs["qat"].manifest["tflite"]["weights"])
    assert _accuracy_drop(runs["qat"]) <= 0.03


def test_pqat_keeps_the_zeros_that_plain_qat_loses(runs: dict[str, Run]) -> None:
    assert runs["pqat"].step("quantize")["effect"]["scheme"] == "Default8BitPrunePreserveQuantizeScheme"
    for weights in _weights(runs["pqat"]).values():
        assert weights.dtype == np.int8 and np.mean(weights == 0) >= 0.74
    # Negative control, same pruning and training: the default QAT scheme moves the zeros.
    kept = [np.mean(w == 0) for w in _weights(runs["prune_qat"]).values()]
    assert min(kept) < 0.6, kept
    assert _accuracy_drop(runs["pqat"]) <= 0.04


def test_cqat_keeps_the_clusters_in_the_int8_weights(runs: dict[str, Run]) -> None:
    assert runs["cqat"].step("quantize")["effect"]["scheme"] == "Default8BitClusterPreserveQuantizeScheme"
    for row in runs["cqat"].manifest["tflite"]["weights"]:
        assert row["dtype"] == "INT8"
        assert row["unique_values"] <= 8, row  # per output channel: each has its own int8 scale
    assert _accuracy_drop(runs["cqat"]) <= 0.05


def test_pcqat_keeps_both_zeros_and_clusters(runs: dict[str, Run]) -> None:
    for row in runs["pcqat"].manifest["tflite"]["weights"]:
        assert row["dtype"] == "INT8"
        assert row["sparsity"] >= 0.74, row
        assert row["unique_values"] <= 9, row  # 8 clusters and the preserved zero
    preserved = runs["pcqat"].step("quantize")["effect"]["preserved"]
    assert set(preserved) == {"conv2d", "dense", "dense_1"}
    assert runs["pcqat"].manifest["sizes"]["gzip_ratio"] > 8
    assert _accuracy_drop(runs["pcqat"]) <= 0.05


def test_l1_then_threshold_reaches_more_sparsity_than_the_threshold_alone(runs: dict[str, Run]) -> None:
    effect = runs["l1"].step("l1")["effect"]
    assert effect["reached_sparsity"] >= effect["sparsity_without_l1"] + 0.15, effect
    assert runs["l1"].manifest["sparsity"] == pytest.approx(effect["reached_sparsity"])
    assert _accuracy_drop(runs["l1"]) <= 0.03


def test_lowrank_by_rank_factorises_into_two_layers_of_that_rank(runs: dict[str, Run]) -> None:
    effect = runs["lowrank_rank"].step("lowrank")["effect"]
    assert effect["layers"]["dense"] | {"energy_kept": 0} == {
        "rank": 8,
        "full_rank": 32,
        "energy_kept": 0,
        "params_before": 512 * 32,
        "params_after": 8 * (512 + 32),
    }
    layers = {layer["name"]: layer for layer in runs["lowrank_rank"].manifest["layers"]}
    assert layers["dense_lowrank"]["params"] == 512 * 8  # no bias in the first factor
    assert layers["dense"]["params"] == 8 * 32 + 32
    first, second = (
        w for w in _weights(runs["lowrank_rank"], "FULLY_CONNECTED").values() if w.shape in ((8, 512), (32, 8))
    )
    assert np.linalg.matrix_rank(second.astype(np.float64) @ first.astype(np.float64)) == 8
    assert _accuracy_drop(runs["lowrank_rank"]) <= 0.05


def test_lowrank_by_energy_keeps_at_least_that_energy(runs: dict[str, Run]) -> None:
    effect = runs["lowrank_energy"].step("lowrank")["effect"]
    assert effect["layers"], effect
    for layer in effect["layers"].values():
        assert layer["energy_kept"] >= 0.8 and layer["rank"] < layer["full_rank"]
    assert effect["params_after"] < effect["params_before"]


def test_distill_trains_the_smaller_student(runs: dict[str, Run]) -> None:
    effect = runs["distill"].step("distill")["effect"]
    assert effect["student_params"] == 64 * 20 + 20 + 20 * 10 + 10
    assert effect["teacher_params"] == runs["distill"].manifest["source"]["params"]
    assert effect["params_ratio"] > 10
    assert runs["distill"].manifest["tflite"]["metrics"]["accuracy"] >= 0.85
