"""Run several `compress()` jobs in one process (TensorFlow is imported once), for the compression tests.

Usage: python -m tests.helpers.compress_runs JOBS.json
JOBS.json: [{"name", "model", "recipe": {... as in a TOML recipe ...}, "data", "out"}, {"name", "case", ...}]
Each job's manifest lands in its "out" folder; this prints one JSON object: name -> {"ok": bool, "error": str,
...case results}. "case" jobs run the in-memory checks below, which need a Python model object.
"""

import hashlib
import json
import sys
from pathlib import Path

from edgeprof import _tf
from edgeprof.compress import Recipe, compress
from edgeprof.errors import EdgeprofError


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()


def case_not_mutated(job: dict) -> dict:
    """compress() on an in-memory model: the user's object keeps its weights, layers and wrapper-free graph."""
    keras = _tf.keras()
    model = keras.models.load_model(job["model"], compile=False)
    before = _weights_digest(model)
    layers_before = [type(layer).__name__ for layer in model.layers]
    result = compress(model, Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None)
    return {
        "weights_unchanged": _weights_digest(model) == before,
        "layers_unchanged": [type(layer).__name__ for layer in model.layers] == layers_before,
        "gzip_ratio": result.manifest["sizes"]["gzip_ratio"],
    }


def case_subclassed(job: dict) -> dict:
    keras = _tf.keras()

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.flat = keras.layers.Flatten()
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.flat(x))

    model = Net()
    model.build((None, 8, 8, 1))
    compress(model, Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None)
    return {}


class Scale(_tf.keras().layers.Layer):
    """A custom layer with a weight: TF-MOT has no idea how to prune or quantise it."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


def case_custom_layer(job: dict) -> dict:
    keras = _tf.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            Scale(name="my_scale"),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    from edgeprof.data import load_data

    data = load_data(job["data"])
    model.fit(data.x_train, data.y_train, epochs=3, verbose=0)
    result = compress(model, Recipe.from_dict(job["recipe"]), data, job["out"], store=None)
    effect = result.manifest["steps"][0]["effect"]
    return {"sparsity": effect["layers"], "skipped": effect.get("skipped", {}), "text": effect["text"]}


def case_no_workaround(job: dict) -> dict:
    """Without the converter workaround, a runtime that lacks an op version makes export stop, naming it."""
    from edgeprof.compress import export

    export.WORKAROUNDS.clear()
    compress(job["model"], Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None)
    return {}


def case_savedmodel(job: dict) -> dict:
    """A SavedModel directory written by tf_keras, compressed from its path."""
    keras = _tf.keras()
    saved = Path(job["out"]) / "savedmodel"
    keras.models.load_model(job["model"], compile=False).save(saved, save_format="tf")
    result = compress(str(saved), Recipe.from_dict(job["recipe"]), job["data"], Path(job["out"]) / "out", store=None)
    return {"kind": result.manifest["source"]["kind"], "accuracy": result.manifest["source"]["metrics"]["accuracy"]}


def case_student_file(job: dict) -> dict:
    """distill with the student given as a Keras file rather than module:function."""
    from tests.helpers.students import tiny_mlp

    student = Path(job["out"]) / "student.keras"
    student.parent.mkdir(parents=True, exist_ok=True)
    tiny_mlp((8, 8, 1), 10).save(student)
    recipe = Recipe.from_dict({"step": [{"kind": "distill", "student": str(student), "batch_size": 32}]})
    result = compress(job["model"], recipe, job["data"], Path(job["out"]) / "out", store=None)
    effect = result.manifest["steps"][0]["effect"]
    return {"student_params": effect["student_params"], "accuracy": result.manifest["tflite"]["metrics"]["accuracy"]}


CASES = {
    f.__name__[5:]: f
    for f in (
        case_not_mutated,
        case_subclassed,
        case_custom_layer,
        case_no_workaround,
        case_savedmodel,
        case_student_file,
    )
}


def main(jobs_file: str) -> None:
    jobs = json.loads(Path(jobs_file).read_text())
    results = {}
    for job in jobs:
        try:
            with _tf.quiet_native():
                if "case" in job:
                    extra = CASES[job["case"]](job)
                else:
                    compress(job["model"], Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None)
                    extra = {}
            results[job["name"]] = {"ok": True, **extra}
        except EdgeprofError as exc:
            results[job["name"]] = {"ok": False, "error": str(exc)}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
