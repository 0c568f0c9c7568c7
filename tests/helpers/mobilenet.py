"""A real-size model for inspection and comparison tests, built offline in its own process.

Usage: python -m tests.helpers.mobilenet OUT_DIR
Writes: mobilenet_f32.tflite, mobilenet_int8.tflite (full int8, float I/O) and keras_layers.json, the MACs of every
Conv2D, DepthwiseConv2D and Dense layer computed by hand from the Keras layer shapes (the reference for inspect).
MobileNetV2 α=0.35 at 96×96 (FIELD-NOTES): on this CPU its int8 build is slower than its float build.

       python -m tests.helpers.mobilenet --bench OUT_DIR
Writes the standard 1000-class MobileNetV2 α=0.35 at 96×96 and α=1.0 at 224×224, float32 and full int8 (float I/O):
mobilenetv2-035-96-f32.tflite, ...-int8.tflite, mobilenetv2-100-224-f32.tflite, ...-int8.tflite (scripts/bench-ops).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("mobilenet_f32.tflite", "mobilenet_int8.tflite", "keras_layers.json")


def build_once(folder: Path) -> Path:
    """Build the models into ``folder`` unless an earlier test module of this session already did (≈ 35 s)."""
    if not all((folder / name).is_file() for name in FILES):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "tests.helpers.mobilenet", str(folder)],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    return folder


def keras_macs(model) -> list[dict]:
    """MACs of each layer from its output shape and kernel, as a textbook would count them."""
    import tf_keras as keras

    rows = []
    for layer in model.layers:
        out = layer.output_shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.depthwise_kernel.shape[:2]
            macs = out[1] * out[2] * out[3] * kh * kw
            kind = "DEPTHWISE_CONV_2D"
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            macs = out[1] * out[2] * cout * kh * kw * cin
            kind = "CONV_2D"
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            macs = cin * cout
            kind = "FULLY_CONNECTED"
        else:
            continue
        rows.append({"name": layer.name, "kind": kind, "macs": int(macs)})
    return rows


BENCH = {"035-96": (0.35, 96), "100-224": (1.0, 224)}


def bench_files(out: Path) -> dict[str, Path]:
    return {f"{name}-{kind}": out / f"mobilenetv2-{name}-{kind}.tflite" for name in BENCH for kind in ("f32", "int8")}


def _representative(rng, size: int):
    import numpy as np

    return lambda: ([rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)] for _ in range(8))


def bench(out: Path) -> None:
    """The benchmark's models: as keras.applications defines them (1000 classes), weights=None (nothing fetched)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    out.mkdir(parents=True, exist_ok=True)
    for name, (alpha, size) in BENCH.items():
        keras.utils.set_random_seed(0)
        model = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(size, size, 3))
        (out / f"mobilenetv2-{name}-f32.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        rng = np.random.default_rng(0)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(rng, size)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        (out / f"mobilenetv2-{name}-int8.tflite").write_bytes(converter.convert())


def main(out: Path) -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10)
    (out / "keras_layers.json").write_text(json.dumps(keras_macs(model), indent=1))
    (out / "mobilenet_f32.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    (out / "mobilenet_int8.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    if sys.argv[1] == "--bench":
        bench(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]))
