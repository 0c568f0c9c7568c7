"""The latency levers' scenarios in one process (TensorFlow imported once), for tests/test_compress_levers.py.

Usage: python -m tests.helpers.levers_runs OUT_DIR [DS_CNN_H5]
Prints one JSON object: scenario -> its findings (or {"error": ...}). Models train on real images (scikit-learn's
digits, as 8×8 or scaled up to 32×32 RGB).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np

from edgeprof import _tf
from edgeprof.compress import (
    ChannelsStep,
    PruneStep,
    QuantizeStep,
    Recipe,
    Training,
    channel_graph,
    channels,
    compress,
    sensitivity,
)
from edgeprof.data import load_data
from edgeprof.errors import EdgeprofError
from tests.helpers.latency_models import SMALL_BLOCKS, digits_rgb, mobilenet_v2_style

keras = _tf.keras()
layers = keras.layers


def residual_cnn(name_prefix: str = "") -> object:
    """Conv+BN, an inverted residual (1×1, depthwise, 1×1, Add), pooling, Flatten → Dense: every rewiring case."""
    inputs = keras.Input((8, 8, 1))
    a = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inputs)
    a = layers.BatchNormalization(name="stem_bn")(a)
    a = layers.ReLU(name="stem_relu")(a)
    b = layers.Conv2D(32, 1, name="expand")(a)
    b = layers.ReLU(6.0, name="expand_relu")(b)
    b = layers.DepthwiseConv2D(3, padding="same", name="dw")(b)
    b = layers.BatchNormalization(name="dw_bn")(b)
    b = layers.ReLU(name="dw_relu")(b)
    b = layers.Conv2D(16, 1, name="project")(b)
    b = layers.BatchNormalization(name="project_bn")(b)
    x = layers.Add(name="add")([a, b])
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="fc")(x)
    outputs = layers.Dense(10, activation="softmax", name="out")(x)
    return keras.Model(inputs, outputs)


def concat_cnn() -> object:
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="trunk")(inputs)
    a = layers.Conv2D(8, 1, name="branch_a")(x)
    b = layers.Conv2D(8, 3, padding="same", name="branch_b")(x)
    x = layers.Concatenate(name="concat")([a, b])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax", name="out")(x))


def fragile_cnn() -> object:
    """Wide layers trained with SpatialDropout (their channels are redundant) around a 4-channel bottleneck."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="wide1"),
            layers.SpatialDropout2D(0.4),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="wide2"),
            layers.SpatialDropout2D(0.4),
            layers.Conv2D(4, 1, activation="relu", name="bottleneck"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="wide3"),
            layers.SpatialDropout2D(0.4),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax", name="out"),
        ]
    )


