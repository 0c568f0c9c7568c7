"""One profile with a host-side meter: plan the windows, read the meter, decide when it has read enough, align the
clocks and give the energy record.

The agent holds idle before the model loads for long enough to get ``IDLE_READINGS`` usable readings, keeps the
measured loop running (at the requested duty cycle) until this module signals ``stop``, then idles again until a
second ``stop``. At each progress tick (every 0.5 s) the readings so far are put through the same estimator as the
final figure, with the agent's phases as the host saw them: the loop is stopped once the predicted 95 % interval
is within the asked precision (``precision``, relative), counting on an idle after it as long as needed; the idle
after is stopped once the real interval is, or when it is as long as the loop. A meter that stops answering ends
the holds at once: the profile's other figures never wait for it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from edgeprof_agent.record import METER, Energy

from ..errors import MeterError
from .base import Driver
from .clock import HOST_CLOCK, ClockMap, Exchange, exchange
from .config import MeterConfig
from .estimate import MIN_READINGS, Estimate, WindowStats, counter_check, estimate
from .sampler import Log, Sampler

log = logging.getLogger("edgeprof.meters")

IDLE_READINGS = 10  # usable readings planned for the idle before the load
MAX_SECONDS_REACHED = "the loop reached --max-seconds"
RUN_READINGS = 20  # the loop is never stopped on fewer usable readings (batch means need 20)
DEAD_PERIODS = 5  # no reading for this many periods while reads fail: the meter is gone for this run
WINDOWS = ("idle", "measure", "idle_after")

#: ``signal(request_id, name, phase)``: tells the running agent to end an open-ended phase.
Signal = Callable[[Any, str, str], None]


def open_driver(config: MeterConfig) -> Driver:
    from .command import CommandDriver
    from .http_json import HttpJsonDriver
    from .shelly import ShellyDriver
    from .tasmota import TasmotaDriver

    kinds: dict[str, type[Driver]] = {
        "shelly": ShellyDriver,
        "tasmota": TasmotaDriver,
        "http-json": HttpJsonDriver,
        "command": CommandDriver,
    }
    return kinds[config.kind](config)


def planned_idle_seconds(config: MeterConfig, clock_error_s: float = 0.05) -> float:
    """Long enough for ``IDLE_READINGS`` usable readings: a reading's span is two periods."""
    return (IDLE_READINGS + 2.5) / config.rate_hz + 2 * clock_error_s


