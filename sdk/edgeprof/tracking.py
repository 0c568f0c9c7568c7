"""Runs where teams already keep them: each compression and profile logged to an MLflow tracking server.

``--mlflow URI`` (or ``EDGEPROF_MLFLOW_URI``) on ``compress`` and ``profile``, and ``edgeprof results export
--mlflow URI`` for runs already stored. One MLflow run per edgeprof run, in the experiment ``edgeprof`` (or
``EDGEPROF_MLFLOW_EXPERIMENT``): the recipe and the options as params, the figures as metrics (latency in ms, peak
RSS, energy per inference and its 95 % interval, accuracy, sizes), tags for the target, runtime, device and model,
and as artifacts the full record (or manifest), the model file when it is still where the run found it, the text
summary and the HTML report of that model's runs. The local store is always written first: a server that is down
or refuses a run costs only the upload, with a :class:`TrackingError` that says how to send the run later. Runs
carry ``edgeprof.store_run`` tags, so an export never sends a stored run twice.

The client is ``mlflow-skinny`` (``pip install 'edgeprof[mlflow]'``): no server stack is installed with it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import TrackingError

log = logging.getLogger("edgeprof.tracking")

ENV_URI = "EDGEPROF_MLFLOW_URI"
ENV_EXPERIMENT = "EDGEPROF_MLFLOW_EXPERIMENT"
EXPERIMENT = "edgeprof"
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_PARAM = 6000


def uri_from(option: str | None) -> str | None:
    """The tracking URI: the option, else ``$EDGEPROF_MLFLOW_URI``, else None (no tracking)."""
    return option or os.environ.get(ENV_URI) or None


def _key(name: str) -> str:
    return _KEY.sub("_", name)[:250]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value, 1):
            _flat(f"{prefix}.{i}", item, out)
    else:
        out[prefix] = value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def profile_fields(record: dict[str, Any]) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, tags) of a profile record."""
    params: dict[str, Any] = {}
    _flat("option", record.get("options") or {}, params)
    params.update(
        {
            "model.name": (record.get("model") or {}).get("name"),
            "target": record.get("target"),
            "threads": record.get("threads") or "default",
            "delegate": record.get("delegate"),
            "inputs": record.get("inputs"),
        }
    )
    metrics: dict[str, float] = {}
    for key, value in (record.get("latency_ms") or {}).items():
        if _number(value) is not None:
            metrics[f"latency_{key}_ms" if key != "count" else "inferences"] = _number(value)  # type: ignore[assignment]
    for key in ("init_ms", "first_inference_ms", "measured_seconds"):
        if _number(record.get(key)) is not None:
            metrics[key] = _number(record.get(key))  # type: ignore[assignment]
    memory = record.get("memory") or {}
    if _number(memory.get("peak_rss_kb")) is not None:
        metrics["peak_rss_kb"] = _number(memory["peak_rss_kb"])  # type: ignore[assignment]
    energy = record.get("energy") or {}
    if energy.get("available"):
        for key, name in (
            ("mj_per_inference", "energy_mj_per_inference"),
            ("mj_per_inference_u95", "energy_mj_per_inference_u95"),
            ("mj_per_inference_gross", "energy_mj_per_inference_gross"),
            ("above_idle_w", "energy_above_idle_w"),
            ("idle_w", "energy_idle_w"),
            ("mean_w", "energy_mean_w"),
        ):
            if _number(energy.get(key)) is not None:
                metrics[name] = _number(energy[key])  # type: ignore[assignment]
    accuracy = record.get("accuracy") or {}
    for side in ("board", "host"):
        value = _number((accuracy.get(side) or {}).get("accuracy"))
        if value is not None:
            metrics[f"accuracy_{side}"] = value
    runtime = record.get("runtime") or {}
    device = record.get("device") or {}
    tags = {
        "edgeprof.kind": "profile",
        "edgeprof.version": str(record.get("edgeprof_version") or __version__),
        "target": str(record.get("target")),
        "runtime": " ".join(str(v) for v in (runtime.get("name"), runtime.get("version")) if v),
        "delegate": str(record.get("delegate")),
        "device": str(device.get("board") or device.get("machine") or "unknown"),
        "device.hostname": str(device.get("hostname") or "unknown"),
        "model.sha256": str((record.get("model") or {}).get("sha256")),
        "energy.source": str(energy.get("source") or energy.get("sensor") or "none")
        if energy.get("available")
        else "unavailable",
    }
    return _strings(params), metrics, tags


