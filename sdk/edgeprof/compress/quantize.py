"""The ``quantize`` step: post-training quantisation at export; quantisation-aware training comes with QAT."""

from __future__ import annotations

from typing import Any

from ..data import Dataset
from ..errors import CompressionError
from . import export
from .recipe import PTQ_MODES, QuantizeStep


def apply(model: Any, step: QuantizeStep, data: Dataset, *, seed: int = 0) -> tuple[Any, bytes, dict[str, Any]]:
    """Return the (possibly fine-tuned) Keras model, the TFLite bytes and what was done."""
    if step.mode in PTQ_MODES:
        tflite = export.to_tflite(model, step, data, seed=seed)
        return (
            model,
            tflite,
            {
                "mode": step.mode,
                "text": f"post-training {step.mode}",
                "representative_samples": step.representative_samples if step.mode in ("int8", "int16x8") else None,
            },
        )
    raise CompressionError(f"quantize mode {step.mode!r} is not available yet", "use dynamic, int8 or float16")
