"""Image classification: MobileNetV1 (alpha 0.25, MLPerf Tiny's visual-wake-words network) on Fashion-MNIST.

    python examples/image-classification/mobilenet.py --out mobilenet
    python examples/image-classification/mobilenet.py --out mobilenet --quick    # fewer images and epochs

Real images: Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist package (28x28 grey, padded to 32x32 so
that MobileNetV1's five stride-2 stages end on one pixel). Writes OUT/fashion.npz (x_train, y_train, x_test,
y_test), OUT/mobilenet_v1.keras (the trained float model), OUT/<recipe>/model.tflite + manifest.json for each
recipe, OUT/flagship.json, and prints one table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import fashion_mnist
import flagship
import mlperf_tiny


def images(x: np.ndarray) -> np.ndarray:
    """uint8 28x28 -> float32 32x32x1 in [0, 1]."""
    return (np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None] / 255.0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    flagship.add_arguments(parser, "mobilenet")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Small batches in quick mode: BatchNormalization's moving averages need several hundred steps.
    per_class, test_per_class, epochs, batch = (100, 30, 8, 8) if args.quick else (1000, 500, 10, 32)
    epochs = epochs if args.epochs is None else args.epochs

    x_train, y_train, x_test, y_test = fashion_mnist.load()
    train = fashion_mnist.balanced(y_train, per_class, seed=args.seed)
    test = fashion_mnist.balanced(y_test, test_per_class, seed=args.seed)
    x_train, y_train, x_test, y_test = images(x_train[train]), y_train[train], images(x_test[test]), y_test[test]
    np.savez_compressed(out / "fashion.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"data: {len(x_train)} training and {len(x_test)} test images of Fashion-MNIST, 10 classes", flush=True)

    import tf_keras as keras

    keras.utils.set_random_seed(args.seed)
    model = mlperf_tiny.mobilenet_v1(x_train.shape[1:], len(fashion_mnist.CLASSES), alpha=0.25)
    loss = "sparse_categorical_crossentropy"
    trained = flagship.train(model, x_train, y_train, rate=2e-3, epochs=epochs, batch=batch, loss=loss)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(
        f"model: MobileNetV1 alpha 0.25, {model.count_params():,} parameters, trained {trained}: "
        f"{accuracy:.1%} on the test images",
        flush=True,
    )
    model.save(out / "mobilenet_v1.keras")

    rows = flagship.run(
        out / "mobilenet_v1.keras",
        out / "fashion.npz",
        out,
        names=args.recipes,
        quick=args.quick,
        fine_epochs=args.fine_epochs,
    )
    print()
    print(flagship.table(rows))


if __name__ == "__main__":
    main()
