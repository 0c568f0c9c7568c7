"""Recipes (TOML and flags), the data forms --data accepts, and the example recipes, each parsed and run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from edgeprof import _toml
from edgeprof.compress import Recipe
from edgeprof.compress.distill import DistillStep
from edgeprof.compress.l1 import L1Step
from edgeprof.compress.lowrank import LowRankStep
from edgeprof.compress.recipe import ClusterStep, PruneStep, QuantizeStep
from edgeprof.data import load_data
from edgeprof.errors import DataError, RecipeError
from tests.conftest import ROOT
from tests.helpers.compress_jobs import run_jobs

EXAMPLES = sorted((ROOT / "examples" / "recipes").glob("*.toml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def test_every_step_kind_parses_from_toml_with_its_training_settings(tmp_path: Path) -> None:
    recipe = Recipe.from_toml(
        _write(
            tmp_path,
            """
seed = 3
runtime = "litert-2.3"
[[step]]
kind = "distill"
student = "pkg.mod:small"
epochs = 5
[[step]]
kind = "lowrank"
rank = 4
[[step]]
kind = "l1"
strength = 1e-3
batch_size = 16
[[step]]
kind = "prune"
structure = "1:4"
frequency = 7
begin_step = 10
end_step = 100
optimizer = "sgd"
[[step]]
kind = "cluster"
clusters = 8
init = "density"
per_channel = true
layers = ["conv*"]
[[step]]
kind = "quantize"
mode = "pcqat"
learning_rate = 1e-5
""",
        )
    )
    kinds = [type(step) for step in recipe.steps]
    assert kinds == [DistillStep, LowRankStep, L1Step, PruneStep, ClusterStep, QuantizeStep]
    assert (recipe.seed, recipe.runtime) == (3, "litert-2.3")
    distill, lowrank, l1, prune, cluster, quantize = recipe.steps
    assert distill.training.epochs == 5 and lowrank.rank == 4 and l1.training.batch_size == 16
    assert distill.training.learning_rate == 2e-3  # the distill default, kept when only epochs is set
    assert (prune.begin_step, prune.end_step, prune.frequency, prune.training.optimizer) == (10, 100, 7, "sgd")
    assert cluster.per_channel and cluster.layers == ["conv*"] and quantize.training.learning_rate == 1e-5
    assert recipe.to_dict()["steps"][3]["structure"] == "1:4"
    assert recipe.describe().endswith("quantize pcqat")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[step]]\nkind = "prune"\nsparsty = 0.5\n', "unknown field(s) sparsty for a prune step"),
        ('[[step]]\nkind = "quantize"\nmode = "int8"\n[[step]]\nkind = "prune"\n', "quantize step must come last"),
        ('[[step]]\nkind = "prune"\nstructure = "4:2"\n', "unknown pruning structure '4:2'"),
        ('[[step]]\nkind = "quantize"\nmode = "dynamic"\nint8_io = true\n', "int8_io needs a full-integer mode"),
        ('[[step]]\nkind = "distill"\n', "a distill step needs a student"),
        ('[[step]]\nkind = "lowrank"\nenergy = 1.5\n', "energy must be in (0, 1]"),
        ('[[step]]\nkind = "quantize"\nmode = "int4"\n', "unknown quantize mode 'int4'"),
        ('[[step]]\nkind = "svd"\n', "unknown step kind 'svd'"),
        ('runtim = "litert-2.3"\n', "unknown top-level key(s) runtim"),
    ],
)
def test_bad_recipes_are_refused_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        Recipe.from_toml(_write(tmp_path, text))
    assert message in str(caught.value)


def test_flags_build_the_common_recipes() -> None:
    recipe = Recipe.from_flags(
        prune=0.5, structure="2:4", cluster=8, quantize="pcqat", epochs=3, int8_io=True, runtime="litert-2.3"
    )
    prune, cluster, quantize = recipe.steps
    assert prune.structure == "2:4" and cluster.preserve_sparsity and quantize.int8_io
    assert all(step.training.epochs == 3 for step in recipe.steps) and recipe.runtime == "litert-2.3"


def test_npz_forms_and_the_reproducible_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 4, 4, 1)), np.repeat(np.arange(4), 50)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    a = load_data(tmp_path / "xy.npz", seed=1)
    b = load_data(tmp_path / "xy.npz", seed=1)
    c = load_data(tmp_path / "xy.npz", seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert (len(a.x_train), len(a.x_test)) == (160, 40)
    assert np.bincount(a.y_test).tolist() == [10, 10, 10, 10]  # stratified
    np.savez(tmp_path / "four.npz", x_train=x[:150], y_train=y[:150], x_test=x[150:], y_test=y[150:])
    four = load_data(tmp_path / "four.npz")
    np.testing.assert_array_equal(four.x_test, x[150:].astype(np.float32))
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(DataError, match="needs x_train, y_train, x_test, y_test"):
        load_data(tmp_path / "bad.npz")


def test_module_function_data_and_the_representative_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def pairs():\n    return np.arange(400.).reshape(100, 4), np.arange(100) % 2\n"
        "def split():\n    return {'x_train': np.ones((30, 4)), 'y_train': np.zeros(30),"
        " 'x_test': np.zeros((10, 4)), 'y_test': np.ones(10)}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pairs = load_data("mydata:pairs", seed=0)
    assert (len(pairs.x_train), len(pairs.x_test)) == (80, 20)
    assert load_data("mydata:split").num_classes == 2
    # The representative dataset is drawn from the training split only, its size as asked (capped at the split).
    sample = pairs.representative(25, seed=0)
    assert len(sample) == 25
    train_rows = {tuple(row) for row in pairs.x_train}
    assert all(tuple(row) in train_rows for row in sample)
    assert not {tuple(row) for row in pairs.x_test} & {tuple(row) for row in sample}
    assert len(pairs.representative(1000)) == 80
    with pytest.raises(DataError, match="cannot import mydata:nothing"):
        load_data("mydata:nothing")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_recipes_parse(path: Path) -> None:
    recipe = Recipe.from_toml(path)
    assert recipe.steps
    assert _toml.loads(path.read_text())  # and they are plain TOML a user can edit


def test_example_recipes_run(models: Path, tmp_path: Path) -> None:
    """Each example, with one epoch per fine-tuning step to keep the suite fast, runs end to end on the test CNN."""
    jobs = {}
    for path in EXAMPLES:
        raw = _toml.loads(path.read_text())
        for step in raw["step"]:
            step["epochs"] = min(step.get("epochs", 1), 1)
            if step["kind"] == "distill":  # a student learns from scratch: it needs a few epochs
                step.update(student="tests.helpers.students:tiny_mlp", epochs=6)
        jobs[path.stem] = {"model": str(models / "cnn.keras"), "data": str(models / "digits.npz"), "recipe": raw}
    runs = run_jobs(tmp_path, copy.deepcopy(jobs))
    for name, run in runs.items():
        assert run.ok, f"{name}: {run.error}"
        manifest = run.manifest
        assert [s["kind"] for s in manifest["steps"]] == [s["kind"] for s in jobs[name]["recipe"]["step"]]
        assert manifest["tflite"]["metrics"]["accuracy"] > 0.6, name
    assert runs["dynamic-tflite-runtime-2.14"].manifest["runtime"]["runtime"] == "tflite-runtime-2.14.0"
