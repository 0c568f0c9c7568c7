"""Keras → TFLite (LiteRT flatbuffer), with the quantisation the recipe asks for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _tf
from ..data import Dataset
from ..errors import CompressionError
from .recipe import QuantizeStep


def representative_dataset(data: Dataset, count: int, seed: int = 0) -> Any:
    samples = data.representative(count, seed=seed)

    def generator() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None, ...].astype(np.float32)]

    return generator


def configure(
    converter: Any, mode: str | None, data: Dataset | None, *, samples: int = 200, int8_io: bool = False, seed: int = 0
) -> None:
    """Set the converter up for a post-training mode (``None`` = plain float32)."""
    tf = _tf.tensorflow()
    if mode is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "dynamic":
        return
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return
    if data is None:
        raise CompressionError(f"{mode} quantisation needs a representative dataset", "pass --data")
    converter.representative_dataset = representative_dataset(data, samples, seed)
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        return
    if mode in ("int8", "qat", "pqat", "cqat", "pcqat"):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return
    raise CompressionError(f"unknown quantisation mode {mode!r}", "use dynamic, int8, float16 or int16x8")


def to_tflite(model: Any, quantize: QuantizeStep | None = None, data: Dataset | None = None, *, seed: int = 0) -> bytes:
    tf = _tf.tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize is not None:
        configure(
            converter, quantize.mode, data, samples=quantize.representative_samples, int8_io=quantize.int8_io, seed=seed
        )
    try:
        return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressionError(
            f"the TFLite converter failed: {first[:300]}",
            "check that every layer has a TFLite builtin op, or drop the quantize step",
        ) from None
