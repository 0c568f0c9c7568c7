"""LiteRT files with the storage features ``inspect`` must read, made with TensorFlow's own converter.

Usage: python -m tests.helpers.inspect_models OUT_DIR
Writes:
  sparse_f32.tflite    a CNN whose kernels are 70 % zeros, converted with Optimize.EXPERIMENTAL_SPARSITY: CSR
                       weights expanded by DENSIFY
  sparse_int8.tflite   a full-int8 MLP whose zeros come in 1x16 blocks: block-sparse weights that FULLY_CONNECTED
                       reads as stored (no DENSIFY)
  stateful.tflite      a streaming tf.Module (a window of past frames and an accumulator in tf.Variables, updated in
                       the call) converted with experimental_enable_resource_variables: VAR_HANDLE, READ_VARIABLE,
                       ASSIGN_VARIABLE and a CALL_ONCE init subgraph
  kernels.npz          the Keras kernels of both sparse models (sparse_f32_<i>, sparse_int8_<i>), as TFLite lays them
                       out, for exact comparisons
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


def _prune(model: keras.Model, rng: np.random.Generator, block: int) -> list[np.ndarray]:
    """Zero 70 % of every kernel (in blocks of ``block`` inputs); the kernels in TFLite's layout."""
    kernels = []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = weights[0]
        if kernel.ndim == 2:  # Dense [in, out]: zero whole blocks along the input axis
            blocks = rng.random((kernel.shape[0] // block, kernel.shape[1])) < 0.7
            kernel[np.repeat(blocks, block, axis=0)] = 0.0
            kernels.append(kernel.T)  # FULLY_CONNECTED weights are [out, in]
        else:  # Conv2D [kh, kw, in, out] -> CONV_2D [out, kh, kw, in]
            kernel[rng.random(kernel.shape) < 0.7] = 0.0
            kernels.append(np.transpose(kernel, (3, 0, 1, 2)))
        layer.set_weights([kernel, *weights[1:]])
    return kernels


def sparse_models(out: Path) -> None:
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    arrays = {}
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    cnn = keras.Model(inputs, keras.layers.Dense(10)(x))
    for i, kernel in enumerate(_prune(cnn, rng, block=1)):
        arrays[f"sparse_f32_{i}"] = kernel
    converter = tf.lite.TFLiteConverter.from_keras_model(cnn)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    (out / "sparse_f32.tflite").write_bytes(converter.convert())

    inputs = keras.Input((64,))
    mlp = keras.Model(inputs, keras.layers.Dense(16)(keras.layers.Dense(64, activation="relu")(inputs)))
    for i, kernel in enumerate(_prune(mlp, rng, block=16)):
        arrays[f"sparse_int8_{i}"] = kernel

    def representative():
        for _ in range(20):
            yield [rng.random((1, 64), dtype=np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(mlp)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY, tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    (out / "sparse_int8.tflite").write_bytes(converter.convert())
    np.savez(out / "kernels.npz", **arrays)


class Streaming(tf.Module):
    """A streaming layer as kws_streaming builds them: the last 4 frames of 40 features kept between calls."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.kernel = tf.constant(rng.standard_normal((5 * 40, 64)).astype(np.float32))
        self.dense = tf.constant(rng.standard_normal((64, 12)).astype(np.float32))
        self.window = tf.Variable(tf.zeros((1, 4, 40)), trainable=False, name="window")
        self.total = tf.Variable(tf.zeros((1, 64)), trainable=False, name="total")

    @tf.function(input_signature=[tf.TensorSpec((1, 1, 40), tf.float32)])
    def __call__(self, frame: tf.Tensor) -> tf.Tensor:
        window = tf.concat([self.window, frame], axis=1)
        self.window.assign(window[:, 1:, :])
        hidden = tf.nn.relu(tf.matmul(tf.reshape(window, (1, -1)), self.kernel))
        self.total.assign_add(hidden)
        return tf.matmul(hidden, self.dense)


def stateful_model(out: Path) -> None:
    module = Streaming()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = True
    (out / "stateful.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    sparse_models(folder)
    stateful_model(folder)
