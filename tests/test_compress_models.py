"""Where models come from and where they go: Keras 3 / .h5 / SavedModel sources, layers TF-MOT cannot handle,
the user's model left untouched, and export for an older runtime proven in a real tflite-runtime 2.14."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprof import metrics
from tests.conftest import ROOT, run_cli
from tests.helpers.compress_jobs import Run, run_jobs
from tests.helpers.runtime_venv import run_in_tflite_runtime, runtime_python


@pytest.fixture(scope="module")
def keras3(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Keras 3 models, built and saved by Keras 3 in a process without TF_USE_LEGACY_KERAS."""
    out = tmp_path_factory.mktemp("keras3")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run(
        [sys.executable, "-m", "tests.helpers.make_keras3", str(out), str(models / "digits.npz")],
        check=True,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
    )
    return out


def test_keras3_models_are_rebuilt_in_tf_keras_with_the_same_outputs(
    keras3: Path, models: Path, tmp_path: Path
) -> None:
    names = ("sequential", "functional", "rmsnorm")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.keras_outputs",
            str(models / "digits.npz"),
            str(tmp_path),
            *(str(keras3 / f"k3_{n}.keras") for n in names),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("sequential", "functional"):
        info = loaded[str(keras3 / f"k3_{name}.keras")]
        assert info["kind"] == "keras3" and info["keras_version"].startswith("3."), info
        keras3_outputs = np.load(keras3 / f"k3_{name}.npy")  # computed by Keras 3 itself
        tf_keras_outputs = np.load(tmp_path / f"k3_{name}.npy")
        np.testing.assert_allclose(tf_keras_outputs, keras3_outputs, atol=1e-5)
    # A layer tf_keras lacks: one line that names it.
    error = loaded[str(keras3 / "k3_rmsnorm.keras")]["error"]
    assert "'rms_normalization' (RMSNormalization)" in error and "no tf_keras equivalent" in error


