"""``compress()``: model → steps → TFLite → manifest, each step timed and measured."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _table, _tf, data_checks, metrics, tasks
from .._version import __version__
from ..data import Dataset, load_data
from ..errors import CompressionError, DataError
from ..modelfile import ModelFile, gzip_size, sha256_bytes
from . import (
    analysis,
    attribution,
    autoencoder,
    channels,
    cluster,
    distill,
    evaluate,
    export,
    l1,
    latency,
    lowrank,
    models,
    pca,
    prune,
)
from . import quantize as quantize_step
from .recipe import ClusterStep, PruneStep, QuantizeStep, Recipe, Step

Progress = Callable[[str], None]

# kind -> apply(model, step, data, seed=...) -> (model, effect). Steps defined in their own modules add themselves.
STEP_FUNCTIONS: dict[str, Callable[..., tuple[Any, dict[str, Any]]]] = {
    PruneStep.kind: prune.apply,
    ClusterStep.kind: cluster.apply,
    l1.L1Step.kind: l1.apply,
    lowrank.LowRankStep.kind: lowrank.apply,
    distill.DistillStep.kind: distill.apply,
    pca.PCAStep.kind: pca.apply,
    autoencoder.AutoencoderStep.kind: autoencoder.apply,
    channels.ChannelsStep.kind: channels.apply,
}


@dataclass
class CompressionResult:
    """What ``compress`` wrote and measured."""

    out_dir: Path
    manifest: dict[str, Any]
    id: int | None = None

    @property
    def tflite_path(self) -> Path:
        return self.out_dir / "model.tflite"

    @property
    def model_file(self) -> ModelFile:
        t = self.manifest["tflite"]
        return ModelFile(str(self.tflite_path), self.tflite_path.name, t["sha256"], t["size_bytes"], t["gzip_bytes"])

    def summary(self) -> str:
        m = self.manifest
        sizes = m["sizes"]
        src, out = m["source"]["metrics"], m["tflite"]["metrics"]
        runtime = f"   runtime: {m['runtime']['runtime']}" if m.get("runtime") else ""
        lines = [f"recipe: {m['recipe_text']}   ({m['seconds_total']:.1f} s){runtime}"]
        if m.get("task"):
            lines.append(f"task: {m['task']['text']}; loss: {m['task']['loss']}")
        lines.append("")
        lines.append(
            _table.table(
                ["step", "seconds", "effect"],
                [[s["step"], f"{s['seconds']:.1f}", s["effect_text"]] for s in m["steps"]],
                align="lrl",
            )
        )
        lines.append("")
        keys = [k for k in out if k != "samples" and k in src]
        figures = [metrics.figure(k) for k in keys]
        lines.append(
            _table.table(
                ["", "size", "gzip", *(f.label for f in figures)],
                [
                    [
                        "source (float32 TFLite)",
                        _table.size(sizes["source_tflite_bytes"]),
                        _table.size(sizes["source_tflite_gzip_bytes"]),
                        *(_figure_text(src[k], f) for k, f in zip(keys, figures, strict=True)),
                    ],
                    [
                        "compressed TFLite",
                        _table.size(sizes["tflite_bytes"]),
                        _table.size(sizes["tflite_gzip_bytes"]),
                        *(_figure_text(out[k], f) for k, f in zip(keys, figures, strict=True)),
                    ],
                    [
                        "change",
                        f"{sizes['raw_ratio']:.2f}x smaller",
                        f"{sizes['gzip_ratio']:.2f}x smaller",
                        *(_change_text(src[k], out[k], f) for k, f in zip(keys, figures, strict=True)),
                    ],
                ],
            )
        )
        lines.append(_headline_text(m))
        lines += _latency_lines(m)
        lines += _structure_lines(m)
        lines.append("")
        lines.append(
            _table.table(
                ["layer", "type", "params", "sparsity", "unique values", "TFLite dtype", "TFLite sparsity"],
                attribution.table_rows(m["layers"]),
                align="llrrrlr",
            )
        )
        return "\n".join(lines)


def _latency_lines(m: dict[str, Any]) -> list[str]:
    found = m.get("latency") or {}
    if not found.get("measured"):  # said only when it was asked for or turned off, not for every recipe
        reason = found.get("reason") or ""
        sparse = (found.get("xnnpack_sparse") or {}).get("text")
        return [f"latency: not measured ({reason})"] + ([sparse] if sparse else []) if reason[:2] != "no" else []
    c = found.get("conditions") or {}
    lines = [
        f"latency on {found['target']} ({c.get('runtime')}, delegate {c.get('delegate')}, {found['rounds']} "
        f"interleaved rounds): float32 {_table.ms(found['before_median_ms'])} ms → "
        f"{_table.ms(found['after_median_ms'])} ms, {found['text']}; {m['sizes']['raw_ratio']:.2f}x smaller file"
    ]
    sparse = found.get("xnnpack_sparse")
    if sparse:
        lines.append(sparse["text"])
    return lines


def _structure_lines(m: dict[str, Any]) -> list[str]:
    """Per layer, what a step that changed the model's structure did to it: channels kept, MACs and parameters."""
    rows = []
    for step in m["steps"]:
        for name, row in (step.get("effect") or {}).get("layers", {}).items():
            if isinstance(row, dict) and "macs_before" in row:
                rows.append(
                    [
                        name,
                        row["type"],
                        row.get("channels", ""),
                        f"{row['macs_before']:,} → {row['macs_after']:,}",
                        f"{row['params_before']:,} → {row['params_after']:,}",
                    ]
                )
    if not rows:
        return []
    return ["", _table.table(["layer", "type", "channels kept", "MACs", "params"], rows, align="lllrr")]