def compression_fields(manifest: dict[str, Any]) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, tags) of a compression manifest: the recipe's steps as params."""
    recipe = manifest.get("recipe") or {}
    params: dict[str, Any] = {"recipe": manifest.get("recipe_text", "")}
    for i, step in enumerate(recipe.get("steps") or [], 1):
        kind = step.get("kind", "step")
        for key, value in step.items():
            if key != "kind":
                params[f"step{i}.{kind}.{key}"] = value
    for key in ("seed", "runtime", "task", "loss", "metric"):
        if recipe.get(key) is not None:
            params[f"recipe.{key}"] = recipe[key]
    metrics: dict[str, float] = {}
    for side in ("source", "tflite"):
        for key, value in ((manifest.get(side) or {}).get("metrics") or {}).items():
            if _number(value) is not None:
                metrics[f"{side}_{key}"] = _number(value)  # type: ignore[assignment]
    for key, value in (manifest.get("sizes") or {}).items():
        if _number(value) is not None:
            metrics[key] = _number(value)  # type: ignore[assignment]
    if _number(manifest.get("seconds_total")) is not None:
        metrics["seconds_total"] = _number(manifest["seconds_total"])  # type: ignore[assignment]
    tags = {
        "edgeprof.kind": "compression",
        "edgeprof.version": str(manifest.get("edgeprof_version") or __version__),
        "model.sha256": str((manifest.get("tflite") or {}).get("sha256")),
        "source.sha256": str((manifest.get("source") or {}).get("sha256")),
        "runtime": str((manifest.get("runtime") or {}).get("runtime") or "any"),
    }
    return _strings(params), metrics, tags


def _strings(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[_key(key)] = text[:_MAX_PARAM]
    return out


class Tracker:
    """One MLflow tracking server (``uri``), checked before anything is sent."""

    def __init__(self, uri: str, experiment: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.uri = uri
        self.experiment_name = experiment or os.environ.get(ENV_EXPERIMENT) or EXPERIMENT
        try:
            import mlflow  # noqa: F401
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError(
                "--mlflow needs the MLflow client, which is not installed", "pip install 'edgeprof[mlflow]'"
            ) from None
        # One quick try, not MLflow's default minutes of retries: the local result is already safe.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(timeout_s)))
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # stdout is for --json
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id = self._call(self._experiment, "be reached")

    def _call(self, work: Callable[[], Any], doing: str) -> Any:
        try:
            return work()
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; each becomes one line
            raise TrackingError(
                f"MLflow at {self.uri} could not {doing}: {_why(exc)}",
                "check that the server runs (mlflow server ...) and the URI; the run is kept in the local store: "
                f"send it later with 'edgeprof results export --mlflow {self.uri}'",
            ) from None

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.experiment_name)

    def already_sent(self, store: str, kind: str) -> set[int]:
        """Ids of stored runs from ``store`` already in this experiment (their ``edgeprof.store_run`` tag)."""

        def search() -> set[int]:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`edgeprof.store` = '{store}' and tags.`edgeprof.kind` = '{kind}'",
                max_results=50000,
            )
            return {int(r.data.tags["edgeprof.store_run"]) for r in runs if "edgeprof.store_run" in r.data.tags}

        return set(self._call(search, "list the runs already sent"))

    def log(
        self,
        name: str,
        params: dict[str, str],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: dict[str, bytes | Path],
        *,
        created_ms: int | None = None,
    ) -> str:
        """One run: params, metrics, tags and artifacts (name in the run -> bytes, or a file to copy)."""
        from mlflow.entities import Metric, Param, RunTag

        def send() -> str:
            run = self.client.create_run(self.experiment_id, start_time=created_ms, tags=tags, run_name=name)
            run_id = run.info.run_id
            stamp = created_ms or run.info.start_time
            items = list(params.items())
            for start in range(0, max(len(items), 1), 100):  # MLflow takes at most 100 params a batch
                self.client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()] if start == 0 else [],
                    params=[Param(k, v) for k, v in items[start : start + 100]],
                    tags=[RunTag(k, v) for k, v in tags.items()] if start == 0 else [],
                )
            with tempfile.TemporaryDirectory(prefix="edgeprof-mlflow-") as folder:
                for artifact, content in artifacts.items():
                    path = Path(folder) / artifact
                    if isinstance(content, Path):
                        path.write_bytes(content.read_bytes())
                    else:
                        path.write_bytes(content)
                    self.client.log_artifact(run_id, str(path))
            self.client.set_terminated(run_id, "FINISHED")
            return run_id

        return str(self._call(send, "take the run"))


