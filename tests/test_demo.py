"""The demo a newcomer runs first: its promises hold and its summary matches what was measured and stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprof.modelfile import open_tflite
from edgeprof.store import open_store
from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, isolated: Path) -> None:
    out = tmp_path / "demo"
    done = run_cli("demo", "--out", str(out), "--runs", "200")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    base, small = summary["baseline"], summary["compressed"]
    # The promise: at least 8x smaller gzipped, at most 1 percentage point less accurate.
    assert base["gzip_bytes"] / small["gzip_bytes"] >= 8
    assert base["accuracy"] - small["accuracy"] <= 0.01
    # The figures are those of the files on disk ...
    for entry in (base, small):
        info, _ = open_tflite(entry["model"])
        assert (info.size_bytes, info.gzip_bytes, info.sha256) == (
            entry["size_bytes"],
            entry["gzip_bytes"],
            entry["sha256"],
        )
    # ... and of the runs in the store.
    with open_store(isolated / "results.db") as db:
        for entry in (base, small):
            stored = db.profile(entry["profile_id"])
            assert stored["model_sha256"] == entry["sha256"]
            assert stored["median_ms"] == pytest.approx(entry["p50_ms"])
            assert stored["p90_ms"] == pytest.approx(entry["p90_ms"])
            assert stored["peak_rss_kb"] == entry["peak_rss_kb"]
        compressions = {row["id"]: row for row in db.compressions()}
        assert compressions[small["compression_id"]]["accuracy_tflite"] == pytest.approx(small["accuracy"])
    # The table the user sees carries the same figures.
    assert f"{small['gzip_ratio']:.1f}x" in done.stdout
    assert "p90 ms" in done.stdout
