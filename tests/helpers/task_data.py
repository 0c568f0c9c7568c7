"""Synthetic data for the task tests (numpy only, so the test process never imports TensorFlow).

The anomaly-detection set imitates MLPerf Tiny's: 5 frames × 128 bins per sample, "normal" samples are smooth
spectra, anomalies the same with a band of bins pulled far off; the autoencoder trains on normal samples only and
the test split holds both, labelled 0 (normal) and 1 (anomalous).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def anomaly_detection(path: Path, *, train: int = 240, normal: int = 60, anomalous: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    bins = np.linspace(0.0, 1.0, 128)

    def smooth(n: int) -> np.ndarray:
        level = rng.uniform(40.0, 55.0, (n, 1, 1))
        frequency = rng.uniform(0.5, 2.0, (n, 5, 1))
        phase = rng.uniform(0.0, 2 * np.pi, (n, 5, 1))
        return (level + 6.0 * np.sin(2 * np.pi * frequency * bins + phase))[..., None].astype(np.float32)

    broken = smooth(anomalous)
    start = rng.integers(0, 96, anomalous)
    for i, s in enumerate(start):
        broken[i, :, s : s + 32, 0] -= 30.0
    x_test = np.concatenate([smooth(normal), broken])
    y_test = np.r_[np.zeros(normal, np.int64), np.ones(anomalous, np.int64)]
    np.savez(path, x_train=smooth(train), x_test=x_test, y_test=y_test)
    return path


def tabular(n: int = 400, features: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and a fixed random linear map of them, the ground truth every small task model learns from."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    weights = rng.normal(size=(features, 8)).astype(np.float32)
    return x, x @ weights