def _figure_text(value: float, fig: metrics.Figure) -> str:
    return _table.pct(value) if fig.fraction else f"{value:.4g}"


def _change_text(before: float, after: float, fig: metrics.Figure) -> str:
    if fig.fraction:
        return f"{100 * (after - before):+.1f} pp"
    if before:
        return f"{after - before:+.3g} ({100 * (after - before) / abs(before):+.1f} %)"
    return f"{after - before:+.3g}"


def _headline_text(m: dict[str, Any]) -> str:
    head = m.get("headline")
    if not head or head.get("change") is None:
        return ""
    better = "higher" if head["higher_is_better"] else "lower"
    fig = metrics.Figure(head["metric"], head["label"], head["higher_is_better"], head["unit"] == "pp")
    verdict = "better" if head["change"] > 0 else "worse" if head["change"] < 0 else "unchanged"
    unit = f" {head['unit']}" if head["unit"] else ""
    return (
        f"\nheadline: {head['label']} ({better} is better): {_figure_text(head['source'], fig)} → "
        f"{_figure_text(head['tflite'], fig)} ({abs(head['change']):.2f}{unit} {verdict})"
    )


def headline(task: Any, source_metrics: dict[str, float], tflite_metrics: dict[str, float]) -> dict[str, Any]:
    """The task's own figure, before and after, and its change (positive = better) in pp or % of the source's."""
    fig = task.headline()
    before, after = source_metrics.get(fig.key), tflite_metrics.get(fig.key)
    found: dict[str, Any] = {"metric": fig.key, "label": fig.label, "higher_is_better": fig.higher_is_better}
    if before is None or after is None:
        return {**found, "source": before, "tflite": after, "change": None, "unit": ""}
    change, unit = metrics.change(before, after, fig)
    return {**found, "source": before, "tflite": after, "change": change, "unit": unit}


def _effect_text(step: Step, effect: dict[str, Any]) -> str:
    if "text" in effect:
        return str(effect["text"])
    if isinstance(step, PruneStep):
        return f"sparsity {effect['reached_sparsity']:.1%} (target {effect['target_sparsity']:.0%})"
    if isinstance(step, ClusterStep):
        return f"≤ {effect['max_unique_values']} unique values per kernel"
    if isinstance(step, QuantizeStep):
        return effect.get("text", step.mode)
    return effect.get("text", "")


def _parse(tflite: bytes) -> Any:
    from ..tflite import parse

    return parse(tflite)


