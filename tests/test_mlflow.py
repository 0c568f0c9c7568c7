"""``--mlflow``: runs logged to a real MLflow tracking server (scripts/services/mlflow.sh: ``mlflow server`` with a
SQLite backend and a local artifact store) and read back through MLflow's own client; a server that is down costs
the upload, never the local result."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path

import pytest

from edgeprof.store import open_store
from tests.conftest import run_cli

QUICK = ["--runs", "20", "--min-seconds", "0", "--warmup-seconds", "0", "--idle-seconds", "0"]


@pytest.fixture()
def mlflow_uri(monkeypatch: pytest.MonkeyPatch) -> str:
    uri = os.environ.get("EDGEPROF_TEST_MLFLOW_URI")
    if not uri:
        pytest.skip(
            os.environ.get("EDGEPROF_TEST_MLFLOW_SKIP")
            or "no MLflow server: run scripts/test, or source scripts/lib/venv.sh and scripts/services/mlflow.sh"
        )
    monkeypatch.setenv("EDGEPROF_MLFLOW_EXPERIMENT", f"edgeprof-test-{uuid.uuid4().hex[:8]}")  # one per test
    return uri


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str) -> list:
    client = _client(uri)
    experiment = client.get_experiment_by_name(os.environ["EDGEPROF_MLFLOW_EXPERIMENT"])
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_profile_logs_options_figures_tags_and_artifacts(mlflow_uri: str, models: Path) -> None:
    done = run_cli("profile", str(models / "float.tflite"), *QUICK, "--threads", "1", "--mlflow", mlflow_uri, "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # stdout stays JSON: MLflow's own lines are kept off it
    assert f"logged profile run {record['id']} to MLflow run" in done.stderr
    (run,) = _runs(mlflow_uri)
    data = run.data
    assert data.params["option.runs"] == "20" and data.params["threads"] == "1"
    assert data.params["target"] == "local" and data.params["model.name"] == "float.tflite"
    assert data.metrics["latency_median_ms"] == pytest.approx(record["latency_ms"]["median"])
    assert data.metrics["inferences"] == record["latency_ms"]["count"]
    assert data.metrics["peak_rss_kb"] == record["memory"]["peak_rss_kb"]
    assert data.tags["target"] == "local" and data.tags["runtime"].startswith("ai_edge_litert ")
    assert data.tags["device"] == (record["device"].get("board") or record["device"]["machine"])
    assert data.tags["edgeprof.kind"] == "profile" and data.tags["edgeprof.store_run"] == str(record["id"])
    assert data.tags["model.sha256"] == record["model"]["sha256"]
    client = _client(mlflow_uri)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"record.json", "summary.txt", "float.tflite", "report.html"} <= names, names
    local = client.download_artifacts(run.info.run_id, "float.tflite")
    assert Path(local).read_bytes() == (models / "float.tflite").read_bytes()
    sent = json.loads(Path(client.download_artifacts(run.info.run_id, "record.json")).read_text())
    assert sent["latency_ms"] == record["latency_ms"]


@pytest.mark.slow
def test_compress_logs_the_recipe_as_params(mlflow_uri: str, models: Path, tmp_path: Path) -> None:
    done = run_cli("compress", str(models / "cnn.keras"), "-o", str(tmp_path / "int8"), "--data",
                   str(models / "digits.npz"), "--quantize", "int8", "--mlflow", mlflow_uri)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = _runs(mlflow_uri)
    data = run.data
    assert data.params["step1.quantize.mode"] == "int8" and "int8" in data.params["recipe"]
    assert data.tags["edgeprof.kind"] == "compression"
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert data.metrics["tflite_accuracy"] == pytest.approx(manifest["tflite"]["metrics"]["accuracy"])
    assert data.metrics["tflite_gzip_bytes"] == manifest["sizes"]["tflite_gzip_bytes"]
    names = {a.path for a in _client(mlflow_uri).list_artifacts(run.info.run_id)}
    assert {"manifest.json", "model.tflite", "summary.txt"} <= names, names


def test_export_sends_stored_runs_once(mlflow_uri: str, models: Path, isolated: Path) -> None:
    import edgeprof

    for _ in range(2):
        edgeprof.profile(models / "float.tflite", runs=20, min_seconds=0, warmup_seconds=0, idle_seconds=0)
    first = run_cli("results", "export", "--mlflow", mlflow_uri)
    assert first.returncode == 0 and "sent 2 runs to MLflow" in first.stderr, first.stderr
    again = run_cli("results", "export", "--mlflow", mlflow_uri)
    assert "sent 0 runs" in again.stderr and "2 were there already" in again.stderr, again.stderr
    runs = _runs(mlflow_uri)
    assert sorted(r.data.tags["edgeprof.store_run"] for r in runs) == ["1", "2"]
    stored = open_store().profile(1)["record"]
    (one,) = [r for r in runs if r.data.tags["edgeprof.store_run"] == "1"]
    assert one.data.metrics["latency_p90_ms"] == pytest.approx(stored["latency_ms"]["p90"])
    assert one.info.start_time // 1000 == int(
        __import__("datetime").datetime.fromisoformat(stored["created_at"]).timestamp()
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_costs_the_upload_not_the_result(models: Path) -> None:
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{_closed_port()}"
    done = run_cli("profile", str(models / "float.tflite"), *QUICK, "--mlflow", uri, timeout=120)
    assert done.returncode == 2 and "stored as profile run 1" in done.stdout
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"edgeprof: error: MLflow at {uri} could not be reached: connection refused" in done.stderr
    assert f"send it later with 'edgeprof results export --mlflow {uri}'" in done.stderr
    assert open_store().profile(1)["record"]["latency_ms"]["count"] >= 20
    export = run_cli("results", "export", "--mlflow", uri, timeout=120)
    assert export.returncode == 2 and "could not be reached" in export.stderr


def test_a_group_is_one_parent_run_with_a_nested_run_per_process(mlflow_uri: str, models: Path) -> None:
    """profile --repeat N --mlflow and results export both send a group as one parent run (the group's figures, as
    views.group_lines shows them) with one nested run per process; an export never sends either twice."""
    import edgeprof

    edgeprof.profile(models / "float.tflite", repeat=2, runs=20, min_seconds=0, warmup_seconds=0, idle_seconds=0)
    exported = run_cli("results", "export", "--mlflow", mlflow_uri)
    assert exported.returncode == 0 and "sent 2 runs to MLflow" in exported.stderr, exported.stderr
    done = run_cli("profile", str(models / "float.tflite"), *QUICK, "--repeat", "2", "--mlflow", mlflow_uri)
    assert done.returncode == 0 and "logged group g:2 (2 runs) to MLflow run" in done.stderr, done.stderr
    again = run_cli("results", "export", "--mlflow", mlflow_uri)
    assert "sent 0 runs" in again.stderr and "4 were there already" in again.stderr, again.stderr
    runs = _runs(mlflow_uri)
    parents = {r.data.tags["edgeprof.store_group"]: r for r in runs if r.data.tags["edgeprof.kind"] == "profile-group"}
    assert sorted(parents) == ["1", "2"], [r.data.tags for r in runs]
    store = open_store()
    for group_id, parent in parents.items():
        group = store.group(int(group_id))
        medians = sorted(r["record"]["latency_ms"]["median"] for r in group["runs"])
        assert parent.data.metrics["runs"] == 2 and parent.data.metrics["latency_median_ms"] == pytest.approx(
            sum(medians) / 2
        )
        assert parent.data.metrics["spread_max_over_min"] == pytest.approx(medians[1] / medians[0] - 1)
        assert parent.data.tags["energy.source"] == "unavailable" and parent.data.tags["group"] == f"g:{group_id}"
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        stored = sorted(str(r["id"]) for r in group["runs"])
        assert sorted(c.data.tags["edgeprof.store_run"] for c in children) == stored
        assert sorted(c.data.tags["group.index"] for c in children) == ["1", "2"]
        summary = _client(mlflow_uri).download_artifacts(parent.info.run_id, "summary.txt")
        assert f"group g:{group_id}: 2 processes" in Path(summary).read_text()