class MeteredRun:
    """The host's side of one metered profile; see the module's docstring."""

    def __init__(self, target: str, config: MeterConfig, precision: float) -> None:
        self.target = target
        self.config = config
        self.precision = precision
        self.driver = open_driver(config)
        self.problem: MeterError | None = None
        self.sampler: Sampler | None = None
        self.before: Exchange | None = None
        self.seen: dict[str, float] = {}  # phase -> host time its event arrived
        self.stopped: dict[str, str] = {}  # phase -> why the host stopped it
        self.last_live: Estimate | None = None

    # -- before the profile ------------------------------------------------------------------------------------

    def check(self) -> bool:
        """One reading before anything runs: a meter that does not answer costs the energy figure, not the run."""
        try:
            self.driver.read()
        except MeterError as exc:
            self.problem = exc
            log.info("%s: energy unavailable: %s", self.target, exc)
            return False
        return True

    def options(self, options: Any) -> Any:
        """The profile options with an idle long enough for the meter."""
        wanted = planned_idle_seconds(self.config)
        return replace(options, idle_seconds=max(options.idle_seconds, wanted)) if self.problem is None else options

    def agent_args(self, options: Any) -> dict[str, Any]:
        if self.problem is not None:
            return {}
        return {"meter": True, "hold": True, "idle_after_seconds": max(options.max_seconds, options.idle_seconds)}

    def start(self, board_clock: Callable[[], float]) -> None:
        if self.problem is not None:
            return
        self.before = exchange(board_clock)
        self.sampler = Sampler(self.driver, self.config.rate_hz).start()

    # -- while the agent runs ------------------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any], signal: Signal) -> None:
        if self.sampler is None:
            return
        now = HOST_CLOCK()
        phase = event.get("phase")
        if event.get("event") == "phase" and phase:
            self.seen.setdefault(str(phase), now)
            return
        if event.get("event") != "progress" or phase not in ("measure", "idle_after") or phase in self.stopped:
            return
        why = self._enough(str(phase), now)
        if why:
            self.stopped[str(phase)] = why
            log.info("%s: meter: stop %s (%s)", self.target, phase, why)
            signal(event.get("id"), "stop", str(phase))

    def _dead(self, snapshot: Log, now: float) -> bool:
        last = snapshot.received[-1] if snapshot.received else (self.before.at if self.before else now)
        return snapshot.errors > 0 and now - last > DEAD_PERIODS / self.config.rate_hz + self.config.timeout_s

    def _enough(self, phase: str, now: float) -> str | None:
        assert self.sampler is not None
        snapshot = self.sampler.snapshot()
        if self._dead(snapshot, now):
            return "the meter stopped answering"
        idle_start, load = self.seen.get("idle"), self.seen.get("load")
        run_start = self.seen.get("measure")
        if idle_start is None or load is None or run_start is None:
            return "the agent measured no idle" if phase == "measure" else "no idle before"
        guard = 0.5 * (self.before.rtt_s if self.before else 0.0)
        windows = {"idle": (idle_start, load), "measure": (run_start, now)}
        assumed = None
        if phase == "idle_after":
            windows["measure"] = (run_start, self.seen.get("idle_after", now))
            windows["idle_after"] = (self.seen.get("idle_after", now), now)
        else:
            assumed = self._assumed_after(snapshot, windows, guard)
        found = estimate(
            snapshot,
            windows,
            rate_hz=self.config.rate_hz,
            resolution_w=self.config.resolution_w,
            guard_s=guard,
            inferences=1,
            window_s=1.0,
            accuracy_pct=self.config.accuracy_pct,
            assumed_after=assumed,
        )
        self.last_live = found
        if found.final:  # more readings cannot change it: the profile's other figures need not wait
            return f"no figure will come: {found.reason}"
        if phase == "measure":
            run = found.run
            if run is None or run.readings < RUN_READINGS or not found.available:
                return None
            return f"±{found.relative_u95:.1%} predicted" if found.relative_u95 <= 0.9 * self.precision else None
        after, run = found.idle_after, found.run
        if after is None or after.readings < MIN_READINGS:
            return None
        if found.available and found.relative_u95 is not None and found.relative_u95 <= self.precision:
            return f"±{found.relative_u95:.1%} reached"
        if run is not None and after.seconds >= run.seconds:
            return "as long as the loop"
        if after.readings >= (found.idle.readings if found.idle else MIN_READINGS) and found.components:
            total = math.sqrt(sum(c.u_w**2 for c in found.components))
            mine = next((c.u_w for c in found.components if c.name == "idle after"), 0.0)
            if mine <= 0.3 * total:  # the loop's own noise dominates now: a longer idle would not narrow it
                return "the idle after no longer narrows the interval"
        return None

    def _assumed_after(self, snapshot: Log, windows: dict[str, tuple[float, float]], guard: float) -> WindowStats:
        """The idle after the loop, not read yet: as noisy as the idle before, as long as the loop if needed."""
        from .estimate import window_stats

        span = 2.0 / self.config.rate_hz
        idle = window_stats("idle", snapshot, *windows["idle"], span, guard, self.config.resolution_w)
        run = window_stats("measure", snapshot, *windows["measure"], span, guard, self.config.resolution_w)
        n = max(idle.readings, run.readings, MIN_READINGS)
        se = None
        if idle.sd_w is not None:
            se = idle.sd_w / math.sqrt(n)
            if self.config.resolution_w > 0 and (idle.distinct <= 2 or idle.sd_w < 0.25 * self.config.resolution_w):
                se = math.hypot(se, self.config.resolution_w / math.sqrt(12.0))
        end = windows["measure"][1]
        return WindowStats("idle_after", end, end + n / self.config.rate_hz, n, idle.mean_w, idle.sd_w, se, float(n),
                           idle.distinct)  # fmt: skip

    # -- after the profile ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading (after an error in the profile)."""
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None

    def finish(self, board_clock: Callable[[], float] | None, measurement: dict[str, Any]) -> dict[str, Any]:
        """The energy part of the profile record (``edgeprof_agent.record.Energy``, ``source`` "meter") for
        ``measurement`` (the agent's result); the agent's own energy goes under ``board_sensor``. Built through the
        typed record, so a field the record does not know is an error here, not a figure no view shows."""
        return Energy.build(**self._finish(board_clock, measurement)).to_dict()

    def _finish(self, board_clock: Callable[[], float] | None, measurement: dict[str, Any]) -> dict[str, Any]:
        board_sensor = measurement.get("energy")
        meter = {**self.driver.describe(), "target": self.target, "accuracy_pct": self.config.accuracy_pct}
        base = {
            "source": METER,
            "sensor": f"meter:{self.config.kind}",
            "label": self.config.where(),
            "scope": "the whole board, at its power input (a meter on the host reads it)",
            "meter": meter,
        }
        if board_sensor is not None:
            base["board_sensor"] = board_sensor
        if self.problem is not None:
            return {"available": False, "reason": self.problem.problem, "fix": self.problem.fix, **base}
        assert self.sampler is not None and self.before is not None
        after = None
        if board_clock is not None:
            try:
                after = exchange(board_clock)
            except Exception as exc:  # noqa: BLE001 - a board that went away after its answer: the first exchange stands
                log.debug("clock exchange after the run failed: %s", exc)
        readings = self.sampler.stop()
        self.sampler = None
        clock = ClockMap.fit(self.before, after)
        windows_board = measurement.get("windows") or {}
        windows = {
            name: (clock.to_host(windows_board[name][0]), clock.to_host(windows_board[name][1]))
            for name in WINDOWS
            if isinstance(windows_board.get(name), list) and len(windows_board[name]) == 2
        }
        inferences = int((measurement.get("latency_ms") or {}).get("count") or 0)
        window_s = float(measurement.get("measured_seconds") or 0.0)
        base["alignment"] = clock.to_dict()
        base["read_errors"] = readings.errors
        base["readings"] = len(readings.watts)
        if readings.last_extra:
            base["meter_record"] = readings.last_extra
        if "measure" not in windows:
            return {"available": False, "reason": "the agent reported no measured window to align the meter with",
                    "fix": "upgrade the agent on the board (edgeprof uploads its own; run 'edgeprof targets check')",
                    **base}  # fmt: skip
        found = estimate(
            readings,
            windows,
            rate_hz=self.config.rate_hz,
            resolution_w=self.config.resolution_w,
            guard_s=clock.error_s,
            inferences=inferences,
            window_s=window_s,
            accuracy_pct=self.config.accuracy_pct,
        )
        base["windows"] = {
            name: stats.to_dict() for name, stats in (("idle", found.idle), ("measure", found.run),
                                                      ("idle_after", found.idle_after)) if stats is not None
        }  # fmt: skip
        base["stopped"] = {"measure": MAX_SECONDS_REACHED, **self.stopped}  # why each phase ended, always
        if not found.available:
            reason, fix = found.reason, found.fix
            if readings.errors and (not readings.watts or "too few" in (reason or "")):
                error = readings.last_error
                reason = (
                    f"the {self.config.where()} failed {readings.errors} of "
                    f"{readings.errors + len(readings.watts)} reads during the run"
                    + (f" (last: {error.problem})" if error else "")
                    + (f"; {reason}" if reason else "")
                )
                fix = error.fix if error else fix
            return {"available": False, "reason": reason, "fix": fix, **base}
        return self._figures(found, readings, windows, clock, inferences, window_s, measurement, base)

    def _figures(self, found: Estimate, readings: Log, windows: dict[str, tuple[float, float]], clock: ClockMap,
                 inferences: int, window_s: float, measurement: dict[str, Any],
                 base: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        run = found.run
        assert run is not None and found.relative_u95 is not None
        rate = (run.readings - 1) / run.seconds if run.readings > 1 and run.seconds > 0 else None
        out = {
            "available": True,
            **base,
            "basis": "above idle",
            "mj_per_inference": found.mj_per_inference,
            "mj_per_inference_u95": found.mj_per_inference_u95,
            "mj_per_inference_above_idle": found.mj_per_inference,
            "mj_per_inference_gross": found.gross_mj_per_inference,
            "mj_per_inference_gross_u95": found.gross_mj_per_inference_u95,
            "relative_u95": found.relative_u95 if math.isfinite(found.relative_u95) else None,
            "confidence": 0.95,
            "precision": self.precision,
            "precision_reached": found.relative_u95 <= self.precision,
            "mean_w": run.mean_w,
            "idle_w": found.idle_w,
            "above_idle_w": found.above_idle_w,
            "above_idle_w_u95": found.above_idle_w_u95,
            "drift_w": found.drift_w,
            "drift_u95_w": found.drift_u95_w,
            "sample_rate_hz": rate,
            "target_rate_hz": self.config.rate_hz,
            "resolution_w": self.config.resolution_w,
            "samples": run.readings,
            "idle_samples": found.idle.readings if found.idle else None,
            "window_s": window_s,
            "inferences": inferences,
            "duty": (measurement.get("duty") or {}).get("achieved"),
            "dof": found.dof if found.dof is not None and math.isfinite(found.dof) else None,
            "coverage_factor": found.coverage_factor,
            "uncertainty": [{"component": c.name, "u_w": c.u_w} for c in found.components],
            "notes": found.notes,
            "method": (
                "host-side meter read at its own rate; board windows mapped to the host clock; readings whose whole "
                "span lies in a window averaged; idle interpolated between before and after the run; "
                "E = (mean power - idle) x window / inferences; 95 % interval from Student's t "
                "(Welch-Satterthwaite)"
            ),
        }
        if self.driver.counter_step_wh:
            check = counter_check(readings, *windows["measure"], self.config.rate_hz, clock.error_s,
                                  self.driver.counter_step_wh)  # fmt: skip
            if check is not None:
                out["counter_check"] = check
        if not out["precision_reached"]:
            why = (
                "the loop reached --max-seconds; raise it, keep other load off the board, or use a faster meter"
                if "measure" not in self.stopped
                else f"the loop was stopped when {self.stopped['measure']}"
            )
            out["notes"] = [
                *found.notes,
                f"the interval is ±{found.relative_u95:.1%}, wider than the ±{self.precision:.0%} asked: {why}",
            ]
        return out
