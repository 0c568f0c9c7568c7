#!/usr/bin/env bash
# Keyword spotting with MLPerf Tiny's DS-CNN on speech synthesised by espeak-ng: train it, compress it with the
# flagship recipes, profile every model on this machine ('local') in fresh
# agent processes (5; 3 with --quick), then check one model against budget.toml: the PCQAT model, or the last of
# --recipes (its latency limit applies to the 95 % upper bound over those processes).
# Exit code: edgeprof check's (0 every limit met, 1 a limit broken, 2 an error).
# Usage: examples/keyword-spotting/run.sh [--out DIR] [--quick] [--recipes int8,pcqat,my.toml] [--seed N] [--epochs N] [--fine-epochs N]   (DIR: kws)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../scripts/lib/venv.sh"   # ensure_venv, apt_install
ensure_venv "compress,dev"                   # the checkout's .venv, as ./scripts/test makes it
apt_install espeak-ng || exit 2

source "$HERE/../common/check.sh"           # run_and_check
run_and_check "$HERE/kws.py" kws "$HERE/budget.toml" "$@"
