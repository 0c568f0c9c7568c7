"""The light install's venv (``scripts/testbed/light_venv.py``): edgeprof's base dependencies, no TensorFlow.

``scripts/services/light-venv.sh`` builds it once and exports ``EDGEPROF_TEST_LIGHT_PYTHON``; without it this helper
builds it into the test-venv cache itself, and skips the calling test with the reason when that fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EDGEPROF_TEST_VENVS", Path.home() / ".cache" / "edgeprof-test-venvs"))


def light_python() -> str:
    """The python of a bare venv with the light install's dependencies."""
    if os.environ.get("EDGEPROF_TEST_LIGHT_PYTHON"):
        return os.environ["EDGEPROF_TEST_LIGHT_PYTHON"]
    if os.environ.get("EDGEPROF_TEST_LIGHT_PYTHON_SKIP"):
        pytest.skip(os.environ["EDGEPROF_TEST_LIGHT_PYTHON_SKIP"])
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/testbed/light_venv.py"), str(CACHE)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.skip(f"the light venv could not be built: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip().splitlines()[-1]
