"""Load a model the way `edgeprof compress` does and save its outputs, in a process of its own.

Usage: python -m tests.helpers.keras_outputs MODEL X.npz OUT.npy   (x_test of the .npz)
Prints one JSON line: the load description, or the EdgeprofError it raised.
"""

import json
import sys
from pathlib import Path

import numpy as np

from edgeprof import _tf
from edgeprof.compress import models
from edgeprof.errors import EdgeprofError


def main(model: str, data: str, out: str) -> None:
    _tf.configure_environment()
    try:
        with _tf.quiet_native():
            loaded, info = models.load_model(Path(model))
            np.save(out, loaded.predict(np.load(data)["x_test"], verbose=0))
    except EdgeprofError as exc:
        print(json.dumps({"error": str(exc)}))
        return
    print(json.dumps({**info, "layers": [layer.name for layer in loaded.layers]}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
