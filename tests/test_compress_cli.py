"""`edgeprof compress` from the command line: real TF-MOT training, real export, real evaluation in LiteRT."""

from __future__ import annotations

import json
from pathlib import Path

from edgeprof.modelfile import open_tflite
from tests.conftest import run_cli


def test_prune_cluster_int8_from_flags(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "compress",
        str(models / "cnn.keras"),
        "-o",
        str(out),
        "--data",
        str(models / "digits.npz"),
        "--prune",
        "0.75",
        "--cluster",
        "8",
        "--quantize",
        "int8",
        "--epochs",
        "3",
    )
    assert done.returncode == 0, done.stderr
    assert "step 1/3" in done.stderr and "batches" not in done.stderr and "\x1b[" not in done.stderr  # no bars here
    manifest = json.loads((out / "manifest.json").read_text())
    info, _ = open_tflite(out / "model.tflite")
    assert manifest["tflite"]["sha256"] == info.sha256
    assert manifest["tflite"]["size_bytes"] == info.size_bytes
    assert manifest["tflite"]["gzip_bytes"] == info.gzip_bytes
    # Pruning reached its target on every pruned kernel, and clustering kept it.
    prune = manifest["steps"][0]["effect"]
    assert prune["reached_sparsity"] >= 0.74
    kernels = [layer for layer in manifest["layers"] if "sparsity" in layer]
    assert all(layer["sparsity"] >= 0.7 for layer in kernels), kernels
    # At most 8 cluster values per kernel, plus the preserved zero.
    assert all(layer["unique_values"] <= 9 for layer in kernels), kernels
    assert manifest["tflite"]["tensor_types"].get("INT8", 0) > 0
    assert manifest["sizes"]["gzip_ratio"] > 3
    for side in ("source", "tflite"):
        metrics = manifest[side]["metrics"] if side == "source" else manifest["tflite"]["metrics"]
        assert set(metrics) >= {"accuracy", "precision_macro", "recall_macro", "f1_macro"}
    assert manifest["tflite"]["metrics"]["accuracy"] > 0.85
    assert manifest["source"]["sha256"]
    assert "prune 75%" in done.stdout and "unique values" in done.stdout


def test_compress_refuses_a_tflite_source(models: Path, tmp_path: Path) -> None:
    done = run_cli(
        "compress",
        str(models / "float.tflite"),
        "-o",
        str(tmp_path / "o"),
        "--data",
        str(models / "digits.npz"),
        "--quantize",
        "dynamic",
    )
    assert done.returncode == 2
    assert "already a TFLite model" in done.stderr


def test_compress_refuses_mismatched_data(models: Path, tmp_path: Path) -> None:
    import numpy as np

    data = tmp_path / "wrong.npz"
    np.savez(data, x=np.zeros((50, 28, 28, 1), "float32"), y=np.arange(50) % 10)
    done = run_cli(
        "compress", str(models / "cnn.keras"), "-o", str(tmp_path / "o"), "--data", str(data), "--quantize", "dynamic"
    )
    assert done.returncode == 2
    assert "shape [8, 8, 1]" in done.stderr and "[28, 28, 1]" in done.stderr


def test_recipe_file_refuses_step_flags_it_would_ignore(models: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[step]]\nkind = "quantize"\nmode = "int8"\n')
    for flag in (["--representative-samples", "50"], ["--quantize", "dynamic"], ["--epochs", "1"]):
        done = run_cli("compress", str(models / "cnn.keras"), "-o", str(tmp_path / "o"), "--data",
                       str(models / "digits.npz"), "--recipe", str(recipe), *flag)  # fmt: skip
        assert done.returncode == 2, flag
        assert "cannot be combined" in done.stderr
    assert not (tmp_path / "o").exists()


def test_qat_from_flags_prints_its_summary(models: Path, tmp_path: Path) -> None:
    # The QAT step's effect lists the layers it wrapped (a list, where the channels step's is a dict per layer):
    # the summary's per-layer structure table must read both, not end a finished run with an AttributeError.
    out = tmp_path / "out"
    done = run_cli(
        "compress", str(models / "cnn.keras"), "-o", str(out), "--data", str(models / "digits.npz"),
        "--quantize", "qat", "--epochs", "1",
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "quantize qat" in done.stdout and "headline:" in done.stdout, done.stdout
    assert (out / "model.tflite").is_file()
