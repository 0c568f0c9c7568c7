"""Profile a TFLite model on a target: one call, one result with a ``summary()``.

result = edgeprof.profile("model.tflite", target="local", runs=200)
print(result.summary())
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _table
from ._version import __version__
from .deploy import connect
from .modelfile import ModelFile, open_tflite
from .targets import Target, apply_sensor_defaults, resolve_target


@dataclass(frozen=True)
class ProfileOptions:
    """How to measure. The defaults follow TFLite's benchmark_model."""

    runs: int = 50
    warmup_runs: int = 1
    warmup_seconds: float = 0.5
    min_seconds: float = 1.0
    max_seconds: float = 150.0
    threads: int | None = None
    delegate: str = "xnnpack"
    runtime: str | None = None
    pause_ms: float = 0.0
    cpus: tuple[int, ...] | None = None
    seed: int = 0
    max_samples: int = 10000  # raw samples returned; beyond this an even subset plus an exact histogram

    def agent_args(self) -> dict[str, Any]:
        args = asdict(self)
        args["cpus"] = list(self.cpus) if self.cpus else None
        return args


@dataclass
class ProfileResult:
    """One model measured on one board, with the conditions of the run."""

    model: ModelFile
    target: str
    device: dict[str, Any]
    agent_version: str
    options: ProfileOptions
    measurement: dict[str, Any]
    created_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    edgeprof_version: str = __version__
    id: int | None = None

    # The figures users reach for most, straight from the measurement.
    @property
    def latency_ms(self) -> dict[str, float]:
        return self.measurement["latency_ms"]

    @property
    def samples_ms(self) -> list[float]:
        return self.measurement.get("samples_ms", [])

    @property
    def runtime(self) -> str:
        rt = self.measurement["runtime"]
        return f"{rt['name']} {rt['version']}"

    @property
    def peak_rss_kb(self) -> int | None:
        return self.measurement.get("memory", {}).get("peak_rss_kb")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "edgeprof_version": self.edgeprof_version,
            "model": self.model.to_dict(),
            "target": self.target,
            "device": self.device,
            "agent_version": self.agent_version,
            "options": asdict(self.options),
            **self.measurement,
        }

    def summary(self) -> str:
        m = self.measurement
        lat = m["latency_ms"]
        dev = self.device
        mem = m.get("memory", {})
        peak = mem.get("peak_rss_kb")
        delta = mem.get("model_rss_delta_kb")
        threads = m.get("threads") or "default"
        lines = [
            *(
                [f"EMULATED board ({dev.get('emulated_reason', 'emulated')}): timings check correctness, not speed"]
                if dev.get("emulated")
                else []
            ),
            f"{self.model.name} ({_table.size(self.model.size_bytes)}, sha256 {self.model.sha256[:12]}) on "
            f"{self.target}: {dev.get('board') or dev.get('machine')}, {dev.get('os') or dev.get('system')}",
            f"runtime {self.runtime}, delegate {m.get('delegate')}, threads {threads}, "
            f"{lat['count']} runs in {m.get('measured_seconds', 0):.2f} s after {m['warmup']['runs']} warm-up runs",
            f"init {_table.ms(m['init_ms'])} ms, first inference {_table.ms(m['first_inference_ms'])} ms",
            "",
            _table.table(
                ["latency (ms)", "min", "median", "mean", "p90", "p99", "max", "std"],
                [["", *(_table.ms(lat[k]) for k in ("min", "median", "mean", "p90", "p99", "max", "std"))]],
            ),
            "",
            f"peak RSS {_table.size(peak * 1024 if peak else None)}"
            + (f" (model adds {_table.size(delta * 1024)})" if delta is not None else ""),
        ]
        energy = m.get("energy")
        if energy is not None:
            lines.append(
                "energy: "
                + (
                    f"{energy['mj_per_inference']:.3f} mJ/inference"
                    if energy.get("available")
                    else f"unavailable ({energy.get('reason', 'no sensor')})"
                )
            )
        return "\n".join(lines)


ProgressHandler = Callable[[dict[str, Any]], None]


def profile(
    model: str | Path,
    target: str | Target = "local",
    *,
    options: ProfileOptions | None = None,
    inputs: str | Path | None = None,
    store: Any = "default",
    on_event: ProgressHandler | None = None,
    **option_overrides: Any,
) -> ProfileResult:
    """Measure ``model`` on ``target`` and (unless ``store=None``) keep the result in the results store.

    Keyword arguments not named here are :class:`ProfileOptions` fields, e.g. ``runs=200, threads=2``.
    """
    options = options or ProfileOptions()
    if option_overrides:
        options = ProfileOptions(**{**asdict(options), **option_overrides})
    model_file, data = open_tflite(model)
    target = resolve_target(target)
    options = apply_sensor_defaults(target, options)
    with connect(target, on_event=on_event) as board:
        remote_model = board.ensure_model(data, model_file.sha256)
        args = {**options.agent_args(), "model": remote_model}
        if inputs is not None:
            path = Path(inputs)
            args["inputs"] = board.ensure_data(path.read_bytes(), path.suffix)
        timeout = 120.0 + options.warmup_seconds + 2 * options.max_seconds
        with board.agent() as agent:
            measurement = agent.call("profile", args, timeout=timeout, on_event=on_event)
            hello = agent.hello
    result = ProfileResult(
        model=model_file,
        target=target.name,
        device=hello.get("device", {}),
        agent_version=hello.get("agent_version", "?"),
        options=options,
        measurement=measurement,
    )
    if store is not None:
        from .store import using_store

        with using_store(store) as db:
            result.id = db.add_profile(result)
    return result
