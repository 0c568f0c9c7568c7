"""``edgeprof inspect``."""

from __future__ import annotations

import click

from . import _progress
from ._common import emit_json, json_option


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@json_option
def command(model: str, as_json: bool) -> None:
    """Describe a TFLite model without running it.

    Operators with their versions and counts, custom ops, input and output signatures, parameters and bytes per
    tensor type, weight sparsity and unique values per layer (sparse-stored weights decoded to their dense shape),
    the state a streaming model keeps between invocations, estimated MACs per operator and in total, an estimate
    of the tensor arena and persistent memory, and the oldest LiteRT / tflite-runtime / TensorFlow release that
    loads the model (with XNNPACK, when a custom op is one its XNNPACK delegate provides). A damaged file is one
    error line.

    \b
    Examples:
      edgeprof inspect model.tflite
      edgeprof inspect model.tflite --json | jq .macs_total
    """
    from ..tflite.inspect import inspect_model

    with _progress.bar("reading layers", enabled=not as_json) as step:
        result = inspect_model(model, progress=step)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.summary())