def _why(exc: Exception) -> str:
    """MLflow's exception in a few words (its messages nest the whole HTTP library's)."""
    text = str(exc).strip()
    for needle, words in (
        ("Connection refused", "connection refused (no server listens there)"),
        ("NewConnectionError", "cannot connect"),
        ("Name or service not known", "unknown host name"),
        ("Read timed out", "no answer in time"),
        ("ConnectTimeout", "no answer in time"),
    ):
        if needle in text:
            return words
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def _report_html(store: Any, sha256: str) -> bytes | None:
    """The HTML report of this model's stored runs, or None when it cannot be drawn (never fatal)."""
    try:
        from .report import build_report

        return build_report(store, model=sha256).html().encode()
    except Exception as exc:  # noqa: BLE001 - the report is an extra; the run itself must still be sent
        log.info("no report for MLflow: %s", exc)
        return None


def _model_file(model: dict[str, Any]) -> Path | None:
    path = Path(model.get("path") or "")
    try:
        from .modelfile import sha256_bytes

        if path.is_file() and sha256_bytes(path.read_bytes()) == model.get("sha256"):
            return path
    except OSError:
        pass
    return None


def log_profile(
    tracker: Tracker, record: dict[str, Any], *, store: Any = None, summary: str = "", report: bool = True
) -> str:
    """Send one profile record (a ``ProfileResult.to_dict()`` or a stored record with ``id``); ``report`` adds the
    HTML report of the model's stored runs."""
    params, metrics, tags = profile_fields(record)
    if store is not None and record.get("id") is not None:
        tags.update({"edgeprof.store": store.location, "edgeprof.store_run": str(record["id"])})
    model = record.get("model") or {}
    artifacts: dict[str, bytes | Path] = {"record.json": json.dumps(record, indent=2, default=str).encode()}
    if summary:
        artifacts["summary.txt"] = summary.encode()
    model_path = _model_file(model)
    if model_path is not None:
        artifacts[model_path.name] = model_path
    if report and store is not None and model.get("sha256"):
        html = _report_html(store, model["sha256"])
        if html is not None:
            artifacts["report.html"] = html
    name = f"{model.get('name', 'model')} on {record.get('target')}"
    return tracker.log(name, params, metrics, tags, artifacts, created_ms=_ms(record.get("created_at")))


def log_compression(
    tracker: Tracker,
    manifest: dict[str, Any],
    model_path: Path | None,
    *,
    store: Any = None,
    run_id: int | None = None,
    summary: str = "",
) -> str:
    """Send one compression: its manifest, model file and summary, with the recipe as params."""
    params, metrics, tags = compression_fields(manifest)
    if store is not None and run_id is not None:
        tags.update({"edgeprof.store": store.location, "edgeprof.store_run": str(run_id)})
    artifacts: dict[str, bytes | Path] = {"manifest.json": json.dumps(manifest, indent=2, default=str).encode()}
    if summary:
        artifacts["summary.txt"] = summary.encode()
    if model_path is not None and model_path.is_file():
        artifacts["model.tflite"] = model_path
    sha = (manifest.get("tflite") or {}).get("sha256")
    if store is not None and sha:
        html = _report_html(store, sha)
        if html is not None:
            artifacts["report.html"] = html
    name = f"compress {manifest.get('recipe_text') or 'float32 export'}"
    return tracker.log(name, params, metrics, tags, artifacts, created_ms=_ms(manifest.get("created_at")))


def export(tracker: Tracker, store: Any, profiles: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Send stored profile rows not yet in the experiment; returns (sent, skipped as already there)."""
    sent = tracker.already_sent(store.location, "profile")
    done = skipped = 0
    for row in profiles:
        if int(row["id"]) in sent:
            skipped += 1
            continue
        log_profile(tracker, {**row["record"], "id": row["id"]}, store=store, report=False)
        done += 1
    return done, skipped


def _ms(created_at: Any) -> int | None:
    import datetime as dt

    try:
        return int(dt.datetime.fromisoformat(str(created_at)).timestamp() * 1000)
    except ValueError:
        return None
