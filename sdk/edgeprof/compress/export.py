"""Keras → TFLite (LiteRT flatbuffer), with the quantisation the recipe asks for and the runtime it must load in.

With a target runtime (``--runtime tflite-runtime-2.14``) the exported model is checked against the operator
versions that release registers (:mod:`edgeprof.tflite.compat`). A known converter workaround is applied when one
exists (TF 2.21's per-channel dynamic-range FULLY_CONNECTED is v12, which tflite-runtime 2.14 lacks; per-tensor
Dense quantisation gives an older version); otherwise export stops with the operators named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


# (operator the runtime lacks, what the workaround does, how to set the converter up for it)
WORKAROUNDS: list[tuple[str, str, Callable[[Any], None]]] = [
    (
        "FULLY_CONNECTED",
        "per-tensor instead of per-channel quantisation of Dense kernels "
        "(_experimental_disable_per_channel_quantization_for_dense_layers)",
        lambda c: setattr(c, "_experimental_disable_per_channel_quantization_for_dense_layers", True),
    ),
]


def _recurrent(model: Any) -> list[Any]:
    from .analysis import unwrap

    keras = _tf.keras()
    return [
        layer
        for layer in (unwrap(outer) for outer in model.layers)
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
    ]


def _converter(model: Any, mode: str | None) -> Any:
    """A converter for ``model``; recurrent models are traced with a batch of 1.

    TF 2.21 converts LSTM, GRU and SimpleRNN layers only with a static batch size ("'tf.TensorListReserve' op
    requires element_shape to be static"); LSTM then becomes one UNIDIRECTIONAL_SEQUENCE_LSTM op. Its full-integer
    calibration of GRU and SimpleRNN (WHILE loops) kills the process with a segfault, so that is refused here.
    """
    tf = _tf.tensorflow()
    recurrent = _recurrent(model)
    if not recurrent:
        return tf.lite.TFLiteConverter.from_keras_model(model)
    looping = [layer.name for layer in recurrent if type(layer).__name__ != "LSTM"]
    if looping and mode in ("int8", "int16x8", "qat", "pqat", "cqat", "pcqat"):
        raise CompressionError(
            f"TF's converter crashes on {mode} quantisation of GRU/SimpleRNN layers ({', '.join(looping)})",
            "use --quantize dynamic or float16 for this model, or LSTM layers",
        )
    specs = [tf.TensorSpec([1, *tensor.shape[1:]], tensor.dtype) for tensor in model.inputs]
    function = tf.function(lambda *inputs: model(list(inputs) if len(inputs) > 1 else inputs[0]))
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(*specs)], model)


def _convert(
    model: Any,
    quantize: QuantizeStep | None,
    data: Dataset | None,
    seed: int,
    tweaks: list[Callable[[Any], None]],
    sparse: bool = False,
) -> bytes:
    converter = _converter(model, quantize.mode if quantize is not None else None)
    if quantize is not None:
        configure(
            converter, quantize.mode, data, samples=quantize.representative_samples, int8_io=quantize.int8_io, seed=seed
        )
    if sparse:  # pruned weights stored as values + index, expanded by DENSIFY: what XNNPACK's sparse path reads
        tf = _tf.tensorflow()
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    for tweak in tweaks:
        tweak(converter)
    try:
        return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressionError(
            f"the TFLite converter failed: {first[:300]}",
            "check that every layer has a TFLite builtin op, or drop the quantize step",
        ) from None


def to_tflite(model: Any, quantize: QuantizeStep | None = None, data: Dataset | None = None, *, seed: int = 0) -> bytes:
    return _convert(model, quantize, data, seed, [])


def convert(
    model: Any,
    quantize: QuantizeStep | None = None,
    data: Dataset | None = None,
    *,
    seed: int = 0,
    runtime: Any = None,
    sparse: bool = False,
) -> tuple[bytes, dict[str, Any]]:
    """Export, and make sure ``runtime`` (a RuntimeSpec or name, None: any) can load the result.

    ``sparse``: store pruned weights sparse (the converter's ``EXPERIMENTAL_SPARSITY``), for XNNPACK's sparse path.
    """
    tflite = _convert(model, quantize, data, seed, [], sparse)
    info: dict[str, Any] = {"sparse_storage": "EXPERIMENTAL_SPARSITY"} if sparse else {}
    if runtime is None:
        return tflite, info
    from ..tflite import compat, parse

    spec = compat.parse_runtime(runtime) if isinstance(runtime, str) else runtime
    issues = compat.unsupported_ops(parse(tflite), spec)
    first_issues = [i.reason for i in issues]
    applied: list[str] = []
    tweaks: list[Callable[[Any], None]] = []
    for op, text, tweak in WORKAROUNDS:
        if any(issue.opcode.name == op for issue in issues):
            tweaks.append(tweak)
            applied.append(text)
            tflite = _convert(model, quantize, data, seed, tweaks, sparse)
            issues = compat.unsupported_ops(parse(tflite), spec)
    if issues:
        raise CompressionError(
            f"{spec.family} {spec.version} cannot load the exported model: " + "; ".join(i.reason for i in issues),
            "target a newer runtime with --runtime, or choose another quantize mode (e.g. int8 instead of dynamic)",
        )
    return tflite, {
        **info,
        "runtime": str(spec),
        "runtime_check": {
            "runtime": str(spec),
            "provenance": compat.PROVENANCE.get(str(spec)),
            "issues_before_workarounds": first_issues,
            "workarounds": applied,
            "ops": sorted({str(code) for code in parse(tflite).opcodes}),
        },
    }
