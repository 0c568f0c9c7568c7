"""The Python API as the README documents it: from the top-level package, in any import order, light to import.

``edgeprof.compress`` is both the compression sub-package and the function users call; importing the sub-package
must never turn ``edgeprof.compress(...)`` into "'module' object is not callable" (or a RecursionError).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import edgeprof
from edgeprof.compress import pipeline, recipe
from tests.helpers.light_venv import light_python

ROOT = Path(__file__).resolve().parents[1]

# Each snippet is a way a user (or a library) may have imported edgeprof before calling it.
IMPORT_ORDERS = {
    "import edgeprof": "import edgeprof",
    "sub-package first": "from edgeprof.compress import Recipe, PruneStep\nimport edgeprof",
    "README order": "import edgeprof\nfrom edgeprof.compress import Recipe, PruneStep, QuantizeStep",
    "a step module first": "import edgeprof.compress.recipe\nimport edgeprof",
    "pipeline first": "from edgeprof.compress.pipeline import compress as c\nimport edgeprof",
    "profile module": "import edgeprof.profile\nimport edgeprof\nfrom edgeprof.compress import Recipe",
    "star import": "from edgeprof import *\nimport edgeprof",
    "compress attribute first": "import edgeprof\nedgeprof.compress\nimport edgeprof.compress.pipeline",
}

CHECK = """
import sys
import edgeprof
from edgeprof.errors import DataError, ModelError

assert "tensorflow" not in sys.modules, "importing edgeprof loaded TensorFlow"
assert edgeprof.compress is sys.modules["edgeprof.compress"], edgeprof.compress
assert edgeprof.Recipe is sys.modules["edgeprof.compress.recipe"].Recipe
compress_module = sys.modules["edgeprof.compress"]
recipe = edgeprof.Recipe(steps=[compress_module.PruneStep(sparsity=0.5), compress_module.QuantizeStep(mode="int8")])
assert recipe.describe() == "prune 50% → quantize int8", recipe.describe()
# Calling it reaches compress(): without data it refuses with its own line, before TensorFlow is needed.
try:
    edgeprof.compress("model.keras", recipe)
except DataError as exc:
    assert "compress needs data" in str(exc), exc
else:
    raise AssertionError("edgeprof.compress() without data did not refuse")
assert "tensorflow" not in sys.modules
for name in ("PruneStep", "ClusterStep", "QuantizeStep", "L1Step", "LowRankStep", "DistillStep", "Training"):
    assert getattr(edgeprof, name) is getattr(compress_module, name), name
assert callable(edgeprof.profile) and edgeprof.profile.__module__ == "edgeprof.profile"
print("ok")
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("order", list(IMPORT_ORDERS), ids=list(IMPORT_ORDERS))
def test_the_top_level_api_works_in_every_import_order(order: str, tmp_path: Path) -> None:
    done = _python(IMPORT_ORDERS[order] + "\n" + CHECK, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_star_import_gives_every_documented_name(tmp_path: Path) -> None:
    done = _python("import json\nfrom edgeprof import *\nprint(json.dumps(dir()))", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    names = set(json.loads(done.stdout))
    assert set(edgeprof.__all__) - {"__version__"} <= names
    assert {"compress", "profile", "Recipe", "Store", "open_store", "profile_fleet", "PruneStep"} <= names


def test_every_step_class_is_exported_from_the_top_level() -> None:
    steps = {cls.__name__ for cls in recipe.STEP_TYPES.values()}
    steps |= {n for n in edgeprof.compress.__all__ if n.endswith("Step")}
    assert steps <= set(edgeprof.__all__)
    for name in steps:
        assert getattr(edgeprof, name) is getattr(edgeprof.compress, name)


def test_compress_has_the_function_s_signature_and_docs() -> None:
    assert inspect.signature(edgeprof.compress) == inspect.signature(pipeline.compress)
    assert "callable" in (edgeprof.compress.__doc__ or "")
    assert pipeline.compress.__doc__ and edgeprof.compress.compress is pipeline.compress
    hints = inspect.get_annotations(pipeline.compress, eval_str=True)
    assert hints["return"] is pipeline.CompressionResult


@pytest.fixture(scope="module")
def light_install(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """This checkout's wheel in a bare venv holding only the base dependencies: no TensorFlow, tf-keras or TF-MOT."""
    python = light_python()
    out = tmp_path_factory.mktemp("light")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(out.glob("edgeprof-*.whl"))
    site = out / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return python, {**env, "PYTHONPATH": str(site)}


def test_the_light_install_says_how_to_get_compression(
    light_install: tuple[str, dict[str, str]], models: Path, tmp_path: Path
) -> None:
    python, env = light_install
    missing = subprocess.run([python, "-c", "import tensorflow"], capture_output=True, env=env)
    assert missing.returncode != 0, "the light venv has TensorFlow"
    api = textwrap.dedent(
        """
        import sys
        import edgeprof
        from edgeprof.compress import Recipe, QuantizeStep
        assert "tensorflow" not in sys.modules
        try:
            edgeprof.compress(sys.argv[1], Recipe(steps=[QuantizeStep()]), "builtin:digits", "out")
        except edgeprof.EdgeprofError as exc:
            print(exc.problem)
            print(exc.fix)
        """
    )
    done = subprocess.run(
        [python, "-c", api, str(models / "cnn.keras")], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    problem, fix = done.stdout.strip().splitlines()
    assert "TensorFlow is not installed" in problem and fix == "pip install 'edgeprof[compress]'"
    for args in (["compress", str(models / "cnn.keras"), "-o", "out", "--data", "builtin:digits"], ["demo"]):
        cli = subprocess.run([python, "-m", "edgeprof", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert cli.returncode == 2, cli.stderr[-2000:]
        errors = [line for line in cli.stderr.splitlines() if line.startswith("edgeprof: error:")]
        assert errors == ["edgeprof: error: " + problem + "; " + fix], cli.stderr
        assert "Traceback" not in cli.stderr and cli.stderr.strip().endswith(fix), cli.stderr
    # Everything that needs no TensorFlow works: profiling and inspecting a LiteRT model.
    model = tmp_path / "m.tflite"
    model.write_bytes((models / "int8.tflite").read_bytes())
    for args in (["profile", "m.tflite", "--runs", "20", "--min-seconds", "0"], ["inspect", "m.tflite"]):
        ok = subprocess.run(
            [python, "-m", "edgeprof", *args],
            capture_output=True,
            text=True,
            env={**env, "EDGEPROF_STORE": str(tmp_path / "r.db")},
            cwd=tmp_path,
        )
        assert ok.returncode == 0, ok.stderr[-2000:]


def test_the_light_install_has_no_mlflow_and_says_how_to_get_it(
    light_install: tuple[str, dict[str, str]], models: Path, tmp_path: Path
) -> None:
    """MLflow is an extra (edgeprof[mlflow]): the default install stays light, and --mlflow without it keeps the
    run and says what to install."""
    python, env = light_install
    assert subprocess.run([python, "-c", "import mlflow"], capture_output=True, env=env).returncode != 0
    env = {**env, "EDGEPROF_STORE": str(tmp_path / "r.db")}
    done = subprocess.run(
        [python, "-m", "edgeprof", "profile", str(models / "int8.tflite"), "--runs", "5", "--min-seconds", "0",
         "--mlflow", "http://127.0.0.1:9"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "stored as profile run 1" in done.stdout, done.stderr[-2000:]
    assert [line for line in done.stderr.splitlines() if line.startswith("edgeprof:")] == [
        "edgeprof: error: --mlflow needs the MLflow client, which is not installed; pip install 'edgeprof[mlflow]'"
    ]
