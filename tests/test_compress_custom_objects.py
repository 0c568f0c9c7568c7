"""Models with custom layers: the real MLPerf Tiny TENet (MultiScaleTemporalConvolution, defined in the package's
tenet.py) through the CLI and the Python API, and a Lambda saved by another Python.

The real keyword_spotting_on_off_v3.h5 (306k parameters, 264 layers) takes about a minute per TFLite conversion on
this machine, so it is loaded (to prove each way of passing its code) and the full pipeline runs on a small TENet
built by the same tenet.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprof.tflite import parse
from tests.conftest import run_cli
from tests.helpers.compress_jobs import Run, run_jobs

pytestmark = pytest.mark.slow

LAYER = "MultiScaleTemporalConvolution"
KWS = "keyword_spotting_on_off_v3/keyword_spotting_on_off_v3.h5"


@pytest.fixture(scope="module")
def api(real_models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The Python API jobs, in one process; the first builds the small TENet (tenet.h5, digits_tenet.npz) the
    other jobs, and the CLI test, compress."""
    tmp = tmp_path_factory.mktemp("api")
    python = str(real_models / "python")
    model, data = str(tmp / "build" / "tenet.h5"), str(tmp / "build" / "digits_tenet.npz")
    dynamic = {"step": [{"kind": "quantize", "mode": "dynamic"}]}
    jobs = {
        "build": {"case": "build_tenet", "python": python},
        # A step that rebuilds the model from its config needs the layer class: the model object's own is used.
        "object": {
            "case": "model_object",
            "model": model,
            "data": data,
            "python": python,
            "recipe": {"step": [{"kind": "lowrank", "rank": 8, "layers": ["pointwise_expand*"], "epochs": 1}]},
        },
        # compress(path, custom_objects={name: class}): loads, and pruning leaves the layers TF-MOT cannot prune as
        # they are and names them (the step took them by default; chosen ones would stop the run).
        "prune": {
            "case": "custom_objects_dict",
            "model": model,
            "data": data,
            "python": python,
            "recipe": {"step": [{"kind": "prune", "sparsity": 0.5, "epochs": 1}]},
        },
        "no_such_name": {
            "case": "custom_objects_specs",
            "model": model,
            "data": data,
            "custom_objects": [f"{python}/tenet.py:Nope"],
            "recipe": dynamic,
        },
        "lambda": {
            "model": str(real_models / "fingerprint_signature_generator/fingerprint_signature_generator.siamese.h5"),
            "data": data,
            "recipe": dynamic,
        },
    }
    runs = run_jobs(tmp, jobs, runner="tests.helpers.custom_runs")
    assert runs["build"].ok, runs["build"].error
    return runs


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("edgeprof: error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_custom_layer_without_its_code_is_one_line_naming_it_and_both_ways(real_models: Path, tmp_path: Path) -> None:
    done = run_cli("compress", str(real_models / KWS), "-o", str(tmp_path / "out"), "--data", "builtin:digits")
    line = _one_line(done)
    assert f"uses the custom layer '{LAYER}'" in line
    assert "--custom-objects module:attr" in line and "pass the model object" in line
    assert not (tmp_path / "out").exists()


def test_the_real_file_loads_with_a_module_dict_found_beside_the_model(real_models: Path, tmp_path: Path) -> None:
    beside = tmp_path / "model"
    beside.mkdir()
    shutil.copy(real_models / KWS, beside / "kws.h5")
    shutil.copy(real_models / "python" / "tenet.py", beside)
    (beside / "my_layers.py").write_text(f"from tenet import {LAYER}\n\nCUSTOM_OBJECTS = {{'{LAYER}': {LAYER}}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_cli(
        "compress",
        str(beside / "kws.h5"),
        "-o",
        str(tmp_path / "out"),
        "--data",
        "builtin:digits",
        "--custom-objects",
        "my_layers:CUSTOM_OBJECTS",
        cwd=elsewhere,
    )
    # The model (98×1×104 spectrograms) was loaded; what stops it now is that the digits do not fit it.
    assert "takes inputs of shape [98, 1, 104]" in _one_line(done)


def test_a_custom_layer_model_through_the_cli_to_int8(api: dict[str, Run], real_models: Path, tmp_path: Path) -> None:
    """module:class, the module found in the current folder."""
    tenet = api["build"].out
    out = tmp_path / "out"
    done = run_cli(
        "compress",
        str(tenet / "tenet.h5"),
        "-o",
        str(out),
        "--data",
        str(tenet / "digits_tenet.npz"),
        "--quantize",
        "int8",
        "--custom-objects",
        f"tenet:{LAYER}",
        "--json",
        cwd=real_models / "python",
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    (used,) = manifest["source"]["custom_objects"]
    assert used["spec"] == f"tenet:{LAYER}" and used["names"] == [LAYER]
    assert Path(used["module_file"]).resolve() == (real_models / "python" / "tenet.py").resolve()
    model = parse((out / "model.tflite").read_bytes())
    assert model.main.tensors[model.main.inputs[0]].shape == (1, 8, 1, 8)
    assert "INT8" in manifest["tflite"]["tensor_types"]
    source, tflite = manifest["source"]["metrics"]["accuracy"], manifest["tflite"]["metrics"]["accuracy"]
    assert source > 0.9 and tflite > source - 0.03, (source, tflite)


def test_a_model_object_with_custom_layers_goes_through_a_step_that_rebuilds_it(api: dict[str, Run]) -> None:
    status = api["object"].status
    assert status["ok"], status
    assert status["custom_objects"] == [{"names": [LAYER], "from": "model object"}]
    assert {name: layer["rank"] for name, layer in status["effect"]["layers"].items()} == {
        "pointwise_expand_conv-0": 8,
        "pointwise_expand_conv-1": 8,
    }


def test_custom_objects_in_the_api_and_pruning_names_the_layer_tfmot_cannot_prune(api: dict[str, Run]) -> None:
    prune = api["prune"].manifest["steps"][0]
    assert "mtconv-0" in prune["effect"]["skipped"], prune["effect"]
    assert "mtconv-0" in prune["effect_text"] and LAYER in prune["effect"]["skipped"]["mtconv-0"] + prune["effect_text"]


def test_a_name_the_module_lacks_is_one_line_listing_its_layers(api: dict[str, Run]) -> None:
    error = api["no_such_name"].error
    assert "tenet.py has no 'Nope'" in error and f"its layers: {LAYER}" in error


def test_a_lambda_saved_by_another_python_is_one_line_with_the_fix(api: dict[str, Run]) -> None:
    error = api["lambda"].error
    assert "Lambda layer 'lambda' holds Python bytecode saved by another Python version" in error
    assert "bad marshal data" in error and "model.load_weights" in error and "edgeprof.compress()" in error
    assert "\n" not in error
