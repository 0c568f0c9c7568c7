"""``edgeprof compress``."""

from __future__ import annotations

import click

from ..compress import Recipe, compress
from ..errors import RecipeError
from ._common import emit_json, json_option, progress_printer, store_option


@click.command("compress")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--data",
    "data",
    required=True,
    help="Training/evaluation data: an .npz, module:function, or builtin:digits / builtin:mnist.",
)
@click.option(
    "--recipe",
    "recipe_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A TOML recipe (see README); cannot be mixed with the step flags.",
)
@click.option(
    "--prune",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Prune to this sparsity, e.g. 0.8.",
)
@click.option("--cluster", type=click.IntRange(2, 256), default=None, help="Cluster weights into N values.")
@click.option(
    "--quantize",
    type=click.Choice(["dynamic", "int8", "float16", "int16x8"]),
    default=None,
    help="Post-training quantisation at export.",
)
@click.option("--epochs", type=click.IntRange(min=0), default=None, help="Fine-tuning epochs per step [2].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits and training.")
@json_option
@store_option
def command(
    model: str,
    out: str,
    data: str,
    recipe_file: str | None,
    prune: float | None,
    cluster: int | None,
    quantize: str | None,
    epochs: int | None,
    seed: int,
    as_json: bool,
    store: str,
) -> None:
    """Compress a Keras model with TF-MOT and export it to TFLite.

    Writes OUT/model.tflite and OUT/manifest.json (sizes, sparsity, unique weights per layer, and accuracy,
    precision, recall and F1 of the source and of the exported TFLite model on held-out data).

    \b
    Examples:
      edgeprof compress model.keras -o out --data data.npz --quantize int8
      edgeprof compress model.h5 -o out --data builtin:digits --prune 0.8 --cluster 16 --quantize int8
      edgeprof compress model.keras -o out --data data.npz --recipe recipe.toml
    """
    if recipe_file and any(v is not None for v in (prune, cluster, quantize)):
        raise RecipeError(
            "--recipe cannot be combined with --prune/--cluster/--quantize", "put every step in the recipe file"
        )
    recipe = (
        Recipe.from_toml(recipe_file)
        if recipe_file
        else Recipe.from_flags(prune=prune, cluster=cluster, quantize=quantize, epochs=epochs, seed=seed)
    )
    result = compress(model, recipe, data, out, store=store, progress=progress_printer(not as_json))
    if as_json:
        emit_json(result.manifest)
    else:
        click.echo(result.summary())
        click.echo(f"\nwrote {result.tflite_path} and {result.out_dir / 'manifest.json'}")
