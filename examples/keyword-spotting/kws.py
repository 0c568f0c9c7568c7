"""Keyword spotting: MLPerf Tiny's DS-CNN on synthesised speech, compressed with the flagship recipes and profiled.

    python examples/keyword-spotting/kws.py --out kws
    python examples/keyword-spotting/kws.py --out kws --quick    # fewer clips and epochs, for a first look

Writes OUT/kws.npz (the MFCCs: x_train, y_train, x_test, y_test), OUT/ds_cnn.keras (the trained float model),
OUT/<recipe>/model.tflite + manifest.json for each recipe, OUT/flagship.json, and prints one table. The speech is
synthesised by espeak-ng (see examples/common/synth_speech.py): it is not recorded speech, so the accuracy here says
how compression treats this model, not how it would do on real speakers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import flagship
import mlperf_tiny
import synth_speech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    flagship.add_arguments(parser, "kws")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # BatchNormalization's moving averages need a few hundred steps before the model works in inference mode
    per_class, test_per_class, epochs, batch = (60, 20, 15, 16) if args.quick else (300, 60, 25, 32)
    epochs = epochs if args.epochs is None else args.epochs

    started = time.perf_counter()
    x_train, y_train, x_test, y_test = synth_speech.keyword_spotting(per_class, test_per_class, seed=args.seed)
    np.savez_compressed(out / "kws.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(
        f"data: {len(x_train)} training and {len(x_test)} test clips of espeak-ng speech (test speakers held out), "
        f"12 classes, MFCCs {x_train.shape[1:]}, in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    import tf_keras as keras

    keras.utils.set_random_seed(args.seed)
    model = mlperf_tiny.ds_cnn(x_train.shape[1:], len(synth_speech.CLASSES))
    loss = "sparse_categorical_crossentropy"
    trained = flagship.train(model, x_train, y_train, rate=1e-3, epochs=epochs, batch=batch, loss=loss)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(
        f"model: DS-CNN, {model.count_params():,} parameters, trained {trained}: "
        f"{accuracy:.1%} on the held-out speakers",
        flush=True,
    )
    model.save(out / "ds_cnn.keras")

    rows = flagship.run(
        out / "ds_cnn.keras", out / "kws.npz", out, names=args.recipes, quick=args.quick, fine_epochs=args.fine_epochs
    )
    print()
    print(flagship.table(rows))


if __name__ == "__main__":
    main()
