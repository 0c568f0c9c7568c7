"""``edgeprof sensitivity``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import _table
from ..errors import RecipeError
from ._common import emit_json, json_option


def _fractions(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RecipeError(f"{option} {text!r} is not a list of numbers", f"write e.g. {option} 0.25,0.5,0.75") from None
    if any(not 0.0 < v < 1.0 for v in values):
        raise RecipeError(f"{option} {text!r} holds values outside (0, 1)", f"write e.g. {option} 0.25,0.5,0.75")
    return values


@click.command("sensitivity")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--data", required=True, help="An .npz, module:function, or builtin:digits / builtin:mnist.")
@click.option("--ratios", default="0.25,0.5,0.75", show_default=True, help="Channel ratios removed per group.")
@click.option("--sparsities", default="0.5,0.75,0.9", show_default=True, help="Unstructured sparsities per layer.")
@click.option("--no-quantize", is_flag=True, help="Skip the int8 column.")
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True, help="Test samples used.")
@click.option("--criterion", type=click.Choice(["l1", "l2"]), default="l1", show_default=True)
@click.option(
    "--task",
    "tasks",
    multiple=True,
    metavar="TASK|OUTPUT=TASK",
    help="What the model predicts, as for 'edgeprof compress' (inferred when clear).",
)
@click.option("--custom-objects", "custom_objects", multiple=True, metavar="MODULE:ATTR", help="As for compress.")
@click.option(
    "-o",
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Where the scan is kept (JSON) [sensitivity-<model>.json]; channels' sensitivity = FILE and "
    "report --sensitivity FILE read it.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def command(
    model: str,
    data: str,
    ratios: str,
    sparsities: str,
    no_quantize: bool,
    samples: int,
    criterion: str,
    tasks: tuple[str, ...],
    custom_objects: tuple[str, ...],
    out: str | None,
    seed: int,
    as_json: bool,
) -> None:
    """Per-layer sensitivity: the task's headline figure after compressing one layer at a time.

    For each channel group, the drop after removing a range of channel ratios; for each layer with a kernel, after
    zeroing its smallest weights to a range of sparsities and after rounding its kernels alone to int8 (a proxy:
    activations stay float). No fine-tuning. Drops are in percentage points (or percent for error figures), the
    most sensitive layer first. The scan is written as JSON for 'compress' (channels step, criterion =
    "sensitivity") and 'report --sensitivity'.

    \b
    Examples:
      edgeprof sensitivity model.keras --data data.npz
      edgeprof sensitivity model.h5 --data builtin:digits --ratios 0.5 --no-quantize --json
    """
    from ..compress.sensitivity import analyse, table_rows
    from .compress import _task_option

    found = analyse(
        model,
        data,
        task=_task_option(tasks),
        custom_objects=list(custom_objects) or None,
        seed=seed,
        ratios=_fractions(ratios, "--ratios"),
        sparsities=_fractions(sparsities, "--sparsities"),
        quantize=not no_quantize,
        samples=samples,
        criterion=criterion,
    )
    path = Path(out) if out else Path(f"sensitivity-{Path(model).stem}.json")
    path.write_text(json.dumps(found, indent=1) + "\n")
    if as_json:
        emit_json({**found, "written": str(path)})
        return
    metric = found["metric"]
    head, rows = table_rows(found)
    click.echo(
        f"{metric['label']} of the unchanged model: {_fmt(found['baseline'], metric)} on {found['samples']} test "
        f"samples; drop after compressing one layer alone (no fine-tuning), most sensitive first:\n"
    )
    click.echo(_table.table(head, rows, align="ll" + "r" * (len(head) - 2)))
    if found.get("quantize"):
        click.echo(f"\nint8 w: {found['quantize']}")
    click.echo(f"most sensitive: {found['most_sensitive']}\nwrote {path}")


def _fmt(value: float, metric: dict) -> str:
    return _table.pct(value) if metric["unit"] == "pp" else f"{value:.4g}"