def _tensor_types(tflite: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for subgraph in _parse(tflite).subgraphs:
        for tensor in subgraph.tensors:
            counts[tensor.dtype] = counts.get(tensor.dtype, 0) + 1
    return counts


def _macs(tflite: bytes) -> int:
    """MACs counted from the exported flatbuffer, as ``inspect`` counts them."""
    from ..tflite.macs import subgraph_macs

    return int(sum(m or 0 for m in subgraph_macs(_parse(tflite).main)))


def _latency(
    recipe: Recipe,
    asked: bool | None,
    target: str,
    source_tflite: bytes,
    tflite: bytes,
    model: Any,
    say: Progress,
) -> dict[str, Any]:
    """The manifest's latency verdict, or why there is none (it costs seconds, so it is measured by default only
    when a step of the recipe is there to make the model faster)."""
    wanted = asked if asked is not None else recipe.wants_latency
    if not wanted:
        why = "turned off" if asked is False or recipe.latency is False else "no step of this recipe is for speed"
        found: dict[str, Any] = {"measured": False, "reason": f"{why}; --latency measures it"}
        if recipe.xnnpack_sparse:
            found["xnnpack_sparse"] = {
                "sparse_tensors": latency.stored_sparse(tflite),
                "taken": None,
                "reason": "not measured",
                "text": "XNNPACK sparse path: not measured (--latency measures it)",
            }
        return found
    say(f"measuring latency on {target}: float32 baseline vs compressed, {latency.ROUNDS} interleaved rounds")
    twin = export.to_tflite(model) if recipe.xnnpack_sparse else None
    return latency.latency_report(source_tflite, tflite, target=target, dense_twin=twin)


def compress(
    model: Any,
    recipe: Recipe | None = None,
    data: str | Path | Dataset | None = None,
    out: str | Path = "compressed",
    *,
    task: str | dict[str, str] | None = None,
    loss: str | Callable | None = None,
    metric: str | Callable | None = None,
    store: Any = "default",
    progress: Progress | None = None,
    custom_objects: models.CustomObjects = None,
    latency: bool | None = None,
    target: str = "local",
) -> CompressionResult:
    """Apply ``recipe`` to a Keras model, export TFLite to ``out/model.tflite`` and write ``out/manifest.json``.

    ``task`` (one of :data:`edgeprof.tasks.TASKS`, or ``{output: task}``), ``loss`` (``loss(y_true, y_pred)``
    for fine-tuning) and ``metric`` (``metric(y_true, y_pred) -> float`` on numpy arrays; its attribute
    ``higher_is_better`` defaults to True) override the recipe's; ``module:function`` strings work too. Without a
    task, it is inferred from the model's output and the data where only one reading fits.
    ``custom_objects``: the code of custom layers in a model file (a dict name → class, or ``"module:attr"`` specs).
    ``latency``: profile the float32 baseline and the compressed model on ``target`` and record ``compare``'s
    verdict (None: the recipe's ``latency``, else only when a step is there for speed: ``channels``, XNNPACK-sparse
    pruning).
    """
    # Refused before TensorFlow loads (the custom-object scope needs tf_keras).
    if data is None:
        raise DataError(
            "compress needs data to fine-tune, calibrate and evaluate on",
            "pass --data data.npz (x_train, y_train, x_test, y_test) or builtin:digits",
        )
    with _tf.quiet_native(), models.custom_object_scope(model, custom_objects):
        return _compress(
            model,
            recipe,
            data,
            out,
            task=task,
            loss=loss,
            metric=metric,
            store=store,
            progress=progress,
            latency=latency,
            target=target,
        )


def _compress(
    model: Any,
    recipe: Recipe | None,
    data: str | Path | Dataset | None,
    out: str | Path,
    *,
    task: Any,
    loss: Any,
    metric: Any,
    store: Any,
    progress: Progress | None,
    latency: bool | None = None,
    target: str = "local",
) -> CompressionResult:
    say = progress or (lambda _msg: None)
    recipe = recipe or Recipe()
    started = time.perf_counter()
    runtime = None
    if recipe.runtime:
        from ..tflite import compat

        runtime = compat.parse_runtime(recipe.runtime)
        if not runtime.known:
            raise compat.UnknownRuntimeError(
                f"edgeprof has no operator table for {runtime}",
                "pick one of: " + ", ".join(str(r) for r in compat.KNOWN_RUNTIMES),
            )
    dataset = load_data(data, seed=recipe.seed)
    data_checks.check_arrays(dataset)  # before the model loads: a NaN costs no TensorFlow start-up
    source, source_info = models.load_model(model)
    if len(source.inputs) != 1:
        raise DataError(
            f"the model takes {len(source.inputs)} inputs; compress feeds one input array",
            "compress a single-input model",
        )
    data_checks.check_input_shape(tuple(source.input_shape[1:]), dataset)
    # The task is a fact about the model's outputs and the data together, so it is resolved here, where both are
    # known, and then travels on the data, which every step already receives.
    resolved, dataset = tasks.resolve(
        source,
        dataclasses.replace(dataset, task=None),
        task if task is not None else recipe.task,
        loss=loss if loss is not None else recipe.loss,
        metric=metric if metric is not None else recipe.metric,
    )
    say(
        f"source: {source_info['path'] or 'in-memory model'} ({source.count_params():,} parameters), "
        f"data: {dataset.name} ({len(dataset.x_train)} train / {len(dataset.x_test)} test), "
        f"task: {resolved.describe()}"
    )
    quantize = recipe.quantize
    if quantize is not None and not any(s.kind == "distill" for s in recipe.steps):  # a student replaces the model
        quantize_step.refuse_op_layers(source, quantize)  # before any step trains for minutes
    source_metrics = evaluate.keras_metrics(source, dataset)
    source_tflite = export.to_tflite(source)

    current = models.clone(source)
    steps_report = []
    for index, step in enumerate(recipe.steps, 1):
        if isinstance(step, QuantizeStep):
            break
        apply = STEP_FUNCTIONS.get(step.kind)
        if apply is None:
            raise CompressionError(f"step kind {step.kind!r} has no implementation", "upgrade edgeprof")
        say(f"step {index}/{len(recipe.steps)}: {step.describe()}")
        t0 = time.perf_counter()
        current, effect = apply(models.clone(current), step, dataset, seed=recipe.seed + index)
        seconds = time.perf_counter() - t0
        steps_report.append(
            {
                "step": step.describe(),
                "kind": step.kind,
                "seconds": seconds,
                "effect": effect,
                "effect_text": _effect_text(step, effect),
                "metrics_after": evaluate.keras_metrics(current, dataset),
            }
        )

    t0 = time.perf_counter()
    if quantize is not None:
        say(f"step {len(recipe.steps)}/{len(recipe.steps)}: {quantize.describe()}")
        current, tflite, effect = quantize_step.apply(current, quantize, dataset, seed=recipe.seed, runtime=runtime)
    else:
        tflite, export_info = export.convert(current, runtime=runtime, sparse=recipe.xnnpack_sparse)
        sparse_text = " with the pruned weights stored sparse (EXPERIMENTAL_SPARSITY)" if recipe.xnnpack_sparse else ""
        effect = {"text": "float32 export" + sparse_text, **export_info}
    types = _tensor_types(tflite)
    effect = {**effect, "tensor_types": types}
    if quantize is not None:
        steps_report.append(
            {
                "step": quantize.describe(),
                "kind": "quantize",
                "seconds": time.perf_counter() - t0,
                "effect": effect,
                "effect_text": _effect_text(quantize, effect),
            }
        )

    say("evaluating the TFLite model in the local agent")
    tflite_metrics = evaluate.tflite_metrics(tflite, dataset, list(current.output_names))
    weights = analysis.tflite_weights(tflite)
    layers = attribution.layer_table(current, weights)

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflite_path = out_dir / "model.tflite"
    tflite_path.write_bytes(tflite)
    model_file = ModelFile(str(tflite_path), tflite_path.name, sha256_bytes(tflite), len(tflite), gzip_size(tflite))
    sizes = {
        "source_tflite_bytes": len(source_tflite),
        "source_tflite_gzip_bytes": gzip_size(source_tflite),
        "tflite_bytes": model_file.size_bytes,
        "tflite_gzip_bytes": model_file.gzip_bytes,
    }
    sizes["raw_ratio"] = sizes["source_tflite_bytes"] / sizes["tflite_bytes"]
    sizes["gzip_ratio"] = sizes["source_tflite_gzip_bytes"] / sizes["tflite_gzip_bytes"]
    latency_section = _latency(recipe, latency, target, source_tflite, tflite, current, say)
    manifest = {
        "edgeprof_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {**source_info, "params": int(source.count_params()), "metrics": source_metrics},
        "data": dataset.describe(),
        "task": {**resolved.to_dict(), "text": resolved.describe()},
        "headline": headline(resolved, source_metrics, tflite_metrics),
        "recipe": recipe.to_dict(),
        "recipe_text": recipe.describe(),
        "steps": steps_report,
        "layers": layers,
        "sparsity": analysis.overall_sparsity(layers),
        "runtime": effect.get("runtime_check"),
        "tflite": {
            **model_file.to_dict(),
            "path": tflite_path.name,
            "metrics": tflite_metrics,
            "tensor_types": types,
            "ops": sorted({str(code) for code in _parse(tflite).opcodes}),
            "weights": weights,
        },
        "sizes": sizes,
        "metrics_delta": metrics.difference(tflite_metrics, source_metrics),
        "latency": latency_section,
        "macs": {"source": _macs(source_tflite), "tflite": _macs(tflite)},
        "seconds_total": time.perf_counter() - started,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    result = CompressionResult(out_dir, manifest)
    if store is not None:
        from ..store import using_store

        with using_store(store) as db:
            result.id = db.add_compression(manifest, model_file.to_dict())
    return result
