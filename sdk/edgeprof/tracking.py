"""Runs where teams already keep them: each compression and profile logged to an MLflow tracking server.

``--mlflow URI`` (or ``EDGEPROF_MLFLOW_URI``) on ``compress`` and ``profile``, and ``edgeprof results export
--mlflow URI`` for runs already stored. One MLflow run per edgeprof run, in the experiment ``edgeprof`` (or
``EDGEPROF_MLFLOW_EXPERIMENT``): the recipe and the options as params, the figures as metrics, tags for the target,
runtime, device and model, and as artifacts the full record (or manifest), the model file when it is still where
the run found it, the text summary and the HTML report of that model's runs.

A profile run is logged from its typed record (``edgeprof_agent/record.py``), what every view renders: latency,
peak RSS, accuracy, and energy per inference as the record holds it (``energy.source`` tag: the meter on the host,
the board's sensor, or "unavailable" with ``energy.reason``; a meter's 95 % interval, idle baseline, rate and
clock error as metrics). A ``--repeat`` group is one parent MLflow run (the group's figures: the median of the
run medians, the spread between processes, the median energy) with one nested run per process, whether it is
sent by ``profile`` or later by ``results export``.

The local store is always written first: a server that is down or refuses a run costs only the upload, with a
:class:`TrackingError` that says how to send the run later. Runs carry ``edgeprof.store_run`` (groups
``edgeprof.store_group``) tags, so an export never sends a stored run twice.

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

from edgeprof_agent.record import METER, ProfileRecord

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


def _typed(record: ProfileRecord | dict[str, Any]) -> ProfileRecord:
    return record if isinstance(record, ProfileRecord) else ProfileRecord.load(record)


def energy_metrics(rec: ProfileRecord) -> dict[str, float]:
    """The record's energy as metrics: the figure and what it stands on (a meter's interval, baseline, rate)."""
    energy = rec.energy
    if energy is None or energy.mj() is None:
        return {}
    metrics: dict[str, float] = {"energy_mj_per_inference": energy.mj()}  # type: ignore[dict-item]
    values = {
        "energy_mj_per_inference_u95": energy.u95(),
        "energy_relative_u95": energy.relative_u95,
        "energy_mj_per_inference_gross": energy.mj_per_inference_gross,
        "energy_mj_per_inference_above_idle": energy.mj_per_inference_above_idle,
        "energy_above_idle_w": energy.above_idle_w,
        "energy_idle_w": energy.idle_w,
        "energy_mean_w": energy.mean_w,
        "energy_idle_drift_w": energy.drift_w,
        "energy_readings": energy.samples,
        "energy_meter_rate_hz": energy.target_rate_hz if energy.origin() == METER else None,
        "energy_sample_rate_hz": energy.sample_rate_hz,
        "energy_clock_error_ms": (
            energy.alignment.error_s * 1000.0
            if energy.alignment is not None and energy.alignment.error_s is not None
            else None
        ),
        "duty_achieved": rec.duty.achieved if rec.duty is not None else None,
    }
    for name, value in values.items():
        if _number(value) is not None:
            metrics[name] = _number(value)  # type: ignore[assignment]
    return metrics


def energy_tags(rec: ProfileRecord) -> dict[str, str]:
    energy = rec.energy
    if energy is None:
        return {"energy.source": "not recorded"}
    if energy.mj() is None:
        return {"energy.source": "unavailable", "energy.reason": str(energy.reason or "no sensor")[:500]}
    tags = {"energy.source": METER if energy.origin() == METER else str(energy.sensor or "sensor")}
    tags["energy.basis"] = energy.basis_text()
    if energy.origin() == METER:
        tags["energy.meter"] = str(energy.label or (energy.meter.where if energy.meter else "meter"))
    return tags


def profile_fields(
    record: ProfileRecord | dict[str, Any],
) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, tags) of a profile run, from its typed record."""
    rec = _typed(record)
    params: dict[str, Any] = {}
    _flat("option", rec.options or {}, params)
    params.update(
        {
            "model.name": rec.model.name if rec.model else None,
            "target": rec.target,
            "threads": rec.threads or "default",
            "delegate": rec.delegate,
            "inputs": rec.inputs,
        }
    )
    metrics: dict[str, float] = {}
    lat = rec.latency_ms
    if lat is not None:
        for key in ("count", *LATENCY_KEYS):
            value = _number(lat.get(key))
            if value is not None:
                metrics[f"latency_{key}_ms" if key != "count" else "inferences"] = value
    for key in ("init_ms", "first_inference_ms", "measured_seconds"):
        value = _number(getattr(rec, key))
        if value is not None:
            metrics[key] = value
    if rec.memory is not None and _number(rec.memory.peak_rss_kb) is not None:
        metrics["peak_rss_kb"] = _number(rec.memory.peak_rss_kb)  # type: ignore[assignment]
    metrics.update(energy_metrics(rec))
    accuracy = rec.accuracy
    for side in ("board", "host"):
        value = _number(((getattr(accuracy, side) if accuracy else None) or {}).get("accuracy"))
        if value is not None:
            metrics[f"accuracy_{side}"] = value
    device = rec.device
    tags = {
        "edgeprof.kind": "profile",
        "edgeprof.version": str(rec.edgeprof_version or __version__),
        "target": str(rec.target),
        "runtime": rec.runtime.text() if rec.runtime else "unknown",
        "delegate": str(rec.delegate),
        "device": str(((device.board or device.machine) if device else None) or "unknown"),
        "device.hostname": str((device.hostname if device else None) or "unknown"),
        "model.sha256": str(rec.model.sha256 if rec.model else None),
        **energy_tags(rec),
    }
    if rec.emulated():
        tags["caveat.emulated"] = "true"
    if rec.throttled:
        tags["caveat.throttled"] = "true"
    if rec.pid() is not None:
        tags["agent.pid"] = str(rec.pid())
    return _strings(params), metrics, tags


