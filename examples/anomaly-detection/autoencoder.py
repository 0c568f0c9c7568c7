"""Anomaly detection: MLPerf Tiny's dense autoencoder on Fashion-MNIST, one class normal, the nine others anomalies.

    python examples/anomaly-detection/autoencoder.py --out autoencoder
    python examples/anomaly-detection/autoencoder.py --out autoencoder --quick     # fewer images and epochs
    python examples/anomaly-detection/autoencoder.py --normal trouser               # another class as the normal one

Real images: Zalando's Fashion-MNIST from Debian's dataset-fashion-mnist package. The autoencoder learns to
reconstruct the normal class only (as MLPerf Tiny's learns normal machine sounds); an image it reconstructs badly is
an anomaly. It is scored as MLPerf Tiny scores anomaly detection: the ROC AUC of each test image's reconstruction
error against its label (0 normal, 1 anomalous). Writes OUT/fashion-ad.npz (x_train: normal images only; x_test,
y_test), OUT/ad_autoencoder.keras, OUT/<recipe>/model.tflite + manifest.json for each recipe, OUT/flagship.json.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    flagship.add_arguments(parser, "autoencoder")
    parser.add_argument("--normal", default="sneaker", choices=fashion_mnist.CLASSES, help="the normal class")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_test, epochs, batch = (1500, 300, 15, 16) if args.quick else (6000, 1000, 30, 64)
    epochs = epochs if args.epochs is None else args.epochs

    rng = np.random.default_rng(args.seed)
    normal = fashion_mnist.CLASSES.index(args.normal)
    x_train, y_train, x_test, y_test = fashion_mnist.load()
    normal_train = x_train[y_train == normal][:n_train]
    normal_test = x_test[y_test == normal][:n_test]
    others = x_test[y_test != normal]
    anomalies = others[rng.choice(len(others), n_test, replace=False)]
    x_train = (normal_train[..., None] / 255.0).astype(np.float32)
    x_test = (np.concatenate([normal_test, anomalies])[..., None] / 255.0).astype(np.float32)
    y_test = np.r_[np.zeros(len(normal_test)), np.ones(len(anomalies))].astype(np.int64)
    np.savez_compressed(out / "fashion-ad.npz", x_train=x_train, x_test=x_test, y_test=y_test)
    print(
        f"data: {len(x_train)} {args.normal} images to train on; {len(normal_test)} normal and {len(anomalies)} "
        f"anomalous test images (the other nine classes)",
        flush=True,
    )

    import tf_keras as keras
    from sklearn.metrics import roc_auc_score

    keras.utils.set_random_seed(args.seed)
    model = mlperf_tiny.ad_autoencoder(x_train.shape[1:])
    trained = flagship.train(model, x_train, x_train, rate=1e-3, epochs=epochs, batch=batch, loss="mse")
    errors = np.mean((model.predict(x_test, verbose=0) - x_test) ** 2, axis=(1, 2, 3))
    print(
        f"model: MLPerf Tiny AD autoencoder, {model.count_params():,} parameters, trained {trained}: "
        f"ROC AUC {roc_auc_score(y_test, errors):.3f}",
        flush=True,
    )
    model.save(out / "ad_autoencoder.keras")

    # No y_train and an output shaped like the input: edgeprof infers the reconstruction task, scored by ROC AUC.
    rows = flagship.run(
        out / "ad_autoencoder.keras",
        out / "fashion-ad.npz",
        out,
        names=args.recipes,
        quick=args.quick,
        fine_epochs=args.fine_epochs,
    )
    print()
    print(flagship.table(rows))


if __name__ == "__main__":
    main()
