"""Real models the agent tests need beyond tests/helpers/make_models.py, built in their own process.

Usage: python -m tests.helpers.agent_models OUT_DIR   writes flex.tflite (a TF op kept as a Flex custom op) and
                                                      custom.tflite (the same op as a plain custom op)
       python -m tests.helpers.agent_models --probe   prints the probe models embedded in edgeprof_agent/probe.py
       python -m tests.helpers.agent_models --peak    prints the peak models embedded in edgeprof_agent/peak_models.py
"""

import base64
import gzip
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf_keras as keras


class Inverse(tf.Module):
    """A matrix inverse: LiteRT has no builtin for it."""

    @tf.function(input_signature=[tf.TensorSpec([1, 3, 3], tf.float32)])
    def __call__(self, x):
        return tf.linalg.inv(x + 3.0 * tf.eye(3))


def custom_op_model(flex: bool) -> bytes:
    """SELECT_TF_OPS keeps the op as the Flex custom op FlexMatrixInverse; allow_custom_ops as MatrixInverse."""
    module = Inverse()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    if flex:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    else:
        converter.allow_custom_ops = True
    return converter.convert()


def probe_models() -> tuple[bytes, bytes]:
    """One Dense layer, float32 and full int8: the smallest models on which a delegate shows whether it applies."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2)])
    float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.random((1, 4), dtype=np.float32)] for _ in range(16))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return float_model, converter.convert()


# The peak microbenchmark: (name, height/width, input channels, output channels, kernel size), float32 and int8.
PEAK_CONVS = (("gemm", 16, 256, 256, 1), ("conv3x3", 16, 128, 128, 3))
PEAK_ADD_ELEMENTS = 4 * 1024 * 1024  # two float32 inputs and one output of 16 MiB: larger than the caches


def _representative(shape: tuple[int, ...]):
    rng = np.random.default_rng(0)
    return lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(4))


def _representative(shape: tuple[int, ...]):
    rng = np.random.default_rng(0)
    return lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(4))


def peak_models() -> list[tuple[str, str, int, int, bytes]]:
    """(name, dtype, MACs, bytes moved, model): large convolutions with constant weights (whose values do not change
    how fast a kernel runs, and which compress to nothing), and a large element-wise ADD for the memory roof."""
    out = []
    for name, hw, cin, cout, k in PEAK_CONVS:
        keras.utils.set_random_seed(0)
        source = keras.Input((hw, hw, cin), batch_size=1)
        conv = keras.layers.Conv2D(cout, k, padding="same", kernel_initializer=keras.initializers.Constant(0.01))
        model = keras.Model(source, conv(source))
        macs = hw * hw * cin * cout * k * k
        out.append((name, "float32", macs, 0, tf.lite.TFLiteConverter.from_keras_model(model).convert()))
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative((1, hw, hw, cin))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        out.append((name, "int8", macs, 0, converter.convert()))
    a = keras.Input((PEAK_ADD_ELEMENTS,), batch_size=1)
    b = keras.Input((PEAK_ADD_ELEMENTS,), batch_size=1)
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    blob = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    out.append(("add", "float32", 0, 3 * 4 * PEAK_ADD_ELEMENTS, blob))
    return out


def _print_blob(name: str, blob: bytes) -> None:
    text = base64.b64encode(gzip.compress(blob, mtime=0)).decode()
    print(f"{name} = (")
    for i in range(0, len(text), 100):
        print(f'    "{text[i : i + 100]}"')
    print(")")


def main() -> None:
    if sys.argv[1:] == ["--peak"]:
        rows = []
        for name, dtype, macs, moved, blob in peak_models():
            variable = f"{name.upper()}_{dtype.upper()}"
            _print_blob(variable, blob)
            rows.append(f'    ("{name}", "{dtype}", {macs}, {moved}, {variable}),')
        print("MODELS = (")
        print("\n".join(rows))
        print(")")
        return
    if sys.argv[1:] == ["--probe"]:
        for name, blob in zip(("FLOAT32", "INT8"), probe_models(), strict=True):
            text = base64.b64encode(gzip.compress(blob, mtime=0)).decode()
            print(f"{name} = (")
            for i in range(0, len(text), 100):
                print(f'    "{text[i : i + 100]}"')
            print(")")
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "flex.tflite").write_bytes(custom_op_model(flex=True))
    (out / "custom.tflite").write_bytes(custom_op_model(flex=False))


if __name__ == "__main__":
    main()
