"""Small real searches for tests/test_search.py, in one process (TensorFlow loads once, the float32 baseline is
exported once and reused by every study of the store).

Usage: python -m tests.helpers.search_runs MODELS_DIR OUT_DIR
Reads MODELS_DIR/cnn.keras and digits.npz (tests/helpers/make_models.py); writes OUT_DIR/results.db (the store the
studies live in), OUT_DIR/<study>/ (their models) and OUT_DIR/runs.json (each study's result and wall time).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgeprof.profile import ProfileOptions
from edgeprof.search import search

#: Short measurements: 20 inferences a process, no idle window. Enough for compare's process-level test.
QUICK = ProfileOptions(runs=20, min_seconds=0.0, warmup_seconds=0.0, warmup_runs=1, idle_seconds=0.0)

PTQ = """
[[step]]
kind = "quantize"
mode = ["dynamic", "int8", "float16"]
"""

PRUNE_PTQ = """
[[step]]
kind = "prune"
optional = true
sparsity = [0.5, 0.8]
epochs = 1

[[step]]
kind = "quantize"
mode = ["dynamic", "int8"]
"""

PRUNE80_PTQ = """
[[step]]
kind = "prune"
optional = true
sparsity = [0.8]
epochs = 1

[[step]]
kind = "quantize"
mode = ["dynamic", "int8"]
"""

BUDGET = """
[limits]
gzip_kib = 18.0
"""

STUDIES = {
    # every distinct recipe once; constraints from --max-drop and a budget (float16 is over its gzip limit)
    "grid": {
        "space": PTQ,
        "sampler": "grid",
        "trials": 10,
        "objectives": "accuracy_drop,median_ms,gzip_kib",
        "max_drop": 1.0,
        "budget": BUDGET,
    },
    "tpe": {"space": PRUNE_PTQ, "sampler": "tpe", "trials": 3},
    "nsga2": {
        "space": PRUNE80_PTQ,
        "sampler": "nsga2",
        "trials": 3,
        "max_drop": 1.0,
        "objectives": "accuracy_drop,median_ms,gzip_kib",
    },
}


def main(models: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.db"
    found = {}
    for name, spec in STUDIES.items():
        space = out / f"{name}.toml"
        space.write_text(spec["space"])
        budget = None
        if "budget" in spec:
            budget = out / f"{name}-budget.toml"
            budget.write_text(spec["budget"])
        started = time.perf_counter()
        said: list[str] = []
        result = search(
            models / "cnn.keras",
            models / "digits.npz",
            space=space,
            sampler=spec["sampler"],
            trials=spec["trials"],
            objectives=spec.get("objectives"),
            max_drop=spec.get("max_drop"),
            budget=budget,
            study=name,
            out=out / name,
            store=store,
            repeat=2,
            options=QUICK,
            say=lambda msg, said=said: (said.append(msg), print(msg, file=sys.stderr, flush=True)),
        )
        found[name] = {"result": result.to_dict(), "seconds": time.perf_counter() - started, "said": said}
    (out / "runs.json").write_text(json.dumps(found, indent=1, default=str))
    return found


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
