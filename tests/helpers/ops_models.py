"""Models built for the per-operator profile's tests, converted in their own process.

Usage: python -m tests.helpers.ops_models OUT_DIR
Writes:
  heavy.tflite      light operators (1x1 convolutions of 16 channels, an ADD, a pooling, a small Dense) around one
                    heavy 3x3 convolution with 37x the MACs of the largest light one
  multiples.tflite  one 1x1 convolution of 32 -> 32 channels at 64x64, 32x32 and 16x16 positions (max pooling between):
                    the same work done on 16, 4 and 1 units of positions
  while.tflite      a tf.while_loop: a WHILE operator whose condition and body are subgraphs of their own
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FILES = ("heavy.tflite", "multiples.tflite", "while.tflite", "facts.json")


def build_once(folder: Path) -> Path:
    """Build the models into ``folder`` unless this session already did (≈ 15 s)."""
    import subprocess

    if not all((folder / name).is_file() for name in FILES):
        root = Path(__file__).resolve().parents[2]
        subprocess.run(
            [sys.executable, "-m", "tests.helpers.ops_models", str(folder)],
            check=True,
            env={**os.environ, "PYTHONPATH": str(root)},
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    return folder


def main(out: Path) -> None:
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    layers = keras.layers

    source = keras.Input((32, 32, 16), batch_size=1)
    x = layers.Conv2D(16, 1, activation="relu", name="light_a")(source)
    y = layers.Conv2D(16, 1, name="light_b")(x)
    x = layers.Add(name="light_add")([x, y])
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="heavy")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(10, name="light_dense")(x)
    heavy = keras.Model(source, x)
    (out / "heavy.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(heavy).convert())

    source = keras.Input((64, 64, 32), batch_size=1)
    x = layers.Conv2D(32, 1, name="big")(source)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 1, name="middle")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 1, name="small")(x)
    multiples = keras.Model(source, x)
    (out / "multiples.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(multiples).convert())

    weights = tf.constant(np.random.default_rng(0).normal(0, 0.3, (8, 8)).astype(np.float32))

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def __call__(self, x):
            def body(i, value):
                return i + 1, tf.nn.relu(tf.matmul(value, weights))

            _, value = tf.while_loop(lambda i, _value: i < 4, body, [tf.constant(0), x])
            return value

    loop = Loop()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([loop.__call__.get_concrete_function()], loop)
    (out / "while.tflite").write_bytes(converter.convert())
    facts = {"heavy_layer": "heavy", "multiples": {"big": 16, "middle": 4, "small": 1}}
    (out / "facts.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
