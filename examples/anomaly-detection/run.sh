#!/usr/bin/env bash
# Anomaly detection with MLPerf Tiny's dense autoencoder on Fashion-MNIST: train it, compress it with the flagship
# recipes, profile every model on this machine ('local') in fresh
# agent processes (5; 3 with --quick), then check one model against budget.toml: the PCQAT model, or the last of
# --recipes (its latency limit applies to the 95 % upper bound over those processes).
# Exit code: edgeprof check's (0 every limit met, 1 a limit broken, 2 an error).
# Usage: examples/anomaly-detection/run.sh [--out DIR] [--quick] [--recipes int8,pcqat,my.toml] [--seed N] [--epochs N] [--fine-epochs N]   (DIR: autoencoder)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../scripts/lib/venv.sh"   # ensure_venv, apt_install
ensure_venv "compress,dev"                   # the checkout's .venv, as ./scripts/test makes it
apt_install dataset-fashion-mnist || exit 2

source "$HERE/../common/check.sh"           # run_and_check
run_and_check "$HERE/autoencoder.py" autoencoder "$HERE/budget.toml" "$@"
