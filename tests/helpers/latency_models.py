"""Models and data for the latency levers (channels, XNNPACK-sparse pruning, sensitivity), built in tf_keras.

``mobilenet_v2_style``: MobileNetV2's inverted residual blocks with the stride-2 layers padded 1 on each side
(ZeroPadding2D then a valid convolution), which is the layout XNNPACK's sparse inference and TF-MOT's
PruneForLatencyOnXNNPack accept (Keras' own MobileNetV2 pads asymmetrically at even sizes), and BatchNormalization
momentum 0.9 (Keras uses 0.999, whose moving statistics need far more steps than a few epochs on small data).
``digits_rgb``: scikit-learn's real 8×8 digits scaled up to a square RGB image, so small CNNs of this shape
learn something real.
"""

from __future__ import annotations

import numpy as np

BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
SMALL_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2))


def _divisible(value: float) -> int:
    return max(8, int(value + 4) // 8 * 8)


def mobilenet_v2_style(alpha: float = 0.35, size: int = 96, classes: int = 10, blocks=BLOCKS, head: int = 1280):
    from edgeprof import _tf

    keras = _tf.keras()
    layers = keras.layers

    def block(x, expand: int, out: int, stride: int, name: str):
        channels = int(x.shape[-1])
        y = x
        if expand != 1:
            y = layers.Conv2D(channels * expand, 1, use_bias=False, name=f"{name}_expand")(y)
            y = layers.BatchNormalization(momentum=0.9, name=f"{name}_expand_bn")(y)
            y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
        if stride == 2:
            y = layers.ZeroPadding2D(1, name=f"{name}_pad")(y)
            y = layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False, name=f"{name}_dw")(y)
        else:
            y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
        y = layers.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"{name}_project_bn")(y)
        if stride == 1 and channels == out:
            y = layers.Add(name=f"{name}_add")([x, y])
        return y

    inputs = keras.Input((size, size, 3))
    x = layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    x = layers.Conv2D(_divisible(32 * alpha), 3, strides=2, padding="valid", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    index = 0
    for expand, channels, repeats, stride in blocks:
        for i in range(repeats):
            x = block(x, expand, _divisible(channels * alpha), stride if i == 0 else 1, f"block{index}")
            index += 1
    x = layers.Conv2D(head if alpha <= 1.0 else _divisible(head * alpha), 1, use_bias=False, name="head")(x)
    x = layers.BatchNormalization(momentum=0.9, name="head_bn")(x)
    x = layers.ReLU(6.0, name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.1, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"mobilenetv2_style_{alpha}_{size}")


def upscale_rgb(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) or (N, h, w, 1) grey images → (N, size, size, 3) by nearest-neighbour repetition and padding."""
    images = images.reshape(images.shape[0], images.shape[1], images.shape[2])
    factor = max(1, size // images.shape[1])
    big = np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)
    pad = size - big.shape[1]
    big = np.pad(big, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))
    return np.repeat(big[..., None], 3, axis=-1).astype(np.float32)


def digits_rgb(path: str, size: int = 32, seed: int = 0) -> str:
    """scikit-learn's 1,797 digits as size×size RGB in [0, 1], split 80/20, saved as an .npz; returns the path."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = upscale_rgb(digits.images / 16.0, size)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=seed, stratify=digits.target
    )
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
