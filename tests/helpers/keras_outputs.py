"""Load models the way `edgeprof compress` does and save their outputs, in a process of its own.

Usage: python -m tests.helpers.keras_outputs DATA.npz OUT_DIR MODEL...   (outputs on the x_test of DATA.npz)
Prints one JSON object: model path -> the load description (and OUT_DIR/<stem>.npy), or the EdgeprofError raised.
"""

import json
import sys
from pathlib import Path

import numpy as np

from edgeprof import _tf
from edgeprof.compress import models
from edgeprof.errors import EdgeprofError


def main(data: str, out: str, *paths: str) -> None:
    _tf.configure_environment()
    x = np.load(data)["x_test"]
    results = {}
    for path in paths:
        try:
            with _tf.quiet_native():
                loaded, info = models.load_model(Path(path))
                np.save(Path(out) / f"{Path(path).stem}.npy", loaded.predict(x, verbose=0))
            results[path] = {**info, "layers": [layer.name for layer in loaded.layers]}
        except EdgeprofError as exc:
            results[path] = {"error": str(exc)}
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
