"""Small models of every task, and compress jobs on them and on MLPerf Tiny's autoencoder, in one process.

Usage: python -m tests.helpers.task_models OUT_DIR AD_MODEL
Builds (trained for real on tests.helpers.task_data) regression.keras, binary.keras, multilabel.keras and
multi_output.keras with their .npz data in OUT_DIR, runs JOBS through compress() into OUT_DIR/<job>/ and prints one
JSON object: job name -> {"ok": bool, "error": str}.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from edgeprof import _tf
from edgeprof.compress import Recipe, compress
from edgeprof.errors import EdgeprofError
from tests.helpers.task_data import anomaly_detection, tabular

PRUNE = {"kind": "prune", "sparsity": 0.5, "epochs": 2}
DYNAMIC = {"kind": "quantize", "mode": "dynamic"}
INT8 = {"kind": "quantize", "mode": "int8", "representative_samples": 50}


def _split(out: Path, name: str, x: np.ndarray, targets: dict[str, np.ndarray]) -> Path:
    arrays = {"x_train": x[:300], "x_test": x[300:]}
    for key, y in targets.items():
        arrays[f"y_train{key}"], arrays[f"y_test{key}"] = y[:300], y[300:]
    path = out / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def build(out: Path) -> None:
    """Models trained with their task's own loss, so that a wrong fine-tuning loss shows in their figures."""
    keras = _tf.keras()
    x, linear = tabular()
    regression_y = linear[:, 0] + 0.05 * np.random.default_rng(1).normal(size=len(x)).astype(np.float32)
    binary_y = (linear[:, 1] > 0).astype(np.int64)
    multilabel_y = (linear[:, 2:6] > 0).astype(np.int64)
    classes_y = np.argmax(linear[:, :3], axis=1)
    values_y = linear[:, 5:8]

    def trunk() -> tuple:
        inputs = keras.Input((x.shape[1],))
        return inputs, keras.layers.Dense(32, activation="relu", name="hidden")(inputs)

    specs = {
        "regression": (keras.layers.Dense(1, name="value"), "mse", {"": regression_y}),
        "binary": (keras.layers.Dense(1, activation="sigmoid", name="positive"), "binary_crossentropy", {"": binary_y}),
        "multilabel": (
            keras.layers.Dense(4, activation="sigmoid", name="labels"),
            "binary_crossentropy",
            {"": multilabel_y},
        ),
    }
    for name, (head, loss, targets) in specs.items():
        keras.utils.set_random_seed(0)
        inputs, hidden = trunk()
        model = keras.Model(inputs, head(hidden))
        model.compile(keras.optimizers.Adam(1e-2), loss)
        model.fit(x[:300], targets[""][:300].astype(np.float32), epochs=40, batch_size=32, verbose=0)
        model.save(out / f"{name}.keras")
        _split(out, name, x, targets)
    # Two outputs of the same shape, in an order the TFLite converter does not keep (it sorts them by name).
    keras.utils.set_random_seed(0)
    inputs, hidden = trunk()
    zeta = keras.layers.Dense(3, activation="softmax", name="zeta")(hidden)
    alpha = keras.layers.Dense(3, name="alpha")(hidden)
    model = keras.Model(inputs, [zeta, alpha])
    model.compile(keras.optimizers.Adam(1e-2), ["sparse_categorical_crossentropy", "mse"])
    model.fit(x[:300], [classes_y[:300], values_y[:300]], epochs=40, batch_size=32, verbose=0)
    model.save(out / "multi_output.keras")
    _split(out, "multi_output", x, {"_zeta": classes_y, "_alpha": values_y})


def jobs(out: Path, ad_model: str) -> dict[str, dict]:
    ad_data = str(anomaly_detection(out / "ad.npz"))

    def job(name: str, *steps: dict, data: str | None = None, model: str | None = None, **top: object) -> dict:
        return {
            "model": model or str(out / f"{name}.keras"),
            "data": data or str(out / f"{name}.npz"),
            "recipe": {**top, "step": list(steps)},
        }

    return {
        "ad_int8": job("ad", INT8, model=ad_model, data=ad_data),
        "ad_prune_int8": job("ad", PRUNE, INT8, model=ad_model, data=ad_data),
        "regression": job("regression", PRUNE, DYNAMIC),
        "binary": job("binary", PRUNE, DYNAMIC),
        "multilabel": job("multilabel", PRUNE, DYNAMIC),
        "multi_output": job("multi_output", PRUNE, DYNAMIC),
        "user_functions": job(
            "regression",
            {"kind": "quantize", "mode": "qat", "epochs": 1},
            loss="tests.helpers.task_functions:offset_mse",
            metric="tests.helpers.task_functions:max_abs_error",
        ),
    }


def main(out_dir: str, ad_model: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with _tf.quiet_native():
        build(out)
        for name, job in jobs(out, ad_model).items():
            try:
                with _tf.quiet_native():
                    recipe = Recipe.from_dict(job["recipe"])
                    compress(job["model"], recipe, job["data"], out / name, store=None)
                results[name] = {"ok": True, "data": job["data"]}
            except EdgeprofError as exc:
                results[name] = {"ok": False, "error": str(exc), "data": job["data"]}
    print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    main(*sys.argv[1:])
