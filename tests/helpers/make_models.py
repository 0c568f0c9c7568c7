"""Build small real models for the tests, in their own process (TensorFlow stays out of the test process).

Usage: python -m tests.helpers.make_models OUT_DIR
Writes: float.tflite, int8.tflite, dynamic.tflite, float16.tflite, cnn.keras, cnn.h5 and digits.npz
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import tf_keras as keras

from edgeprof.data import digits


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = digits(seed=0)
    np.savez(out / "digits.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=8, batch_size=32, verbose=0)
    model.save(out / "cnn.keras")
    model.save(out / "cnn.h5")

    def convert(mode):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if mode == "int8":

            def representative():
                for sample in data.x_train[:100]:
                    yield [sample[None]]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()

    for mode in ("float", "dynamic", "float16", "int8"):
        (out / f"{mode}.tflite").write_bytes(convert(None if mode == "float" else mode))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
