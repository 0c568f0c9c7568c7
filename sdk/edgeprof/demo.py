"""The end-to-end demo: train → compress → export → profile on ``local`` → compare.

It trains a small CNN on scikit-learn's handwritten digits (real data that ships inside the package, so nothing is
downloaded), compresses it with 80 % pruning, 16 clusters that keep the zeros and full int8 quantisation, profiles
the float baseline and the compressed model with the device agent (fresh processes, interleaved, judged by
``compare``), and writes every figure to ``summary.json``.
The data split is saved as ``digits.npz`` beside the models, so later compressions of ``digits_cnn.keras`` can be
evaluated on the same test set and compared with the demo's baseline.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _table, _tf
from .compare import compare
from .compress import ClusterStep, PruneStep, QuantizeStep, Recipe, Training, compress
from .data import Dataset, digits, load_data
from .profile import ProfileOptions, profile_models

SEED = 7


def build_cnn(input_shape: tuple[int, ...], classes: int) -> Any:
    """About 16k parameters: two 3×3 convolutions, pooling and two dense layers."""
    keras = _tf.keras()
    layers = keras.layers
    return keras.Sequential(
        [
            layers.Input(input_shape),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(24, activation="relu"),
            layers.Dense(classes),
        ],
        name="digits_cnn",
    )


def train(data: Dataset, *, epochs: int = 40, seed: int = SEED) -> Any:
    keras = _tf.keras()
    keras.utils.set_random_seed(seed)
    model = build_cnn(data.input_shape, data.num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def save_split(data: Dataset, path: Path) -> Path:
    """The train/test split as an ``.npz`` that ``--data`` reads back to the same arrays (and test-set hash)."""
    np.savez_compressed(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    return path


def demo_recipe(seed: int = SEED) -> Recipe:
    return Recipe(
        seed=seed,
        steps=[
            PruneStep(sparsity=0.8, training=Training(epochs=12, learning_rate=1e-3)),
            ClusterStep(clusters=16, preserve_sparsity=True, training=Training(epochs=6, learning_rate=1e-4)),
            QuantizeStep(mode="int8", representative_samples=300),
        ],
    )


@dataclass
class DemoResult:
    out_dir: Path
    summary: dict[str, Any]

    def table(self) -> str:
        rows = []
        for key in ("baseline", "compressed"):
            s = self.summary[key]
            rows.append(
                [
                    key,
                    _table.pct(s["accuracy"]),
                    _table.pct(s["f1_macro"]),
                    _table.size(s["size_bytes"]),
                    _table.size(s["gzip_bytes"]),
                    f"{s['gzip_ratio']:.1f}x",
                    _table.ms(s["p50_ms"]),
                    _table.ms(s["p90_ms"]),
                    _table.size(s["peak_rss_kb"] * 1024 if s["peak_rss_kb"] else None),
                ]
            )
        return _table.table(["model", "accuracy", "F1", "size", "gzip", "ratio", "p50 ms", "p90 ms", "peak RSS"], rows)


def run(
    out: str | Path = "edgeprof-demo",
    *,
    store: Any = "default",
    runs: int = 500,
    repeat: int = 3,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    say = progress or (lambda _m: None)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = digits(seed=SEED)
    # The split is saved, so that the next step (`edgeprof compress ... --data OUT/digits.npz`) is evaluated on the
    # same held-out digits and pairs with this baseline; another split may even contain the training samples.
    data_path = save_split(data, out_dir / "digits.npz")
    data = load_data(data_path)
    say(f"training a CNN on {len(data.x_train)} handwritten digits (scikit-learn), {len(data.x_test)} held out")
    with _tf.quiet_native():
        model = train(data)
    model_path = out_dir / "digits_cnn.keras"
    model.save(model_path)

    say("exporting the float32 baseline")
    baseline = compress(model_path, Recipe(seed=SEED), data, out_dir / "baseline", store=store)
    say(f"compressing: {demo_recipe().describe()}")
    compressed = compress(
        model_path, demo_recipe(), data, out_dir / "compressed", store=store, progress=lambda m: say("  " + m)
    )

    options = ProfileOptions(runs=runs, warmup_runs=50, warmup_seconds=0.5, min_seconds=1.0, threads=1)
    summary: dict[str, Any] = {
        "data": compressed.manifest["data"],
        "recipe": compressed.manifest["recipe"],
        "target": "local",
    }
    say(f"profiling the baseline and the compressed model on local: {repeat} fresh agent process(es) each, interleaved")
    groups = profile_models(
        [baseline.tflite_path, compressed.tflite_path], "local", repeat=repeat, options=options, store=store
    )
    for key, result, group in (("baseline", baseline, groups[0]), ("compressed", compressed, groups[1])):
        m = result.manifest
        first = group.runs[0]
        spread = group.spread
        summary[key] = {
            "model": str(result.tflite_path),
            "sha256": m["tflite"]["sha256"],
            **{k: m["tflite"]["metrics"][k] for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")},
            "size_bytes": m["tflite"]["size_bytes"],
            "gzip_bytes": m["tflite"]["gzip_bytes"],
            "gzip_ratio": baseline.manifest["tflite"]["gzip_bytes"] / m["tflite"]["gzip_bytes"],
            "raw_ratio": baseline.manifest["tflite"]["size_bytes"] / m["tflite"]["size_bytes"],
            "p50_ms": group.latency_ms["median"],  # with several processes, the median of their figures
            "p90_ms": group.latency_ms["p90"],
            "peak_rss_kb": max((r.peak_rss_kb for r in group.runs if r.peak_rss_kb), default=None),  # None: unmeasured
            "runtime": first.runtime,
            "threads": first.measurement.get("threads"),
            "delegate": first.measurement.get("delegate"),
            "runs": group.latency_ms["count"],
            "processes": len(group.runs),
            "spread": dataclasses.asdict(spread) if spread is not None else None,
            "group_id": group.id,
            "profile_ids": [r.id for r in group.runs],
            "compression_id": result.id,
        }
    summary["accuracy_drop_pp"] = 100 * (summary["baseline"]["accuracy"] - summary["compressed"]["accuracy"])
    # Faster or not is compare's verdict on the stored runs (`edgeprof results compare g:A g:B`), never the ratio of
    # two medians: the processes are the unit, paired round by round, so the noise between them is measured.
    speed = compare([r.to_dict() for r in groups[0].runs], [r.to_dict() for r in groups[1].runs])
    summary["latency"] = {
        "verdict": speed.verdict,
        "significant": speed.significant,
        "change": speed.change,
        "ci": [speed.ci_low, speed.ci_high],
        "test": speed.test,
        "band": speed.band_from,
        "compare": "edgeprof results compare "
        + (
            f"g:{groups[0].id} g:{groups[1].id}"
            if groups[0].id is not None
            else f"{groups[0].runs[0].id} {groups[1].runs[0].id}"
        ),
    }
    summary["seconds"] = time.perf_counter() - started
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return DemoResult(out_dir, summary)
