"""A quiet timed process: power sampling and thermal watching run in a sibling process, not beside ``invoke()``.

Inside the timed process, a sampler thread has to win the GIL back from the inference loop every time it wakes,
and a sensor read through a command (Raspberry Pi 5: ``vcgencmd pmic_read_adc`` ten times a second, plus
``vcgencmd get_throttled`` once a second) forks a process that has a whole model mapped. So the agent starts a
sibling before it loads the model: the same agent code (``python -c ... agent.pyz``), which finds the power sensor,
takes the thermal snapshot, then samples and polls on its own until told to stop, at a lower priority (nice 10), off
the CPUs the measurement is pinned to when any are left. It keeps every reading, stamped with CLOCK_MONOTONIC (one
clock for every process on the board), and sends them back through its pipe once, after the measured loop: the
timed process never hears from it while it times. The agent marks its windows (idle, measured loop) on the same
clock and cuts the readings to them (energy/base.py ``clip``).

When the sibling cannot start (``sampling: "in-process"`` asks for the old way, for comparison), the sampler and
the watcher run as threads in the agent, and the result says so. Either way ``conditions.sampler`` records whether
a sampler ran, where, its rate and the readings it took. Protocol (JSON lines): the agent writes one line of
options; the sibling answers ``{"ready": ...}`` with the sensor it found; the agent writes ``stop``; the sibling
answers with its readings and thermal report and exits (also when the agent's end of the pipe closes).
"""

import json
import os
import subprocess
import sys
import time

from . import energy, thermal
from .energy import base

CLOCK = time.monotonic  # CLOCK_MONOTONIC on Linux: readings and windows in every process on one time line
SIBLING = "sibling"
IN_PROCESS = "in-process"
NICE = 10
READY_TIMEOUT_S = 30.0
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from edgeprof_agent import sidecar; sys.exit(sidecar.serve())"


def _package_root():
    """The folder (or the zipapp) the ``edgeprof_agent`` package is imported from."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _energy_options(opts):
    return dict((k, opts.get(k)) for k in ("energy", "energy_command", "energy_rate_hz", "idle_seconds"))


def _cpu_s():
    try:
        import resource
    except ImportError:  # pragma: no cover - every Linux/Android Python has it
        return None
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- the sibling's side --------------------------------------------------------------------------------------------


def serve(stdin=None, stdout=None):
    """The sibling's main loop (``python -c _BOOT agent.pyz``)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout

    def send(message):
        stdout.write(json.dumps(message) + "\n")
        stdout.flush()

    line = stdin.readline()
    if not line:
        return 0
    opts = json.loads(line)
    try:
        os.nice(int(opts.get("nice", NICE)))
    except (AttributeError, OSError):
        pass
    started = CLOCK()
    cpu0 = _cpu_s()
    sensor, checked = energy.discover(_energy_options(opts))
    rate = energy.rate_for(sensor, opts) if sensor is not None else None
    watch = thermal.Watch(float(opts.get("thermal_interval_s") or 0.0))
    send(
        {
            "ready": True,
            "pid": os.getpid(),
            "sensor": sensor.describe() if sensor is not None else None,
            "kind": sensor.kind if sensor is not None else None,
            "spawns_process": bool(sensor is not None and sensor.spawns_process),
            "checked": checked,
            "rate_hz": rate,
        }
    )
    sampler = base.Sampler(sensor, rate, clock=CLOCK).start() if sensor is not None else None
    watch.start()
    stdin.readline()  # "stop", or EOF when the agent is gone: either way, finish
    report = watch.stop()
    if sampler is not None:
        sampler.stop()
        sensor.close()
    cpu1 = _cpu_s()
    send(
        {
            "times": sampler.times if sampler else [],
            "values": sampler.values if sampler else [],
            "rails": sampler.rails if sampler else [],
            "errors": sampler.errors if sampler else 0,
            "last_error": sampler.last_error if sampler else None,
            "thermal": report,
            "cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
            "seconds": CLOCK() - started,
        }
    )
    return 0


# --- the agent's side ----------------------------------------------------------------------------------------------