LATENCY_KEYS = ("min", "median", "mean", "p90", "p95", "p99", "max", "std")


def group_fields(records: list[ProfileRecord], info: Any) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, tags) of a ``--repeat`` group: its first run's params, the group's figures as every view
    shows them (views.group_lines: each latency figure the median of the runs', the spread between processes,
    the median energy), tags for the group."""
    from . import views

    params, _, tags = profile_fields(records[0])
    metrics: dict[str, float] = {"runs": float(len(records)), "planned": float(info.planned)}
    for key in LATENCY_KEYS:
        value = views.median_of([r.latency_ms.get(key) if r.latency_ms else None for r in records])
        if value is not None:
            metrics[f"latency_{key}_ms"] = value
    spread = views.spread_of(records)
    if spread is not None and len(spread.medians_ms) > 1:
        metrics["spread_max_over_min"] = spread.max_over_min
        if spread.cv is not None:
            metrics["spread_cv"] = spread.cv
    peaks = [r.memory.peak_rss_kb for r in records if r.memory and r.memory.peak_rss_kb]
    if peaks:
        metrics["peak_rss_kb"] = float(max(peaks))
    energies = [e for e in (r.energy_mj() for r in records) if e is not None]
    if energies:
        metrics["energy_mj_per_inference"] = views.median_of(energies)  # type: ignore[assignment]
        metrics["energy_mj_per_inference_min"] = min(energies)
        metrics["energy_mj_per_inference_max"] = max(energies)
        metrics["energy_runs"] = float(len(energies))
    tags = {k: v for k, v in tags.items() if k not in ("agent.pid", "energy.reason")}
    tags.update({"edgeprof.kind": "profile-group", "group": f"g:{info.id}" if info.id is not None else "unstored"})
    if info.error:
        tags["group.stopped"] = str(info.error)[:500]
    return params, metrics, tags


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

    def already_sent(self, store: str, kind: str, tag: str = "edgeprof.store_run") -> dict[int, str]:
        """Stored runs (or groups: ``tag`` edgeprof.store_group) from ``store`` already in this experiment: their
        id -> the MLflow run's id."""

        def search() -> dict[int, str]:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`edgeprof.store` = '{store}' and tags.`edgeprof.kind` = '{kind}'",
                max_results=50000,
            )
            return {int(r.data.tags[tag]): r.info.run_id for r in runs if tag in r.data.tags}

        return dict(self._call(search, "list the runs already sent"))

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
    tracker: Tracker,
    record: ProfileRecord | dict[str, Any],
    *,
    store: Any = None,
    summary: str = "",
    report: bool = True,
    parent: str | None = None,
) -> str:
    """Send one profile run (its typed record, a ``ProfileResult.to_dict()`` or a stored record with ``id``);
    ``report`` adds the HTML report of the model's stored runs; ``parent`` nests it under a group's run."""
    from . import views

    rec = _typed(record)
    params, metrics, tags = profile_fields(rec)
    if store is not None and rec.id is not None:
        tags.update({"edgeprof.store": store.location, "edgeprof.store_run": str(rec.id)})
    if rec.group is not None and rec.group.id is not None:
        tags.update({"group": f"g:{rec.group.id}", "group.index": str(rec.group.index)})
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    model = rec.model.to_dict() if rec.model else {}
    artifacts: dict[str, bytes | Path] = {"record.json": json.dumps(rec.to_dict(), indent=2, default=str).encode()}
    artifacts["summary.txt"] = (summary or "\n".join(views.run_lines(rec))).encode()
    model_path = _model_file(model)
    if model_path is not None:
        artifacts[model_path.name] = model_path
    if report and store is not None and model.get("sha256"):
        html = _report_html(store, model["sha256"])
        if html is not None:
            artifacts["report.html"] = html
    name = f"{model.get('name', 'model')} on {rec.target}"
    if rec.group is not None and rec.group.index is not None:
        name += f" (run {rec.group.index} of {rec.group.of})"
    return tracker.log(name, params, metrics, tags, artifacts, created_ms=_ms(rec.created_at))


