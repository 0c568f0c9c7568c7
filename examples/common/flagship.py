"""The flagship recipes on one trained model: compress each, profile each on a target, print one table.

The recipes are the README's and ``examples/recipes/``'s, unchanged: the same as these commands:

    edgeprof compress MODEL -o OUT/float32 --data DATA
    edgeprof compress MODEL -o OUT/int8 --data DATA --quantize int8
    edgeprof compress MODEL -o OUT/dynamic --data DATA --quantize dynamic
    edgeprof compress MODEL -o OUT/prune50-int8 --data DATA --prune 0.5 --quantize int8
    edgeprof compress MODEL -o OUT/prune80-cluster16-int8 --data DATA --recipe examples/recipes/prune-cluster-int8.toml
    edgeprof compress MODEL -o OUT/pcqat --data DATA --recipe examples/recipes/pcqat.toml
    edgeprof profile OUT/pcqat/model.tflite --repeat 5 --runs 200 --threads 1       # and the others

Here they run through the Python API in one process (TensorFlow loads once). Every run is kept in the results
store (``$EDGEPROF_STORE``, or ``./.edgeprof/results.db``), so ``edgeprof check`` and ``edgeprof report`` read them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgeprof
from edgeprof import PruneStep, QuantizeStep, Recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipes() -> dict[str, Recipe]:
    """Folder name -> recipe, the float32 export first (the baseline every ratio is against)."""
    return {
        "float32": Recipe(),
        "int8": Recipe(steps=[QuantizeStep(mode="int8")]),
        "dynamic": Recipe(steps=[QuantizeStep(mode="dynamic")]),
        "prune50-int8": Recipe(steps=[PruneStep(sparsity=0.5), QuantizeStep(mode="int8")]),
        "prune80-cluster16-int8": Recipe.from_toml(RECIPES / "prune-cluster-int8.toml"),
        "pcqat": Recipe.from_toml(RECIPES / "pcqat.toml"),
    }


@dataclass
class Row:
    name: str
    recipe: str
    manifest: dict[str, Any]
    compress_seconds: float
    latency_ms: dict[str, float]  # the medians of the group's runs
    peak_rss_kb: int | None  # the largest of the group's runs

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": self.name,
            "recipe": self.recipe,
            "model": m["tflite"]["path"],
            "size_bytes": m["tflite"]["size_bytes"],
            "gzip_bytes": m["tflite"]["gzip_bytes"],
            "raw_ratio": m["sizes"]["raw_ratio"],
            "gzip_ratio": m["sizes"]["gzip_ratio"],
            "headline": m["headline"],
            "metrics": m["tflite"]["metrics"],
            "compress_seconds": self.compress_seconds,
            "p50_ms": self.latency_ms["median"],
            "p90_ms": self.latency_ms["p90"],
            "peak_rss_kb": self.peak_rss_kb,
        }


def add_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The options every example takes."""
    parser.add_argument("--out", default=out, help=f"output folder [{out}]")
    parser.add_argument("--quick", action="store_true", help="less data and training, for a first look and the tests")
    parser.add_argument(
        "--recipes",
        default=",".join(list(recipes())[1:]),
        help="comma-separated recipes to run besides the float32 baseline, or your own recipe files "
        "(my-recipe.toml: its folder is my-recipe) [all: %(default)s]",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs of the float model, then up to 2 to settle [the example's]",
    )
    parser.add_argument(
        "--fine-epochs", type=int, default=None, help="fine-tuning epochs of each recipe step [the recipe's]"
    )


def train(model: Any, x: Any, y: Any, *, rate: float, epochs: int, batch: int, loss: str) -> str:
    """Train ``epochs`` at ``rate``, then up to two more at a tenth of it, to settle; returns "N + M epochs in S s"."""
    import tf_keras as keras

    started = time.perf_counter()
    settle = min(2, epochs)
    for lr, count in ((rate, epochs), (rate / 10, settle)):
        metrics = ["accuracy"] if "categorical" in loss else None
        model.compile(keras.optimizers.Adam(lr), loss, metrics=metrics)
        model.fit(x, y, epochs=count, batch_size=batch, verbose=0)
    return f"{epochs} + {settle} epochs in {time.perf_counter() - started:.0f} s"


def run(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    names: str | None = None,
    quick: bool = False,
    fine_epochs: int | None = None,
    say: Any = None,
    **compress_args: Any,
) -> list[Row]:
    """Compress ``model`` with the float32 baseline and the ``names`` recipes (all) into ``out/NAME/``, profile each
    model on ``local`` with 1 thread in 5 fresh agent processes, stored as one group: ``edgeprof check`` then
    bounds its latency (one process is one noisy draw).

    ``quick`` fine-tunes in batches of 8 instead of the recipes' 32 and measures 3 processes of 50 runs in 0.2 s
    instead of 5 of 200 runs in at least a second; ``fine_epochs`` overrides every step's fine-tuning epochs.
    """
    say = say or (lambda line: print(line, flush=True))
    known = recipes()
    chosen = ["float32", *(n.strip() for n in (names or ",".join(known)).split(",") if n.strip() != "float32")]
    for name in [n for n in chosen if n.endswith(".toml")]:  # your own recipe: its folder is the file's stem
        if not Path(name).is_file():
            raise SystemExit(f"recipe file {name} not found: give a path from the current folder")
        known[Path(name).stem] = Recipe.from_toml(name)
        chosen[chosen.index(name)] = Path(name).stem
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise SystemExit(f"unknown recipe(s) {', '.join(unknown)}: pick from {', '.join(known)}, or give a .toml file")
    measure = (
        {"repeat": 3, "runs": 50, "min_seconds": 0.2, "warmup_seconds": 0.1} if quick else {"repeat": 5, "runs": 200}
    )
    rows = []
    for name in chosen:
        recipe = known[name]
        if quick:  # a tenth of the data: batches of 8 give BatchNormalization's moving averages the steps they need
            recipe = dataclasses.replace(recipe, steps=[_batches_of(8, step) for step in recipe.steps])
        if fine_epochs is not None:
            recipe = dataclasses.replace(recipe, steps=[_epochs_of(fine_epochs, step) for step in recipe.steps])
        say(f"compress: {name} ({recipe.describe()})")
        started = time.perf_counter()
        result = edgeprof.compress(model, recipe, data=data, out=Path(out) / name, **compress_args)
        seconds = time.perf_counter() - started
        say(f"profile: {result.tflite_path}")
        group = edgeprof.profile(result.tflite_path, "local", threads=1, **measure)
        if group.error:
            raise SystemExit(f"profiling {result.tflite_path} stopped: {group.error}")
        peak = max((r.peak_rss_kb for r in group.runs if r.peak_rss_kb), default=None)
        rows.append(Row(name, recipe.describe(), result.manifest, seconds, group.latency_ms, peak))
    (Path(out) / "flagship.json").write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    return rows


def _batches_of(size: int, step: Any) -> Any:
    return dataclasses.replace(step, training=dataclasses.replace(step.training, batch_size=size))


def _epochs_of(epochs: int, step: Any) -> Any:
    return dataclasses.replace(step, training=dataclasses.replace(step.training, epochs=epochs))


def _headline(head: dict[str, Any], value: float) -> str:
    return f"{100 * value:.1f}%" if head["unit"] == "pp" else f"{value:.4g}"


def table(rows: list[Row]) -> str:
    """One line a model: sizes and ratios against the float32 TFLite, the task's headline and its change against the
    float Keras model, the medians of the runs' p50 and p90 latency, the largest peak RSS, the compress wall time."""
    from edgeprof import _table

    head = rows[0].manifest["headline"]
    lines = []
    for r in rows:
        h, s = r.manifest["headline"], r.manifest["sizes"]
        lines.append(
            [
                r.name,
                _table.size(s["tflite_bytes"]),
                _table.size(s["tflite_gzip_bytes"]),
                f"{s['raw_ratio']:.1f}x",
                f"{s['gzip_ratio']:.1f}x",
                _headline(h, h["tflite"]),
                f"{h['change']:+.1f}{' pp' if h['unit'] == 'pp' else ' %'}",
                _table.ms(r.latency_ms["median"]),
                _table.ms(r.latency_ms["p90"]),
                _table.size(r.peak_rss_kb * 1024 if r.peak_rss_kb else None),
                f"{r.compress_seconds:.0f}",
            ]
        )
    label = head["label"]
    headers = ["model", "size", "gzip", "raw", "gzip", label, "change", "p50 ms", "p90 ms", "peak RSS", "compress s"]
    return _table.table(headers, lines)