def trained(model, data, epochs: int, seed: int = 0, learning_rate: float = 3e-3):
    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def randomise_batchnorm(model) -> None:
    """Give BatchNormalization layers non-trivial statistics, so a wrong slice shows in the outputs."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.2, beta.shape),
                    rng.normal(0, 0.2, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )


def equivalence(model, x: np.ndarray) -> dict:
    """Rewired (channels removed) against the original with the same channels masked, before any fine-tuning."""
    cg = channel_graph.analyse(model)
    keep, skipped, _ = channels.plan(model, ChannelsStep(ratio=0.5, round_to=4), cg)
    pruned = channel_graph.prune(model, cg, keep)
    masked = keras.models.clone_model(model)
    masked.set_weights(model.get_weights())
    channel_graph.mask(masked, cg, keep)
    a, b, c = (np.asarray(m.predict(x, verbose=0)) for m in (pruned, masked, model))
    return {
        "max_diff": float(np.max(np.abs(a - b))),
        "changed_by_mask": float(np.max(np.abs(c - b))),
        "params": [int(model.count_params()), int(pruned.count_params())],
        "groups": [
            {"label": g.label(), "producers": g.producers, "members": g.members, "blocked": g.blocked}
            for g in cg.groups
        ],
        "skipped": skipped,
    }


def error_of(fn) -> str:
    try:
        fn()
    except EdgeprofError as exc:
        return f"{type(exc).__name__}: {exc.problem}; {exc.fix}"
    return "no error"


def main(out: Path, ds_cnn: str | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    found: dict = {}
    digits = load_data("builtin:digits")
    rgb_path = digits_rgb(str(out / "digits32.npz"), 32)
    rgb = load_data(rgb_path)
    rng = np.random.default_rng(0)

    def run(name, fn):
        try:
            found[name] = fn()
        except Exception:  # noqa: BLE001 - the test shows which scenario failed and how
            found[name] = {"error": traceback.format_exc()[-3000:]}

    def equivalences():
        result = {}
        model = residual_cnn()
        randomise_batchnorm(model)
        result["residual_cnn"] = equivalence(model, digits.x_test[:64])
        keras.utils.set_random_seed(0)
        mobilenet = mobilenet_v2_style(0.35, 32, blocks=SMALL_BLOCKS, head=128)
        randomise_batchnorm(mobilenet)
        result["mobilenet"] = equivalence(mobilenet, rgb.x_test[:32])
        if ds_cnn:
            model = keras.models.load_model(ds_cnn, compile=False)
            randomise_batchnorm(model)
            result["ds_cnn"] = equivalence(model, rng.normal(size=(16, *model.input_shape[1:])).astype("float32"))
        return result

    def channels_compress():
        model = trained(residual_cnn(), digits, epochs=8)
        recipe = Recipe(
            steps=[
                ChannelsStep(ratio=0.5, round_to=4, training=Training(epochs=3)),
                QuantizeStep(mode="int8"),
            ]
        )
        result = compress(model, recipe, data="builtin:digits", out=str(out / "channels"), store=None)
        m = result.manifest
        return {
            "manifest": {k: m[k] for k in ("steps", "macs", "latency", "sizes", "headline")},
            "summary": result.summary(),
        }

    def bad_input():
        model = trained(residual_cnn(), digits, epochs=1)
        concat = concat_cnn()

        def run_step(model, step):
            return compress(model, Recipe(steps=[step]), data="builtin:digits", out=str(out / "bad"), store=None)

        return {
            "empty": error_of(lambda: run_step(model, ChannelsStep(ratios={"stem": 0.97}, round_to=1))),
            "concatenate": error_of(lambda: run_step(concat, ChannelsStep(layers=["branch_*"]))),
            "output": error_of(lambda: run_step(model, ChannelsStep(layers=["out"]))),
            "ratio_one": error_of(lambda: Recipe.from_dict({"step": [{"kind": "channels", "ratio": 1.0}]})),
            "concat_default": run_step(concat, ChannelsStep(ratio=0.5, training=Training(epochs=1))).manifest["steps"][
                0
            ]["effect"]["skipped"],
        }

    def xnnpack():
        keras.utils.set_random_seed(0)
        model = trained(mobilenet_v2_style(0.35, 32, blocks=SMALL_BLOCKS, head=128), rgb, epochs=3)
        recipe = Recipe(steps=[PruneStep(sparsity=0.8, policy="xnnpack", training=Training(epochs=1))])
        result = compress(model, recipe, data=rgb_path, out=str(out / "xnnpack"), store=None)
        m = result.manifest
        plain = trained(residual_cnn(), digits, epochs=1)
        return {
            "manifest": {k: m[k] for k in ("steps", "latency", "tflite")},
            "summary": result.summary(),
            "refused": error_of(
                lambda: compress(plain, recipe, data="builtin:digits", out=str(out / "refused"), store=None)
            ),
            "with_int8": error_of(
                lambda: Recipe(steps=[PruneStep(sparsity=0.8, policy="xnnpack"), QuantizeStep(mode="int8")])
            ),
            "too_sparse_for_nothing": error_of(
                lambda: Recipe.from_dict({"step": [{"kind": "prune", "sparsity": 0.5, "policy": "xnnpack"}]})
            ),
        }

    def fragile():
        model = trained(fragile_cnn(), digits, epochs=40, learning_rate=1e-3)
        model.save(out / "fragile.keras")
        scan = sensitivity.analyse(model, "builtin:digits")
        cg = channel_graph.analyse(model)
        curves = sensitivity.channel_curves(scan)
        ratios = sensitivity.allocate(
            {g.label(): (g.channels, curves[g.label()]) for g in cg.groups if g.label() in curves}, 0.4
        )
        (out / "scan.json").write_text(json.dumps(scan))
        step = ChannelsStep(ratio=0.4, criterion="sensitivity", sensitivity=str(out / "scan.json"))
        step.training.epochs = 1
        result = compress(
            model, Recipe(steps=[step]), data="builtin:digits", out=str(out / "sens"), store=None, latency=False
        )
        return {"scan": scan, "allocation": ratios, "effect": result.manifest["steps"][0]["effect"]}

    run("equivalence", equivalences)
    run("channels", channels_compress)
    run("bad_input", bad_input)
    run("xnnpack", xnnpack)
    run("fragile", fragile)
    return found


if __name__ == "__main__":
    with _tf.quiet_native():
        result = main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(result, default=str))
