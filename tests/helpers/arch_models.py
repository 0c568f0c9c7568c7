"""Small tf_keras models with the layers real edge networks use, and data of the right shape, for the compression
tests: SeparableConv2D with BatchNorm, Conv2DTranspose, Conv1D, LSTM and GRU.

Usage: python -m tests.helpers.arch_models OUT_DIR   (writes NAME.h5 and NAME.npz for each model below)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgeprof import _tf


def zoo(keras):
    """SeparableConv2D (+BatchNorm), Conv2DTranspose, Conv1D and LSTM in one small functional model."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.SeparableConv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2DTranspose(12, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.SeparableConv2D(16, 3, strides=2, depth_multiplier=2, activation="relu")(x)
    x = keras.layers.Reshape((49, 16))(x)
    x = keras.layers.Conv1D(16, 5, activation="relu")(x)
    x = keras.layers.LSTM(12)(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def conv1d(keras):
    return keras.Sequential(
        [
            keras.Input((32, 6)),
            keras.layers.Conv1D(16, 5, activation="relu"),
            keras.layers.Conv1D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4),
        ]
    )


def transpose(keras):
    return keras.Sequential(
        [
            keras.Input((6, 6, 4)),
            keras.layers.Conv2DTranspose(12, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )


def lstm(keras):
    return keras.Sequential([keras.Input((10, 6)), keras.layers.LSTM(16), keras.layers.Dense(4)])


def gru(keras):
    return keras.Sequential([keras.Input((10, 6)), keras.layers.GRU(8), keras.layers.Dense(4)])


MODELS = {f.__name__: f for f in (zoo, conv1d, transpose, lstm, gru)}


def main(out: Path) -> None:
    keras = _tf.keras()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, build in MODELS.items():
        keras.backend.clear_session()  # layer names start from conv1d, lstm, ... in every model
        keras.utils.set_random_seed(0)
        model = build(keras)
        model.save(out / f"{name}.h5")
        shape = model.input_shape[1:]
        np.savez(
            out / f"{name}.npz",
            x_train=rng.normal(size=(96, *shape)).astype(np.float32),
            y_train=rng.integers(0, 4, 96),
            x_test=rng.normal(size=(32, *shape)).astype(np.float32),
            y_test=rng.integers(0, 4, 32),
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
