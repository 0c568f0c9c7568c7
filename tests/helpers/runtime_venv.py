"""A real tflite-runtime (or other LiteRT release) in a throwaway venv of its own, created once and cached.

tflite-runtime 2.14.0, the last release, needs numpy < 2 and so cannot live in the project's venv. Tests that need
it call :func:`runtime_python`; when the venv cannot be built (PyPI unreachable) they are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("EDGEPROF_TEST_VENVS", Path.home() / ".cache" / "edgeprof-test-venvs"))


def runtime_python(package: str = "tflite-runtime==2.14.0", extra: tuple[str, ...] = ("numpy<2",)) -> str:
    """The python of a venv holding ``package``; skips the calling test when it cannot be installed."""
    name = package.replace("==", "-").replace("<", "lt").replace(">", "gt")
    venv = CACHE / name
    python = venv / "bin" / "python"
    stamp = venv / ".ready"
    if stamp.exists() and python.exists():
        return str(python)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", package, *extra],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot install {package} from PyPI here: {done.stderr.strip().splitlines()[-1:]}")
    stamp.write_text(package + "\n")
    return str(python)


RUN_MODEL = r"""
import json, sys
import numpy as np
from tflite_runtime.interpreter import Interpreter
model, inputs = sys.argv[1], sys.argv[2]
interpreter = Interpreter(model_path=model)
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
x = np.load(inputs).astype(np.float32)
outputs = []
for sample in x:
    value = sample[None]
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        value = np.clip(np.round(value / scale + zero), -128, 127).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], value)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])[0].astype(np.float32)
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y - zero) * scale
    outputs.append(y)
np.save(sys.argv[3], np.stack(outputs))
print(json.dumps({"ok": True}))
"""


def run_in_tflite_runtime(python: str, model: Path, x_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Load ``model`` in tflite_runtime's Interpreter and run every sample of ``x_path``; outputs to ``out``."""
    return subprocess.run(
        [python, "-c", RUN_MODEL, str(model), str(x_path), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