class Sampling(object):
    """Energy sampling and thermal watching for one profile, in a sibling process or (fallback) in threads here."""

    def __init__(self, opts):
        self.opts = opts
        self.where = None
        self.reason = None
        self.process = None
        self.ready = {}
        self.sensor = None  # in-process only
        self.checked = {}
        self.meter = None
        self.watch = None
        self.idle_window = None
        self._run_start = None
        self.run_window = None
        self.idle_reason = None
        self.finished = None

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self):
        wanted = str(self.opts.get("sampling") or SIBLING)
        if wanted == SIBLING:
            try:
                self._start_sibling()
                self.where = SIBLING
                return self
            except (OSError, ValueError, RuntimeError) as exc:
                self._kill()
                self.reason = "the sibling process could not start: %s: %s" % (type(exc).__name__, exc)
        else:
            self.reason = "asked for with sampling: in-process"
        self._start_in_process()
        self.where = IN_PROCESS
        return self

    def _start_sibling(self):
        self.process = subprocess.Popen(
            [sys.executable or "python3", "-c", _BOOT, _package_root()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            universal_newlines=True,
            bufsize=1,
        )
        options = _energy_options(self.opts)
        options["thermal_interval_s"] = self.opts.get("thermal_interval_s")
        self.process.stdin.write(json.dumps(options) + "\n")
        self.process.stdin.flush()
        line = _readline(self.process.stdout, READY_TIMEOUT_S)
        if not line:
            raise RuntimeError("it exited with %s before it was ready" % self.process.poll())
        self.ready = json.loads(line)
        self.checked = self.ready.get("checked") or {}

    def _start_in_process(self):
        self.sensor, self.checked = energy.discover(_energy_options(self.opts))
        self.meter = energy.Meter(self.sensor, self.opts) if self.sensor is not None else None
        self.watch = thermal.Watch(float(self.opts.get("thermal_interval_s") or 0.0))
        self.watch.start()

    def avoid(self, cpus):
        """Move the sibling off the CPUs the measurement is pinned to, when there are others."""
        if self.process is None or not cpus or not hasattr(os, "sched_setaffinity"):
            return
        try:
            others = sorted(set(os.sched_getaffinity(self.process.pid)) - set(cpus))
            if others:
                os.sched_setaffinity(self.process.pid, others)
        except OSError:
            pass

    @property
    def has_sensor(self):
        return bool(self.ready.get("sensor")) if self.where == SIBLING else self.sensor is not None

    @property
    def idle_seconds(self):
        return float(self.opts.get("idle_seconds") or 0.0)

    # -- windows ---------------------------------------------------------------------------------------------------
    def measure_idle(self):
        """Sleep while the sensor is read: the board's power before the model adds load."""
        if self.idle_seconds <= 0:
            self.idle_reason = "idle power was not measured (--idle-seconds 0)"
            return
        if self.where == IN_PROCESS:
            self.meter.measure_idle()
            return
        start = CLOCK()
        time.sleep(self.idle_seconds)
        self.idle_window = (start, CLOCK())

    def run_started(self):
        if self.where == IN_PROCESS and self.meter is not None:
            self.meter.start()
        self._run_start = CLOCK()

    def run_stopped(self):
        self.run_window = (self._run_start, CLOCK())
        if self.where == IN_PROCESS and self.meter is not None:
            self.meter.stop()

    def thread_ids(self):
        """Native ids of the threads this object runs in the timed process (none with a sibling)."""
        found = []
        if self.meter is not None and self.meter.sampler is not None and self.meter.sampler.thread_id:
            found.append(self.meter.sampler.thread_id)
        if self.watch is not None and getattr(self.watch, "thread_id", None):
            found.append(self.watch.thread_id)
        return found

    # -- finish ----------------------------------------------------------------------------------------------------
    def finish(self, inferences, window_s):
        """``(energy result, thermal report, conditions.sampler)``; call once, after the measured loop."""
        if self.where == SIBLING:
            result = self._finish_sibling(inferences, window_s)
        else:
            result = self._finish_in_process(inferences, window_s)
        self.finished = result
        return result

    def _finish_sibling(self, inferences, window_s):
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # it died: what it left on its pipe, if anything, is all there is
            pass
        line = _readline(self.process.stdout, 60.0)
        self._close_pipes()
        try:
            self.process.wait(10.0)
        except subprocess.TimeoutExpired:
            self._kill()
        died = None
        if not line:
            died = "the sibling sampler process ended before it handed over its readings (exit %s)" % (
                self.process.poll()
            )
            data = {"times": [], "values": [], "rails": [], "thermal": None}
        else:
            data = json.loads(line)
        thermal_report = data["thermal"] or {
            "throttled": None,
            "throttle_sources": [],
            "throttle_evidence": [],
            "throttle_reason": died,
            "watch_polls": 0,
        }
        info, kind, rate = self.ready.get("sensor"), self.ready.get("kind"), self.ready.get("rate_hz")
        run = None
        if info is not None and died:
            energy_result = dict(info, available=False, reason=died + "; profile again")
        elif info is not None:
            series = (data["times"], data["values"], data["rails"])
            errors = (data.get("errors") or 0, data.get("last_error"))
            idle = None
            if self.idle_window is not None:
                idle, why = base.window_stats(base.clip(*(series + self.idle_window + errors)), kind)
                if idle is None:
                    self.idle_reason = "idle window: " + why
            run_series = base.clip(*(series + self.run_window + errors))
            run, run_why = base.window_stats(run_series, kind)
            cost = {
                "cpu_s": data.get("cpu_s"),
                "cpu_window_s": data.get("seconds"),
                "read_errors": errors[0],
                "where": SIBLING,
            }
            energy_result = energy.figures(
                info, kind, rate, idle, self.idle_reason, run, run_why, inferences, window_s, cost
            )
        else:
            energy_result = energy.unavailable(self.checked)
        conditions = self._conditions(
            info.get("sensor") if info else None,
            rate,
            run["rate_hz"] if run else None,
            run["samples"] if run else 0,
            self.ready.get("spawns_process"),
            thermal_report,
        )
        conditions["pid"] = self.ready.get("pid")
        conditions["cpu_s"] = data.get("cpu_s")
        if died:
            conditions["reason"] = died
        return energy_result, thermal_report, conditions

    def _finish_in_process(self, inferences, window_s):
        thermal_report = self.watch.stop()
        self.watch = None
        if self.meter is not None:
            energy_result = self.meter.result(inferences, window_s)
            available = energy_result.get("available")
            conditions = self._conditions(
                self.sensor.plugin,
                self.meter.rate_hz,
                energy_result.get("sample_rate_hz") if available else None,
                energy_result.get("samples", 0) if available else 0,
                self.sensor.spawns_process,
                thermal_report,
            )
            self.meter = None
        else:
            energy_result = energy.unavailable(self.checked)
            conditions = self._conditions(None, None, None, 0, False, thermal_report)
        return energy_result, thermal_report, conditions

    def _conditions(self, sensor, target_hz, achieved_hz, samples, spawns, thermal_report):
        polls = thermal_report.get("watch_polls") or 0
        energy_part = None
        if sensor is not None:
            energy_part = {
                "sensor": sensor,
                "target_rate_hz": target_hz,
                "rate_hz": achieved_hz,
                "samples": samples,
                "spawns_process": bool(spawns),
            }
        thermal_part = {
            "interval_s": thermal_report.get("watch_interval_s"),
            "polls": polls,
            "sources": thermal_report.get("throttle_sources") or [],
            "spawns_process": "vcgencmd get_throttled" in (thermal_report.get("throttle_sources") or []),
        }
        out = {
            "ran": bool(energy_part) or (polls > 0 and bool(thermal_report.get("watching"))),
            "where": self.where,
            "energy": energy_part,
            "thermal": thermal_part,
        }
        if self.reason:
            out["reason"] = self.reason
        return out

    # -- cleanup ---------------------------------------------------------------------------------------------------
    def close(self):
        """Stop whatever still runs (after an error in the profile)."""
        if self.where == IN_PROCESS:
            if self.watch is not None:
                self.watch.stop()
                self.watch = None
            if self.meter is not None:
                self.meter.stop()
                self.meter.sensor.close()
                self.meter = None
        elif self.process is not None and self.process.poll() is None and self.finished is None:
            self._close_pipes()
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self._kill()

    def _close_pipes(self):
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _readline(stream, timeout_s):
    """One line from the sibling, or '' if none comes within ``timeout_s`` (the sibling is then killed by close)."""
    import select

    ready, _w, _x = select.select([stream], [], [], timeout_s)
    return stream.readline() if ready else ""


def start(opts):
    return Sampling(opts).start()
