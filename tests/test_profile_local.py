"""Profiling on the built-in local target: real agent process, real LiteRT, real SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import edgeprof
from edgeprof.store import open_store
from tests.conftest import run_cli

QUICK = {"runs": 30, "min_seconds": 0.0, "warmup_seconds": 0.0, "warmup_runs": 3}


def test_profile_reports_spread_and_conditions(models: Path, isolated: Path) -> None:
    result = edgeprof.profile(models / "float.tflite", "local", threads=1, **QUICK)
    lat = result.latency_ms
    assert lat["count"] >= 30
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["std"] >= 0
    # The reported statistics are those of the samples we got back.
    samples = sorted(result.samples_ms)
    assert samples[0] == pytest.approx(lat["min"], abs=1e-6)
    assert samples[-1] == pytest.approx(lat["max"], abs=1e-6)
    m = result.measurement
    assert m["runtime"]["name"] == "ai_edge_litert"
    assert m["threads"] == 1 and m["delegate"] == "xnnpack"
    assert m["init_ms"] > 0 and m["first_inference_ms"] > 0
    assert m["memory"]["peak_rss_kb"] >= m["memory"]["rss_after_load_kb"] > 0
    assert result.device["machine"]
    assert "median" in result.summary() and "p90" in result.summary()


def test_very_many_runs_keep_a_subset_and_exact_statistics(models: Path) -> None:
    result = edgeprof.profile(
        models / "float.tflite", runs=3000, min_seconds=0, warmup_seconds=0, max_samples=500, store=None
    )
    m = result.measurement
    assert m["latency_ms"]["count"] == 3000
    assert m["samples_subsampled"] and len(m["samples_ms"]) == 500
    assert sum(m["histogram"]["counts"]) == 3000
    assert m["histogram"]["edges_ms"][0] == pytest.approx(m["latency_ms"]["min"])


def test_profile_is_stored_and_listed(models: Path, isolated: Path) -> None:
    result = edgeprof.profile(models / "int8.tflite", **QUICK)
    assert result.id is not None
    db_path = isolated / "results.db"
    with sqlite3.connect(db_path) as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        row = conn.execute(
            "SELECT model_name, target, median_ms, record FROM profiles WHERE id=?", (result.id,)
        ).fetchone()
    assert mode == "wal"
    assert row[0] == "int8.tflite" and row[1] == "local"
    assert row[2] == pytest.approx(result.latency_ms["median"])
    assert json.loads(row[3])["samples_ms"] == result.samples_ms
    listed = run_cli("results", "list")
    assert listed.returncode == 0
    assert "int8.tflite" in listed.stdout and "local" in listed.stdout


def test_cli_profile_json_has_every_figure(models: Path) -> None:
    done = run_cli(
        "profile",
        str(models / "float.tflite"),
        "--runs",
        "20",
        "--min-seconds",
        "0.05",
        "--warmup-seconds",
        "0",
        "--threads",
        "2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for key in ("min", "median", "mean", "p90", "p99", "max", "std"):
        assert key in data["latency_ms"]
    for key in ("init_ms", "first_inference_ms", "runtime", "delegate", "threads", "memory", "device"):
        assert key in data
    assert data["threads"] == 2
    assert data["memory"]["peak_rss_kb"] > 0


def test_store_option_writes_where_asked(models: Path, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere" / "team.db"
    done = run_cli(
        "profile",
        str(models / "float.tflite"),
        "--runs",
        "5",
        "--min-seconds",
        "0",
        "--warmup-seconds",
        "0",
        "--store",
        str(store),
    )
    assert done.returncode == 0, done.stderr
    with open_store(store) as db:
        assert len(db.profiles()) == 1


def test_unchanged_model_is_not_uploaded_twice(models: Path) -> None:
    from edgeprof.deploy import connect
    from edgeprof.modelfile import open_tflite
    from edgeprof.targets import local_target

    info, data = open_tflite(models / "dynamic.tflite")
    with connect(local_target()) as board:
        board.ensure_model(data, info.sha256)
        sent = board.bytes_sent
        board.ensure_model(data, info.sha256)
        assert board.bytes_sent == sent


def test_no_delegate_option_is_honoured(models: Path) -> None:
    result = edgeprof.profile(models / "float.tflite", delegate="none", store=None, **QUICK)
    assert result.measurement["delegate"] == "none"


def test_real_inputs_are_checked_against_the_model(models: Path, tmp_path: Path) -> None:
    import numpy as np

    good = tmp_path / "x.npy"
    np.save(good, np.random.rand(4, 8, 8, 1).astype("float32"))
    edgeprof.profile(models / "float.tflite", inputs=good, store=None, **QUICK)
    with pytest.raises(edgeprof.EdgeprofError, match="does not exist"):
        edgeprof.profile(models / "float.tflite", inputs=tmp_path / "missing.npy", store=None, **QUICK)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.random.rand(4, 28, 28).astype("float32"))
    with pytest.raises(edgeprof.EdgeprofError, match=r"expects samples of shape \[8, 8, 1\]"):
        edgeprof.profile(models / "float.tflite", inputs=bad, store=None, **QUICK)
