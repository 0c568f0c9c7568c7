"""``edgeprof results``: labels that tell files apart, comparisons that never pool different models, and messages
that say where they looked."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgeprof
from tests.conftest import run_cli

QUICK = {"runs": 50, "min_seconds": 0.0, "warmup_seconds": 0.0, "idle_seconds": 0.0}


@pytest.fixture(scope="module")
def stored(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two different models, each written as model.tflite in its own folder (as compress writes them), profiled."""
    root = tmp_path_factory.mktemp("results")
    store = root / "results.db"
    for folder, source, threads in (("f32", "float", 1), ("int8", "int8", None), ("f32", "float", None)):
        path = root / folder / "model.tflite"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes((models / f"{source}.tflite").read_bytes())
        edgeprof.profile(path, "local", store=store, threads=threads, **QUICK)
    return store


def test_list_labels_tell_two_model_tflite_files_apart(stored: Path) -> None:
    done = run_cli("results", "list", "--store", str(stored))
    assert done.returncode == 0, done.stderr
    assert "f32/model.tflite" in done.stdout and "int8/model.tflite" in done.stdout


def test_compare_refuses_to_pool_different_models_on_one_side(stored: Path) -> None:
    done = run_cli("results", "compare", "1-2", "3", "--store", str(stored))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "side A (1,2) mixes different models" in lines[0], done.stderr
    assert "f32/model.tflite" in lines[0] and "int8/model.tflite" in lines[0]


def test_compare_writes_conditions_in_words_never_none(stored: Path) -> None:
    done = run_cli("results", "compare", "1", "3", "--store", str(stored))
    assert done.returncode == 0, done.stderr
    assert "None" not in done.stdout
    assert "the runs differ in threads: 1 vs the runtime's default" in done.stdout
    assert "#1 f32/model.tflite" in done.stdout


def test_an_empty_store_says_where_it_looked(tmp_path: Path) -> None:
    store = tmp_path / "nothing-here.db"
    done = run_cli("results", "list", "--store", str(store))
    assert done.returncode == 0
    assert f"no runs stored yet in {store}" in done.stdout and "--store" in done.stdout
