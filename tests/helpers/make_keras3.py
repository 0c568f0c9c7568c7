"""Build real Keras 3 models for the tests, in a process WITHOUT TF_USE_LEGACY_KERAS (so `keras` is Keras 3).

Usage: python -m tests.helpers.make_keras3 OUT_DIR DIGITS_NPZ
Writes: k3_sequential.keras, k3_functional.keras (residual Add + BatchNormalization), k3_rmsnorm.keras (a layer
tf_keras lacks), and k3_<name>.npy: each model's outputs on x_test, computed by Keras 3 itself.
"""

import os
import sys
from pathlib import Path

os.environ.pop("TF_USE_LEGACY_KERAS", None)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np


def main(out: Path, digits: Path) -> None:
    assert keras.__version__.startswith("3"), keras.__version__
    data = np.load(digits)
    keras.utils.set_random_seed(0)
    sequential = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10),
        ]
    )
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    y = keras.layers.Conv2D(8, 1, activation="relu")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    functional = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    rmsnorm = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.RMSNormalization(), keras.layers.Dense(10)]
    )
    for name, model, from_logits in (
        ("sequential", sequential, True),
        ("functional", functional, False),
        ("rmsnorm", rmsnorm, True),
    ):
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
        model.fit(data["x_train"], data["y_train"], epochs=6, batch_size=32, verbose=0)
        model.save(out / f"k3_{name}.keras")
        np.save(out / f"k3_{name}.npy", model.predict(data["x_test"], verbose=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
