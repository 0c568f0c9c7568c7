"""``edgeprof compress``."""

from __future__ import annotations

import dataclasses

import click

from .. import progress
from ..compress import Recipe, compress
from ..compress.recipe import QUANTIZE_MODES
from ..errors import RecipeError
from . import _progress
from ._common import emit_json, json_option, mlflow_option, said_to_mlflow, store_option


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
    help="A TOML recipe (see examples/recipes/); cannot be mixed with the step flags.",
)
@click.option(
    "--prune",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Prune to this sparsity, e.g. 0.8.",
)
@click.option(
    "--structure",
    default="unstructured",
    show_default=True,
    help="Pruning structure: unstructured, or M:N such as 2:4 (M zeros in every N weights; the sparsity is M/N).",
)
@click.option(
    "--policy",
    type=click.Choice(["all", "xnnpack"]),
    default="all",
    show_default=True,
    help="With --prune: xnnpack prunes only the 1×1 convolutions XNNPACK's sparse inference runs "
    "(TF-MOT's PruneForLatencyOnXNNPack) and stores them sparse; float32 only.",
)
@click.option(
    "--channels",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Remove this fraction of the output channels of each Conv/Dense layer (structured; fewer MACs).",
)
@click.option("--cluster", type=click.IntRange(2, 256), default=None, help="Cluster weights into N values.")
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE_MODES),
    default=None,
    help="Post-training (dynamic, int8, float16, int16x8) or quantisation-aware (qat, pqat, cqat, pcqat).",
)
@click.option("--int8-io", is_flag=True, help="With int8 / QAT modes: int8 model input and output too.")
@click.option(
    "--representative-samples",
    type=click.IntRange(min=1),
    default=None,
    help="Training samples that calibrate int8 / int16x8 [200].",
)
@click.option("--epochs", type=click.IntRange(min=0), default=None, help="Fine-tuning epochs per step [2].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Fine-tuning batch size [32].")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None, help="[0.001]")
@click.option(
    "--runtime",
    default=None,
    help="The runtime the board loads the model with, e.g. litert-2.3 or tflite-runtime-2.14: export avoids "
    "operator versions it lacks, or stops.",
)
@click.option("--seed", type=int, default=None, help="Seed for splits and training [0, or the recipe's].")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    metavar="TASK|OUTPUT=TASK",
    help="What the model predicts: classification, binary, multilabel, regression or reconstruction (per output of "
    "a multi-output model: --task age=regression --task sex=binary). Inferred from the model and data when clear.",
)
@click.option("--loss", default=None, metavar="MODULE:FUNCTION", help="Fine-tuning loss(y_true, y_pred) of your own.")
@click.option(
    "--metric",
    default=None,
    metavar="MODULE:FUNCTION",
    help="metric(y_true, y_pred) -> float on numpy arrays, reported and used as the headline figure.",
)
@click.option(
    "--custom-objects",
    "custom_objects",
    multiple=True,
    metavar="MODULE:ATTR",
    help="The code of the model's custom layers (repeatable): ATTR is a dict name → class, a function returning "
    "one, or a class or function. MODULE is looked for in the current folder, then the model's folder, then the "
    "Python path; or give a file: path/to/layers.py:ATTR.",
)
@click.option(
    "--latency/--no-latency",
    default=None,
    help="Profile the float32 baseline and the compressed model on --target and record compare's verdict in the "
    "manifest [on for channels and --policy xnnpack, off otherwise].",
)
@click.option("--target", default="local", show_default=True, help="Where the latency verdict is measured.")
@mlflow_option
@json_option
@store_option
def command(
    model: str,
    out: str,
    data: str,
    recipe_file: str | None,
    prune: float | None,
    structure: str,
    policy: str,
    channels: float | None,
    cluster: int | None,
    quantize: str | None,
    int8_io: bool,
    representative_samples: int | None,
    epochs: int | None,
    batch_size: int | None,
    learning_rate: float | None,
    runtime: str | None,
    seed: int | None,
    tasks: tuple[str, ...],
    loss: str | None,
    metric: str | None,
    custom_objects: tuple[str, ...],
    latency: bool | None,
    target: str,
    mlflow_uri: str | None,
    as_json: bool,
    store: str,
) -> None:
    """Compress a Keras model with TF-MOT (and more) and export it to TFLite.

    Writes OUT/model.tflite and OUT/manifest.json (each step's time and effect, sizes, sparsity and unique weights
    per layer, and the task's metrics of the source and of the exported TFLite model: accuracy, precision, recall
    and F1 for classifiers, MAE, RMSE and R² for regression, reconstruction error and ROC AUC for autoencoders).

    \b
    Examples:
      edgeprof compress model.keras -o out --data data.npz --quantize int8
      edgeprof compress model.h5 -o out --data builtin:digits --prune 0.8 --cluster 16 --quantize pcqat
      edgeprof compress model.keras -o out --data data.npz --prune 0.5 --structure 2:4
      edgeprof compress model.keras -o out --data data.npz --channels 0.5 --quantize int8
      edgeprof compress mobilenet.keras -o out --data data.npz --prune 0.8 --policy xnnpack --target pi5
      edgeprof compress model.keras -o out --data data.npz --quantize dynamic --runtime tflite-runtime-2.14
      edgeprof compress model.keras -o out --data data.npz --recipe examples/recipes/prune-cluster-int8.toml
      edgeprof compress autoencoder.h5 -o out --data machine.npz --quantize int8 --task reconstruction
      edgeprof compress kws.h5 -o out --data kws.npz --quantize int8 --custom-objects my_layers:CUSTOM_OBJECTS
    """
    step_flags = (prune, channels, cluster, quantize, epochs, batch_size, learning_rate, representative_samples)
    if policy != "all" and prune is None:
        raise RecipeError("--policy applies to --prune", "add --prune 0.8 (XNNPACK needs at least 2/3 zeros)")
    if recipe_file and (
        any(v is not None for v in step_flags) or int8_io or structure != "unstructured" or policy != "all"
    ):
        raise RecipeError(
            "--recipe cannot be combined with the step flags (--prune, --cluster, --quantize, --epochs, ...)",
            "put every step in the recipe file",
        )
    if recipe_file:
        recipe = Recipe.from_toml(recipe_file)
        if runtime is not None:
            recipe.runtime = runtime
        if seed is not None:
            recipe.seed = seed
    else:
        recipe = Recipe.from_flags(
            prune=prune,
            cluster=cluster,
            quantize=quantize,
            epochs=epochs,
            seed=seed or 0,
            structure=structure,
            representative_samples=representative_samples or 200,
            int8_io=int8_io,
            batch_size=batch_size,
            learning_rate=learning_rate,
            runtime=runtime,
            channels=channels,
            policy=policy,
        )
    task = _task_option(tasks)
    with _progress.display(not as_json) as shown:
        say = _progress.say_line(shown)
        step = ["compress"]

        def lines(message: str) -> None:  # "step 2/3: prune ..." lines, above the epoch bar on a terminal
            step[0] = message.split(":", 1)[0]
            say(message)

        def epochs(event: progress.Progress) -> None:
            assert shown is not None
            shown(dataclasses.replace(event, message=f"{step[0]}: {event.message}"))

        with progress.reporting(epochs if shown is not None else None):
            result = compress(
                model,
                recipe,
                data,
                out,
                task=task,
                loss=loss,
                metric=metric,
                store=store,
                progress=None if as_json else lines,
                custom_objects=list(custom_objects) or None,
                latency=latency,
                target=target,
            )
    if as_json:
        emit_json(result.manifest)
    else:
        click.echo(result.summary())
        click.echo(f"\nwrote {result.tflite_path} and {result.out_dir / 'manifest.json'}")
    if mlflow_uri:
        from .. import tracking
        from ..store import using_store

        tracker = tracking.Tracker(mlflow_uri)
        with using_store(store) as db:
            run = tracking.log_compression(
                tracker, result.manifest, result.tflite_path, store=db, run_id=result.id, summary=result.summary()
            )
        said_to_mlflow("the compression" + (f" (run {result.id})" if result.id else ""), run, mlflow_uri)


def _task_option(values: tuple[str, ...]) -> str | dict[str, str] | None:
    """``--task regression`` for every output, or ``--task age=regression --task sex=binary`` per output."""
    from ..tasks import check_task_name

    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return check_task_name(values[0])
    per_output = {}
    for value in values:
        name, sep, task = value.partition("=")
        if not sep or not name or not task:
            raise RecipeError(
                f"--task {value!r} mixes a task for every output with tasks per output",
                "give --task TASK once, or --task OUTPUT=TASK for each output",
            )
        per_output[name] = check_task_name(task)
    return per_output