def test_a_keras3_model_goes_through_tfmot(keras3: Path, models: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "compress",
        str(keras3 / "k3_functional.keras"),
        "-o",
        str(out),
        "--data",
        str(models / "digits.npz"),
        "--prune",
        "0.5",
        "--quantize",
        "int8",
        "--epochs",
        "2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "keras3"
    assert manifest["steps"][0]["effect"]["reached_sparsity"] >= 0.49
    assert manifest["tflite"]["metrics"]["accuracy"] >= manifest["source"]["metrics"]["accuracy"] - 0.05


JOB = {"recipe": {"step": [{"kind": "prune", "sparsity": 0.5, "epochs": 1}, {"kind": "quantize", "mode": "int8"}]}}


@pytest.fixture(scope="module")
def cases(models: Path, keras3: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = {"model": str(models / "cnn.keras"), "data": str(models / "digits.npz")}
    dynamic_214 = {"recipe": {"runtime": "tflite-runtime-2.14", "step": [{"kind": "quantize", "mode": "dynamic"}]}}
    jobs = {
        "not_mutated": {**base, **JOB, "case": "not_mutated"},
        "subclassed": {**base, **JOB, "case": "subclassed"},
        "custom_layer": {**base, **JOB, "case": "custom_layer"},
        "custom_layer_chosen": {
            **base,
            "case": "custom_layer",
            "recipe": {"step": [{"kind": "prune", "sparsity": 0.5, "epochs": 1, "layers": ["my_scale", "hidden"]}]},
        },
        "custom_layer_excluded": {
            **base,
            "case": "custom_layer",
            "recipe": {"step": [{"kind": "prune", "sparsity": 0.5, "epochs": 1, "exclude": ["my_scale"]}]},
        },
        "h5": {**base, **JOB, "model": str(models / "cnn.h5")},
        "savedmodel": {**base, "case": "savedmodel", "recipe": {"step": [{"kind": "quantize", "mode": "dynamic"}]}},
        "dynamic_214": {**base, **dynamic_214},
        "dynamic_any": {**base, "recipe": {"step": [{"kind": "quantize", "mode": "dynamic"}]}},
        "no_workaround": {**base, **dynamic_214, "case": "no_workaround"},
        "student_file": {**base, "case": "student_file"},
        # A functional graph (residual Add) rewired around factorised layers: the 1×1 conv and both Dense.
        "lowrank_functional": {
            **base,
            "model": str(keras3 / "k3_functional.keras"),
            "recipe": {"step": [{"kind": "lowrank", "rank": 3, "exclude": ["conv2d_1"], "epochs": 1}]},
        },
    }
    return run_jobs(tmp_path_factory.mktemp("cases"), jobs)


def test_the_users_model_object_is_never_changed(cases: dict[str, Run]) -> None:
    status = cases["not_mutated"].status
    assert status["ok"], status
    assert status["weights_unchanged"] and status["layers_unchanged"]
    assert status["gzip_ratio"] > 2  # and the compression did happen


def test_subclassed_models_and_unwrappable_layers_get_one_clear_line(cases: dict[str, Run]) -> None:
    assert not cases["subclassed"].ok
    assert "Net is a subclassed Keras model" in cases["subclassed"].error
    assert "Sequential or Functional" in cases["subclassed"].error
    # Taken by default, a layer TF-MOT cannot prune is left as it is and named; the others are pruned.
    default = cases["custom_layer"]
    assert default.ok, default.error
    assert set(default.status["sparsity"]) == {"hidden", "logits"}
    assert default.status["skipped"] == {"my_scale": "TF-MOT has no pruning rule for Scale layers"}
    assert "my_scale (TF-MOT has no pruning rule for Scale layers)" in default.status["text"]
    # Chosen by the user's `layers`, it stops the run with its name and the exclude line ...
    error = cases["custom_layer_chosen"].error
    assert "layer 'my_scale' (Scale) cannot be pruned: TF-MOT has no pruning rule for Scale layers" in error
    assert 'exclude = ["my_scale"]' in error
    # ... and that option works: the other layers are pruned, and nothing is left to name.
    excluded = cases["custom_layer_excluded"]
    assert excluded.ok, excluded.error
    assert set(excluded.status["sparsity"]) == {"hidden", "logits"}
    assert excluded.status["skipped"] == {}


def test_h5_and_savedmodel_sources(cases: dict[str, Run]) -> None:
    h5 = cases["h5"].manifest
    assert h5["source"]["kind"] == "h5" and h5["tflite"]["metrics"]["accuracy"] > 0.85
    assert cases["savedmodel"].status["kind"] == "savedmodel", cases["savedmodel"].status
    assert cases["savedmodel"].status["accuracy"] > 0.9


def test_a_distillation_student_from_a_keras_file(cases: dict[str, Run]) -> None:
    status = cases["student_file"].status
    assert status["ok"], status
    assert status["student_params"] == 64 * 20 + 20 + 20 * 10 + 10
    assert status["accuracy"] >= 0.85


def test_lowrank_rewires_a_functional_graph(cases: dict[str, Run]) -> None:
    manifest = cases["lowrank_functional"].manifest
    effect = manifest["steps"][0]["effect"]
    assert {name: layer["rank"] for name, layer in effect["layers"].items()} == {
        "conv2d_2": 3,  # the 1×1 convolution
        "dense_2": 3,
        "dense_3": 3,
    }
    names = [layer["name"] for layer in manifest["layers"]]
    assert names.index("conv2d_2_lowrank") + 1 == names.index("conv2d_2")
    assert any(op.startswith("ADD ") for op in manifest["tflite"]["ops"])  # the residual Add survived
    assert manifest["tflite"]["metrics"]["accuracy"] > 0.3  # it runs; rank 3 of 32 costs accuracy


def _tflite_runtime_accuracy(python: str, model: Path, models: Path, tmp: Path) -> tuple[float | None, str]:
    data = np.load(models / "digits.npz")
    np.save(tmp / "x.npy", data["x_test"])
    done = run_in_tflite_runtime(python, model, tmp / "x.npy", tmp / "out.npy")
    if done.returncode != 0:
        return None, done.stderr
    return metrics.classification(data["y_test"], np.load(tmp / "out.npy"))["accuracy"], ""


def test_runtime_option_exports_a_model_the_real_tflite_runtime_2_14_loads(
    cases: dict[str, Run], models: Path, tmp_path: Path
) -> None:
    python = runtime_python()
    target = cases["dynamic_214"]
    check = target.manifest["runtime"]
    assert check["runtime"] == "tflite-runtime-2.14.0"
    assert check["issues_before_workarounds"] == [
        "FULLY_CONNECTED v12 is newer than tflite-runtime 2.14.0 has (up to v10)"
    ]
    assert "per-tensor" in check["workarounds"][0]
    accuracy, error = _tflite_runtime_accuracy(python, target.out / "model.tflite", models, tmp_path)
    assert accuracy is not None, error
    # Same predictions as LiteRT gave compress (within one sample of 360).
    assert abs(accuracy - target.manifest["tflite"]["metrics"]["accuracy"]) <= 1 / 360 + 1e-9
    # Negative control: the default export of the same model does not load in tflite-runtime 2.14.
    accuracy, error = _tflite_runtime_accuracy(python, cases["dynamic_any"].out / "model.tflite", models, tmp_path)
    assert accuracy is None and "FULLY_CONNECTED' version '12'" in error
    assert cases["dynamic_any"].manifest["runtime"] is None


def test_runtime_that_cannot_load_the_model_is_refused_naming_the_op(cases: dict[str, Run]) -> None:
    error = cases["no_workaround"].error
    assert error.startswith("tflite-runtime 2.14.0 cannot load the exported model: FULLY_CONNECTED v12"), error
    assert "--runtime" in error


def test_unknown_runtime_is_refused_before_any_training(models: Path, tmp_path: Path) -> None:
    done = run_cli(
        "compress",
        str(models / "cnn.keras"),
        "-o",
        str(tmp_path / "o"),
        "--data",
        str(models / "digits.npz"),
        "--quantize",
        "dynamic",
        "--runtime",
        "tflite-runtime-2.5",
    )
    assert done.returncode == 2
    assert "no operator table for tflite-runtime-2.5" in done.stderr and "tflite-runtime-2.14.0" in done.stderr
    assert not (tmp_path / "o").exists()
