"""Tasks beyond classification, and data checked before anything trains.

The models: MLPerf Tiny's anomaly-detection autoencoder (a real third-party .h5) on synthetic spectra, and small
models of each task trained for real in tests/helpers/task_models.py, all compressed in one child process. Every
figure in a manifest is recomputed here with scikit-learn from the exported .tflite's own outputs (LiteRT in this
process, outputs matched to Keras outputs by their signature names), so a metric, a threshold, a label order or a
swapped output would show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from edgeprof import tasks
from edgeprof.errors import DataError, RecipeError
from tests.conftest import ROOT, run_cli
from tests.helpers.compress_jobs import Run
from tests.helpers.task_data import anomaly_detection

AD = "anomaly_detection"


@pytest.fixture(scope="module")
def task_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    try:
        ad_model = str(request.getfixturevalue("real_models") / AD / f"{AD}.h5")
    except pytest.skip.Exception:
        ad_model = ""  # the autoencoder's tests skip; the small models still run
    out = tmp_path_factory.mktemp("tasks")
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.task_models", str(out), ad_model],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Run(out / name, value) for name, value in status.items()}


def _run(task_runs: dict[str, Run], name: str) -> Run:
    if name not in task_runs:
        pytest.skip("the MLPerf Tiny models could not be fetched")
    run = task_runs[name]
    assert run.ok, run.error
    return run


def litert_outputs(model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of a .tflite on every sample, by signature name, from LiteRT in this process."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    (input_name,) = interpreter.get_signature_list()["serving_default"]["inputs"]
    runner = interpreter.get_signature_runner()
    rows = [runner(**{input_name: x[i : i + 1].astype(np.float32)}) for i in range(len(x))]
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def _test_split(run: Run) -> dict[str, np.ndarray]:
    with np.load(run.status["data"]) as npz:
        return {key: npz[key] for key in npz.files if "test" in key}


def _only(outputs: dict[str, np.ndarray]) -> np.ndarray:
    (value,) = outputs.values()
    return value


# ----------------------------------------------------------------------------------------------------------------
# MLPerf Tiny's anomaly-detection autoencoder


def _assert_reconstruction_figures(manifest: dict[str, Any], model: Path, data: dict[str, np.ndarray]) -> None:
    """mse, per-class mse, ROC AUC and pAUC of the per-sample error, as scikit-learn computes them."""
    x, labels = data["x_test"], data["y_test"]
    reconstructed = _only(litert_outputs(model, x))
    errors = np.mean((x.reshape(len(x), -1) - reconstructed.reshape(len(x), -1)) ** 2, axis=1)
    found = manifest["tflite"]["metrics"]
    assert found["mse"] == pytest.approx(errors.mean(), rel=1e-5)
    assert found["mse"] == pytest.approx(
        skm.mean_squared_error(x.reshape(len(x), -1), reconstructed.reshape(len(x), -1)), rel=1e-5
    )
    assert found["mse_normal"] == pytest.approx(errors[labels == 0].mean(), rel=1e-5)
    assert found["mse_anomalous"] == pytest.approx(errors[labels == 1].mean(), rel=1e-5)
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, errors), abs=1e-9)
    assert found["pauc"] == pytest.approx(skm.roc_auc_score(labels, errors, max_fpr=0.1), abs=1e-9)
    assert found["roc_auc"] > 0.7  # the anomalies (a band 30 dB down) reconstruct worse than the normal spectra
    task = manifest["task"]
    assert task["name"] == "reconstruction" and not task["outputs"][0]["stated"]
    assert task["outputs"][0]["loss"] == "mean squared error against the input"
    head = manifest["headline"]
    assert head["metric"] == "roc_auc" and head["higher_is_better"] and head["unit"] == "pp"
    assert head["change"] == pytest.approx(100 * (found["roc_auc"] - manifest["source"]["metrics"]["roc_auc"]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ad_int8", "ad_prune_int8"])
def test_autoencoder_reconstruction_error_and_roc_auc_match_scikit_learn(task_runs: dict[str, Run], name: str) -> None:
    run = _run(task_runs, name)
    _assert_reconstruction_figures(run.manifest, run.out / "model.tflite", _test_split(run))
    assert run.manifest["tflite"]["tensor_types"].get("INT8", 0) > 0
    if name == "ad_prune_int8":  # fine-tuned on the normal spectra against themselves, and really pruned
        assert run.step("prune")["effect"]["reached_sparsity"] >= 0.49


@pytest.mark.slow
def test_autoencoder_dynamic_from_the_cli_with_its_headline_in_check(real_models: Path, tmp_path: Path) -> None:
    data = anomaly_detection(tmp_path / "machine.npz")
    store = tmp_path / "results.db"
    out = tmp_path / "out"
    done = run_cli(
        "compress", str(real_models / AD / f"{AD}.h5"), "-o", str(out), "--data", str(data), "--quantize", "dynamic",
        "--store", str(store),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "task: reconstruction (inferred" in done.stdout
    assert "ROC AUC" in done.stdout and "headline: ROC AUC (higher is better)" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    with np.load(data) as npz:
        _assert_reconstruction_figures(manifest, out / "model.tflite", {k: npz[k] for k in ("x_test", "y_test")})
    # check's accuracy drop is the drop of the task's headline figure, and says which figure it is.
    budget = tmp_path / "budget.toml"
    budget.write_text("[limits]\naccuracy_drop_pp = 100\n")
    done = run_cli(
        "check", "--budget", str(budget), str(out / "model.tflite"), "--store", str(store), "--runs", "20", "--json"
    )
    assert done.returncode == 0, done.stderr
    (check,) = json.loads(done.stdout)["checks"]
    assert check["value"] == pytest.approx(-manifest["headline"]["change"])
    assert "ROC AUC" in check["reason"]
    # The stored run shows its headline figure, not an empty "accuracy" column.
    auc = manifest["tflite"]["metrics"]["roc_auc"]
    listed = run_cli("results", "list", "--compressions", "--store", str(store))
    assert f"ROC AUC {100 * auc:.1f}%" in listed.stdout, listed.stdout
    shown = run_cli("results", "show", "1", "--compression", "--store", str(store))
    assert f"ROC AUC {100 * auc:.1f}%" in shown.stdout, shown.stdout
    # The report names the figure too, and keeps it off the accuracy plots (a Wilson interval fits accuracy only).
    html = tmp_path / "report.html"
    assert run_cli("report", "--store", str(store), "--out", str(html)).returncode == 0
    page = html.read_text()
    assert f"ROC AUC {100 * auc:.1f}%" in page
    assert "fig-accuracy_vs_size" not in page and "fig-accuracy_vs_p90" not in page


@pytest.mark.slow
def test_qat_starts_from_calibrated_activation_ranges(real_models: Path, tmp_path: Path) -> None:
    """TF-MOT starts every activation range at [-6, 6] and moves it by a slow moving average, so a short QAT clamped
    the MLPerf AD autoencoder's log-mel reconstructions (real data: MSE 30.5 -> 128.8, where post-training int8 gave
    30.6). QAT now starts from the float model's ranges on the representative samples, as post-training int8 does."""
    data = anomaly_detection(tmp_path / "machine.npz")  # spectra of 34..61 dB
    mse, top = {}, {}
    for mode in ("int8", "qat"):
        out = tmp_path / mode
        done = run_cli(
            "compress", str(real_models / AD / f"{AD}.h5"), "-o", str(out), "--data", str(data), "--quantize", mode,
            "--store", str(tmp_path / "results.db"),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        mse[mode] = manifest["tflite"]["metrics"]["mse"]
        with np.load(data) as npz:
            top[mode] = float(_only(litert_outputs(out / "model.tflite", npz["x_test"][:20])).max())
    (step,) = manifest["steps"]
    assert step["effect"]["calibrated_ranges"] == {"set": 20, "left": 0, "samples": 200}
    assert "activation ranges calibrated on 200 representative samples" in step["effect"]["text"]
    # The int8 model's reconstructions reach the spectra's level (clamped, they stayed near 6 dB) ...
    assert top["qat"] > 30.0 and top["int8"] > 30.0, top
    # ... and two epochs of fake-quantised fine-tuning end near post-training int8 (clamped: 1.6x worse).
    assert mse["qat"] <= 1.34 * mse["int8"], mse


# ----------------------------------------------------------------------------------------------------------------
# Small models of the other tasks


@pytest.mark.slow
def test_regression_mae_rmse_r2_match_scikit_learn(task_runs: dict[str, Run]) -> None:
    run = _run(task_runs, "regression")
    data = _test_split(run)
    predicted = _only(litert_outputs(run.out / "model.tflite", data["x_test"])).reshape(-1)
    y = data["y_test"]
    found = run.manifest["tflite"]["metrics"]
    assert found["r2"] == pytest.approx(skm.r2_score(y, predicted), abs=1e-6)
    assert found["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted), rel=1e-5)
    assert found["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, predicted)), rel=1e-5)
    # Fine-tuned on mean squared error against float targets (not truncated to classes), it still fits them.
    assert found["r2"] > 0.9
    assert run.manifest["task"]["outputs"][0]["loss"] == "mean squared error"
    assert run.manifest["headline"]["metric"] == "r2"


@pytest.mark.slow
def test_binary_single_sigmoid_figures_match_scikit_learn(task_runs: dict[str, Run]) -> None:
    run = _run(task_runs, "binary")
    data = _test_split(run)
    scores = _only(litert_outputs(run.out / "model.tflite", data["x_test"])).reshape(-1)
    y, predicted = data["y_test"], (scores >= 0.5).astype(int)
    found = run.manifest["tflite"]["metrics"]
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert found["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert found["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert found["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert found["accuracy"] > 0.9
    output = run.manifest["task"]["outputs"][0]
    assert output["task"] == "binary" and output["loss"] == "binary cross-entropy"
    assert run.manifest["headline"]["metric"] == "accuracy"


@pytest.mark.slow
def test_multilabel_figures_match_scikit_learn(task_runs: dict[str, Run]) -> None:
    run = _run(task_runs, "multilabel")
    data = _test_split(run)
    y = data["y_test"]
    predicted = (_only(litert_outputs(run.out / "model.tflite", data["x_test"])) >= 0.5).astype(int)
    found = run.manifest["tflite"]["metrics"]
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))  # every label right
    assert found["label_accuracy"] == pytest.approx(1 - skm.hamming_loss(y, predicted))
    for average in ("micro", "macro"):
        assert found[f"f1_{average}"] == pytest.approx(skm.f1_score(y, predicted, average=average))
        assert found[f"precision_{average}"] == pytest.approx(skm.precision_score(y, predicted, average=average))
        assert found[f"recall_{average}"] == pytest.approx(skm.recall_score(y, predicted, average=average))
    assert found["f1_micro"] > 0.85
    assert run.manifest["task"]["name"] == "multilabel" and run.manifest["headline"]["metric"] == "f1_micro"


@pytest.mark.slow
def test_multi_output_model_gets_each_outputs_metrics(task_runs: dict[str, Run]) -> None:
    run = _run(task_runs, "multi_output")
    data = _test_split(run)
    outputs = litert_outputs(run.out / "model.tflite", data["x_test"])
    found = run.manifest["tflite"]["metrics"]
    classes = outputs["zeta"].argmax(axis=1)
    assert found["zeta/accuracy"] == pytest.approx(skm.accuracy_score(data["y_test_zeta"], classes))
    assert found["zeta/f1_macro"] == pytest.approx(skm.f1_score(data["y_test_zeta"], classes, average="macro"))
    assert found["alpha/r2"] == pytest.approx(skm.r2_score(data["y_test_alpha"], outputs["alpha"]), abs=1e-6)
    assert found["alpha/mae"] == pytest.approx(
        skm.mean_absolute_error(data["y_test_alpha"], outputs["alpha"]), rel=1e-5
    )
    # Both heads stay good after pruning: each was fine-tuned with its own loss on its own targets.
    assert found["zeta/accuracy"] > 0.8 and found["alpha/r2"] > 0.8
    by_name = {o["name"]: o for o in run.manifest["task"]["outputs"]}
    assert by_name["zeta"]["task"] == "classification" and by_name["alpha"]["task"] == "regression"
    assert run.manifest["headline"]["metric"] == "zeta/accuracy"


@pytest.mark.slow
def test_user_loss_and_metric_from_module_function(task_runs: dict[str, Run]) -> None:
    run = _run(task_runs, "user_functions")
    m = run.manifest
    # offset_mse adds 1000 to the squared error: QAT's final loss shows that it was the loss trained on.
    assert m["steps"][0]["effect"]["final_loss"] >= 1000
    assert m["task"]["user_loss"] == "offset_mse" and m["task"]["user_metric"] == "max_abs_error"
    data = _test_split(run)
    predicted = _only(litert_outputs(run.out / "model.tflite", data["x_test"])).reshape(-1)
    assert m["tflite"]["metrics"]["max_abs_error"] == pytest.approx(np.max(np.abs(data["y_test"] - predicted)))
    head = m["headline"]
    assert head["metric"] == "max_abs_error" and head["higher_is_better"] is False
    assert head["tflite"] == m["tflite"]["metrics"]["max_abs_error"]


# ----------------------------------------------------------------------------------------------------------------
# Inference of the task from the model's output and the targets


X = np.zeros((6, 4), np.float32)


@pytest.mark.parametrize(
    ("shape", "activation", "y", "task"),
    [
        ((10,), "softmax", np.arange(6) % 10, "classification"),
        ((10,), "linear", np.arange(6) % 10, "classification"),  # logits
        ((3,), "linear", np.eye(3)[np.arange(6) % 3], "classification"),  # one-hot rows
        ((1,), "sigmoid", np.arange(6) % 2, "binary"),
        ((3,), "sigmoid", (np.arange(18).reshape(6, 3) % 2), "multilabel"),
        ((1,), "linear", np.linspace(0, 1, 6), "regression"),
        ((2,), "relu", np.linspace(0, 1, 12).reshape(6, 2), "regression"),
        ((1,), "linear", np.arange(6) * 7, "regression"),  # counts beyond 0/1
        ((4,), "linear", None, "reconstruction"),  # no targets, output shaped like the input
        ((4,), "sigmoid", X, "reconstruction"),  # targets equal to the inputs
        ((3,), "linear", np.arange(6) % 2, "classification"),  # 3 logits and labels 0/1
    ],
)
def test_task_is_inferred_where_only_one_reading_fits(
    shape: tuple[int, ...], activation: str, y: np.ndarray | None, task: str
) -> None:
    assert tasks.infer("out", shape, activation, y, X)[0] == task


def test_anomaly_labels_for_an_autoencoder_mean_reconstruction() -> None:
    x = np.zeros((6, 5, 8, 1), np.float32)
    assert tasks.infer("out", (5, 8, 1), "linear", np.arange(6) % 2, x)[0] == "reconstruction"


@pytest.mark.parametrize(
    ("shape", "y", "choices"),
    [
        ((1,), np.arange(6) % 2, "binary or regression"),  # one linear unit, 0/1 targets
        ((3,), np.array([[1, 1, 0]] * 6), "multilabel or regression"),  # logits or values for 0/1 rows
        ((4,), np.arange(6) % 2, "reconstruction or classification"),  # input-shaped logits, or anomaly labels?
    ],
)
def test_an_ambiguous_task_asks_to_be_stated_in_one_line(shape: tuple[int, ...], y: np.ndarray, choices: str) -> None:
    with pytest.raises(DataError) as info:
        tasks.infer("head", shape, "linear", y, X)
    assert choices in str(info.value) and "--task" in info.value.fix and "\n" not in str(info.value)


def test_task_names_are_checked_in_recipes() -> None:
    from edgeprof.compress import Recipe

    recipe = Recipe.from_dict({"task": {"age": "regression"}, "metric": "m:f", "step": []})
    assert recipe.task == {"age": "regression"} and recipe.to_dict()["metric"] == "m:f"
    with pytest.raises(RecipeError, match="unknown task 'regresion'"):
        Recipe.from_dict({"task": "regresion"})


# ----------------------------------------------------------------------------------------------------------------
# Data checks before anything trains: one line, exit 2, nothing stored


def _digits_like(rng: np.random.Generator, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    return rng.random((n, 8, 8, 1)).astype(np.float32), np.arange(n) % 10


def _defect(kind: str, path: Path) -> Path:
    """Data for the test CNN (8×8×1 → 10 logits) with one defect."""
    rng = np.random.default_rng(0)
    x, y = _digits_like(rng)
    four = {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]}
    if kind == "out_of_range":
        four["y_train"] = four["y_train"].copy()
        four["y_train"][5] = 12
    elif kind == "float_labels":
        four["y_train"] = four["y_train"].astype(np.float64)
        four["y_train"][7] = 3.5
    elif kind == "nan_labels":
        four["y_test"] = four["y_test"].astype(np.float64)
        four["y_test"][4] = np.nan
    elif kind == "string_labels":
        four["y_train"] = np.array([f"class{v}" for v in four["y_train"]])
    elif kind == "one_hot_width":
        four["y_train"] = np.eye(5)[four["y_train"] % 5]
    elif kind == "nan_x":
        four["x_train"] = four["x_train"].copy()
        four["x_train"][10, 2, 3, 0] = np.nan
    elif kind == "inf_x":
        four["x_test"] = four["x_test"].copy()
        four["x_test"][2, 0, 0, 0] = np.inf
    elif kind == "string_x":
        four["x_train"] = np.full((100, 8, 8, 1), "0.5")
    elif kind == "pickled":
        four["y_train"] = np.array([int(v) for v in four["y_train"]], dtype=object)
        np.savez(path, **four)
        return path
    elif kind == "npy":
        path = path.with_suffix(".npy")
        np.save(path, x)
        return path
    elif kind == "counts_xy":
        np.savez(path, x=x, y=y[:-3])
        return path
    elif kind == "empty_xy":
        np.savez(path, x=x[:0], y=y[:0])
        return path
    elif kind == "nan_in_xy":
        x = x.copy()
        x[57, 1, 1, 0] = np.nan
        np.savez(path, x=x, y=y)
        return path
    np.savez(path, **four)
    return path


DEFECTS = {
    "out_of_range": "y_train[5] = 12 is outside the 10 classes (0..9)",
    "float_labels": "y_train[7] = 3.5 is not a whole number",
    "nan_labels": "y_test[4] = nan is not a finite number",
    "string_labels": "y_train holds strings ",
    "one_hot_width": "y_train has rows 5 wide (one-hot?) but output",
    "nan_x": "x_train[10] holds NaN",
    "inf_x": "x_test[2] holds Inf",
    "string_x": "x_train holds strings, not numbers",
    "pickled": "array 'y_train' holds pickled Python objects",
    "npy": "is a single .npy array of shape [120, 8, 8, 1]",
    "counts_xy": "x has 120 samples but y has 117",
    "empty_xy": "the data is empty",
    "nan_in_xy": "x[57] (in the ",  # the index in the user's unsplit x, not in the split
}


@pytest.mark.parametrize("kind", list(DEFECTS))
def test_each_data_defect_is_one_line_before_any_training(models: Path, tmp_path: Path, kind: str) -> None:
    data = _defect(kind, tmp_path / "data.npz")
    out = tmp_path / "out"
    done = run_cli("compress", str(models / "cnn.keras"), "-o", str(out), "--data", str(data), "--quantize", "dynamic")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: "), done.stderr[-2000:]
    assert DEFECTS[kind] in lines[0]
    assert "; " in lines[0]  # the problem, then the fix
    assert not out.exists() and not (tmp_path / "results.db").exists()


def test_a_stated_task_that_cannot_fit_the_output_is_one_line(models: Path, tmp_path: Path) -> None:
    done = run_cli(
        "compress", str(models / "cnn.keras"), "-o", str(tmp_path / "o"), "--data", str(models / "digits.npz"),
        "--quantize", "dynamic", "--task", "binary",
    )  # fmt: skip
    assert done.returncode == 2 and "has 10 units but a binary output has one" in done.stderr
    done = run_cli("compress", "m.keras", "-o", str(tmp_path / "o"), "--data", "d.npz", "--task", "regresion")
    assert done.returncode == 2 and "unknown task 'regresion'" in done.stderr


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("out_of_range", "y_test[5] = 12 is outside the 10 classes"),
        ("negative", "y_test[3] = -1 is negative"),
        ("nan_x", "x_test[10] holds NaN"),
    ],
)
def test_profile_eval_checks_its_data_before_any_board(models: Path, tmp_path: Path, kind: str, message: str) -> None:
    """The same checks (one module) guard profile --eval: the labels against the .tflite's 10 outputs."""
    rng = np.random.default_rng(0)
    x, y = _digits_like(rng, 40)
    if kind == "out_of_range":
        y[5] = 12
    elif kind == "negative":
        y[3] = -1
    else:
        x[10, 0, 0, 0] = np.nan
    np.savez(tmp_path / "eval.npz", x_test=x, y_test=y)
    done = run_cli("profile", str(models / "float.tflite"), "--eval", str(tmp_path / "eval.npz"), "--runs", "5")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "results.db").exists()