def log_group(
    tracker: Tracker,
    records: list[ProfileRecord],
    info: Any,
    *,
    store: Any = None,
    summary: str = "",
    report: bool = True,
    sent: dict[int, str] | None = None,
) -> str:
    """Send a ``--repeat`` group: one parent run with the group's figures, then each of its runs nested under it
    (runs in ``sent``, stored run id -> MLflow run, are there already and skipped). Returns the parent's id."""
    from . import views

    params, metrics, tags = group_fields(records, info)
    if store is not None and info.id is not None:
        tags.update({"edgeprof.store": store.location, "edgeprof.store_group": str(info.id)})
    first = records[0]
    model = first.model.to_dict() if first.model else {}
    facts = {"group": info.id, "planned": info.planned, "error": info.error, "partners": info.partners}
    artifacts: dict[str, bytes | Path] = {
        "group.json": json.dumps({**facts, "runs": [r.id for r in records]}, indent=2).encode(),
        "summary.txt": (summary or "\n".join(views.group_lines(records, info))).encode(),
    }
    if report and store is not None and model.get("sha256"):
        html = _report_html(store, model["sha256"])
        if html is not None:
            artifacts["report.html"] = html
    name = f"{model.get('name', 'model')} on {first.target}, group g:{info.id} ({len(records)} runs)"
    parent = tracker.log(name, params, metrics, tags, artifacts, created_ms=_ms(first.created_at))
    for rec in records:
        if sent is not None and rec.id is not None and rec.id in sent:
            continue
        log_profile(tracker, rec, store=store, report=False, parent=parent)
    return parent


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
    """Send stored profile rows not yet in the experiment; returns (sent, skipped as already there). The runs of a
    group go under one parent run for the group (made now, or found from an earlier export)."""
    from . import views

    sent = tracker.already_sent(store.location, "profile")
    parents = tracker.already_sent(store.location, "profile-group", tag="edgeprof.store_group")
    done = skipped = 0
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in profiles:
        if int(row["id"]) in sent:
            skipped += 1
        elif row.get("group_id") is not None:
            grouped.setdefault(int(row["group_id"]), []).append(row)
        else:
            log_profile(tracker, {**row["record"], "id": row["id"]}, store=store, report=False)
            done += 1
    for group_id, rows in grouped.items():
        records = [views.load({**r["record"], "id": r["id"]}) for r in rows]
        if group_id in parents:
            for rec in records:
                log_profile(tracker, rec, store=store, report=False, parent=parents[group_id])
        else:
            found = store.group(group_id)
            every = [views.load({**r["record"], "id": r["id"]}) for r in found["runs"]]
            error = (found.get("record") or {}).get("error")
            info = views.GroupInfo(group_id, found["planned"], error, [f"g:{p['id']}" for p in found["partners"]])
            log_group(tracker, every, info, store=store, report=False, sent={**sent, **_others(every, records)})
        done += len(records)
    return done, skipped


def _others(every: list[ProfileRecord], chosen: list[ProfileRecord]) -> dict[int, str]:
    """Runs of a group that the export's filters left out: the parent's figures cover them, no child is sent."""
    wanted = {r.id for r in chosen}
    return {int(r.id): "" for r in every if r.id is not None and r.id not in wanted}


def _ms(created_at: Any) -> int | None:
    import datetime as dt

    try:
        return int(dt.datetime.fromisoformat(str(created_at)).timestamp() * 1000)
    except ValueError:
        return None
