"""Runtime compatibility tables: parsing runtime names, and that the tables agree with the real runtimes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.tflite import compat, parse
from tests.helpers.runtime_venv import runtime_python


@pytest.mark.parametrize(
    ("text", "family", "version"),
    [
        ("litert-2.3", "litert", "2.3.0"),
        ("ai-edge-litert==2.1", "litert", "2.1.0"),
        ("tflite-runtime-2.14", "tflite-runtime", "2.14.0"),
        ("tflite_runtime-2.14.0", "tflite-runtime", "2.14.0"),
        ("tensorflow-2.21", "tensorflow", "2.21.0"),
        ("tensorflow", "tensorflow", "2.21.0"),  # no version: newest known
        ("litert-9.9", "litert", "9.9"),  # unknown release: kept as given
    ],
)
def test_parse_runtime(text: str, family: str, version: str) -> None:
    assert compat.parse_runtime(text) == compat.RuntimeSpec(family, version)


def test_unknown_runtimes_are_refused_with_the_known_ones_named(models: Path) -> None:
    with pytest.raises(EdgeprofError, match=r"unknown runtime 'onnxruntime-1\.2'"):
        compat.parse_runtime("onnxruntime-1.2")
    model = parse((models / "float.tflite").read_bytes())
    with pytest.raises(EdgeprofError, match=r"no operator table for litert-9\.9.*litert-2\.3\.0"):
        compat.unsupported_ops(model, "litert-9.9")


def test_known_runtimes_have_provenance_and_order() -> None:
    keys = [str(r) for r in compat.KNOWN_RUNTIMES]
    assert {"litert-2.3.0", "tflite-runtime-2.14.0", "tensorflow-2.21.0"} <= set(keys)
    assert all(key in compat.PROVENANCE for key in keys)
    litert = [r.version_tuple for r in compat.KNOWN_RUNTIMES if r.family == "litert"]
    assert litert == sorted(litert)


def test_dynamic_range_fully_connected_v12_is_flagged_for_tflite_runtime_2_14(models: Path) -> None:
    dynamic = parse((models / "dynamic.tflite").read_bytes())
    issues = compat.unsupported_ops(dynamic, "tflite-runtime-2.14")
    assert [(i.opcode.name, i.opcode.version, i.max_version) for i in issues] == [("FULLY_CONNECTED", 12, 10)]
    assert "tflite-runtime 2.14.0" in issues[0].reason
    assert compat.unsupported_ops(dynamic, "litert-2.3") == []
    loaders = compat.oldest_loaders(dynamic)
    assert loaders["tflite-runtime"] is None
    assert loaders["litert"] is not None
    # Negative control: the int8 model of the same network loads everywhere we know.
    int8 = parse((models / "int8.tflite").read_bytes())
    assert compat.unsupported_ops(int8, "tflite-runtime-2.14") == []
    assert compat.oldest_loaders(int8) == {
        "litert": compat.KNOWN_RUNTIMES[0].version,
        "tflite-runtime": "2.14.0",
        "tensorflow": "2.21.0",
    }


def _probe_table(python: str, family: str) -> dict[str, dict]:
    return compat.render([compat.probe(python, family)])


@pytest.mark.parametrize("family", ["litert", "tflite-runtime"])
def test_the_table_matches_the_real_runtime(family: str) -> None:
    """Re-probe the installed release: every (operator, version) the table lists loads, and nothing else does."""
    python = runtime_python() if family == "tflite-runtime" else sys.executable
    measured = _probe_table(python, family)
    ((key, entry),) = measured.items()
    assert key in compat.PROVENANCE, f"{key} is not in the table"
    assert entry["ops"] == compat._MEASURED[key]["ops"]


def test_the_real_tflite_runtime_refuses_exactly_where_the_table_says(tmp_path: Path, models: Path) -> None:
    python = runtime_python()
    code = (
        "import sys\nfrom tflite_runtime.interpreter import Interpreter\n"
        "try:\n    Interpreter(model_path=sys.argv[1]); print('loaded')\n"
        "except Exception as e:\n    print('refused', str(e).splitlines()[0])\n"
    )
    answers = {}
    for name in ("float", "dynamic", "int8", "float16"):
        done = subprocess.run([python, "-c", code, str(models / f"{name}.tflite")], capture_output=True, text=True)
        answers[name] = done.stdout.strip()
        predicted = compat.unsupported_ops(parse((models / f"{name}.tflite").read_bytes()), "tflite-runtime-2.14")
        assert answers[name].startswith("loaded") == (not predicted), (name, answers[name], predicted)
    assert "FULLY_CONNECTED' version '12'" in answers["dynamic"]
    json.dumps(answers)
