"""Cases for the custom-object, pca and autoencoder tests, run like compress_runs' (one process, TF imported once).

Usage: python -m tests.helpers.custom_runs JOBS.json (see tests.helpers.compress_runs for the format)
"""

import sys
from pathlib import Path

from edgeprof import _tf
from edgeprof.compress import Recipe, compress
from edgeprof.data import load_data
from tests.helpers import compress_runs


def _tenet(job: dict):
    """The MLPerf Tiny package's own module, holding the MultiScaleTemporalConvolution layer."""
    sys.path.insert(0, job["python"])
    import tenet

    return tenet


def _custom(result) -> dict:
    manifest = result.manifest
    return {
        "custom_objects": manifest["source"].get("custom_objects"),
        "accuracy": manifest["tflite"]["metrics"]["accuracy"],
        "source_accuracy": manifest["source"]["metrics"]["accuracy"],
    }


def case_build_tenet(job: dict) -> dict:
    """A TENet (5.4k parameters) built by the package's own tenet.py, trained on the digits read as 8 time steps ×
    8 features: tenet.h5 and digits_tenet.npz (samples shaped (8, 1, 8)) in job["out"]."""
    import numpy as np

    keras = _tf.keras()
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    data = load_data("builtin:digits")
    as_time = {f"x_{s}": getattr(data, f"x_{s}").reshape(-1, 8, 1, 8) for s in ("train", "test")}
    np.savez(out / "digits_tenet.npz", **as_time, y_train=data.y_train, y_test=data.y_test)
    keras.utils.set_random_seed(0)
    model = _tenet(job).TENet(input_shape=(8, 1, 8), classes=10, channels=16, blocks=1, block_depth=2, scales=[5])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(as_time["x_train"], data.y_train, epochs=10, batch_size=32, verbose=0)
    model.save(out / "tenet.h5")
    return {}


def case_custom_objects_dict(job: dict) -> dict:
    """compress(path, custom_objects={name: class}): Keras' own form."""
    layer = _tenet(job).MultiScaleTemporalConvolution
    objects = {"MultiScaleTemporalConvolution": layer}
    result = compress(
        job["model"], Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None, custom_objects=objects
    )
    return _custom(result)


def case_custom_objects_specs(job: dict) -> dict:
    """compress(path, custom_objects=["module:attr", ...])."""
    result = compress(
        job["model"],
        Recipe.from_dict(job["recipe"]),
        job["data"],
        job["out"],
        store=None,
        custom_objects=job["custom_objects"],
    )
    return _custom(result)


def case_model_object(job: dict) -> dict:
    """A model object with custom layers, loaded by the user, through a step that rebuilds it from its config."""
    keras = _tf.keras()
    layer = _tenet(job).MultiScaleTemporalConvolution
    model = keras.models.load_model(
        job["model"], custom_objects={"MultiScaleTemporalConvolution": layer}, compile=False
    )
    result = compress(model, Recipe.from_dict(job["recipe"]), job["data"], job["out"], store=None)
    return {**_custom(result), "effect": result.manifest["steps"][0]["effect"]}


def case_pca_mlp(job: dict) -> dict:
    """A Flatten → Dense 128 → Dense 10 model trained on the digits, saved, then compressed from its file."""
    keras = _tf.keras()
    data = load_data(job["data"])
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    mlp.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    mlp.fit(data.x_train, data.y_train, epochs=10, batch_size=32, verbose=0)
    path = Path(job["out"]) / "mlp.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    mlp.save(path)
    compress(str(path), Recipe.from_dict(job["recipe"]), data, job["out"], store=None)
    return {}


def case_conv_functional(job: dict) -> dict:
    """A functional CNN whose feature maps reach a 1×1 convolution (the autoencoder's convolution path)."""
    keras = _tf.keras()
    data = load_data(job["data"])
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu", name="pointwise")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=5, batch_size=32, verbose=0)
    compress(model, Recipe.from_dict(job["recipe"]), data, job["out"], store=None)
    return {}


compress_runs.CASES.update(
    {
        f.__name__[5:]: f
        for f in (
            case_build_tenet,
            case_custom_objects_dict,
            case_custom_objects_specs,
            case_model_object,
            case_pca_mlp,
            case_conv_functional,
        )
    }
)

if __name__ == "__main__":
    compress_runs.main(sys.argv[1])
