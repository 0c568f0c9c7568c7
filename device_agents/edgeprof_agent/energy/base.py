"""What every power sensor plugin provides, the sampler thread, and the arithmetic of energy per inference.

A sensor reads either instantaneous power in watts (``kind = "power"``: INA3221, INA2xx, PMIC, battery, hwmon, a
command) or a cumulative energy counter in joules (``kind = "energy"``: RAPL). The sampler reads it at a fixed rate
in a thread beside the inference loop. Power sensors are averaged over time (trapezoids, so uneven sample spacing
does not bias the mean); energy counters are differenced (first and last reading of the window).

Energy per inference, gross = mean power x window / inferences; above idle = (mean - idle power) x window /
inferences, where idle power is measured with the same sensor before the model loads. With a delay between runs
(duty cycle) the window includes the pauses, which is what the board spends per inference at that duty cycle.
"""

import threading
import time

try:
    import resource
except ImportError:  # pragma: no cover - every Linux/Android Python has it
    resource = None


class SensorUnavailable(Exception):
    """Raised by a plugin's ``discover()`` with the reason it cannot measure on this board."""


class Sensor(object):
    plugin = "?"
    label = "?"
    kind = "power"  # "power" (W, instantaneous) or "energy" (J, cumulative)
    scope = ""  # what the figure covers: the whole board, the module, the CPU package...
    spawns_process = False  # True for sensors read through a command: their default rate is lower
    total = None  # how the total is formed, e.g. "VDD_IN" or "sum of rails"

    def read(self):
        """``(total, rails)``: total in W (or J for energy counters), rails a dict of the same unit or None."""
        raise NotImplementedError

    def sources(self):
        return []

    def describe(self):
        info = {"sensor": self.plugin, "label": self.label, "kind": self.kind, "scope": self.scope}
        if self.total:
            info["total"] = self.total
        info["sources"] = self.sources()
        return info

    def close(self):
        pass


def _children_cpu_s():
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Sampler(object):
    """Reads a sensor at ``rate_hz`` in a daemon thread until stopped; keeps every (time, value) pair."""

    def __init__(self, sensor, rate_hz):
        self.sensor = sensor
        self.rate_hz = float(rate_hz)
        self.times = []
        self.values = []
        self.rails = []
        self.errors = 0
        self.last_error = None
        self.cpu_s = 0.0
        self._stopping = False  # a flag and time.sleep: cheaper per wake-up than Event.wait (25 vs 37 µs here)
        self._lock = threading.Lock()
        self._thread = None

    def _sample(self):
        try:
            value, rails = self.sensor.read()
        except Exception as exc:  # noqa: BLE001 - a failed read is counted, not fatal
            self.errors += 1
            self.last_error = "%s: %s" % (type(exc).__name__, exc)
            return
        self.times.append(time.perf_counter())
        self.values.append(float(value))
        self.rails.append(rails)

    def _run(self):
        period = 1.0 / self.rate_hz
        thread_clock = getattr(time, "thread_time", None)
        cpu0 = thread_clock() if thread_clock else 0.0
        children0 = _children_cpu_s() if self.sensor.spawns_process else 0.0
        deadline = time.perf_counter()
        while True:
            with self._lock:
                if self._stopping:
                    break
                self._sample()
            deadline += period
            delay = deadline - time.perf_counter()
            if delay < 0:  # the sensor is slower than the rate: sample back to back, never in bursts
                deadline = time.perf_counter()
                delay = 0.0
            time.sleep(delay)
        self.cpu_s = (thread_clock() - cpu0) if thread_clock else 0.0
        if self.sensor.spawns_process:
            self.cpu_s += _children_cpu_s() - children0

    def start(self):
        self._thread = threading.Thread(target=self._run, name="edgeprof-energy")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        """Close the window now: the caller takes the last reading, the thread exits at its next wake-up."""
        with self._lock:
            self._stopping = True
            self._sample()
        if self._thread is not None:
            self._thread.join(30.0)
        return self

    def run_for(self, seconds):
        """Sample for ``seconds`` while this thread sleeps (the idle measurement)."""
        self.start()
        time.sleep(seconds)
        return self.stop()


def window_stats(sampler, kind):
    """Mean power over the sampled window, or None with a reason when there is too little to average."""
    times, values = sampler.times, sampler.values
    if len(values) < 2:
        return None, "only %d reading(s) in the window (%d failed%s)" % (
            len(values),
            sampler.errors,
            (": " + sampler.last_error) if sampler.last_error else "",
        )
    span = times[-1] - times[0]
    if span <= 0:
        return None, "readings have no time span"
    stats = {"samples": len(values), "seconds": span, "rate_hz": (len(values) - 1) / span}
    if kind == "energy":
        stats["mean_w"] = (values[-1] - values[0]) / span
        stats["distinct_values"] = len(set(values))
    else:
        area = 0.0
        for i in range(1, len(values)):
            area += (values[i] + values[i - 1]) * 0.5 * (times[i] - times[i - 1])
        stats["mean_w"] = area / span
        stats["min_w"] = min(values)
        stats["max_w"] = max(values)
        stats["distinct_values"] = len(set(values))
    rails = _rail_means(times, sampler.rails, kind)
    if rails:
        stats["rails_w"] = rails
    return stats, None


def _rail_means(times, rails, kind):
    names = [name for name in (rails[0] or {})] if rails else []
    if not names or any(r is None for r in rails):
        return None
    out = {}
    span = times[-1] - times[0]
    for name in names:
        series = [r.get(name) for r in rails]
        if any(v is None for v in series):
            continue
        if kind == "energy":
            out[name] = (series[-1] - series[0]) / span
        else:
            area = 0.0
            for i in range(1, len(series)):
                area += (series[i] + series[i - 1]) * 0.5 * (times[i] - times[i - 1])
            out[name] = area / span
    return out


def per_inference(run, idle, inferences, window_s):
    """Energy figures in mJ from the run's and the idle window's statistics."""
    gross_j = run["mean_w"] * window_s
    result = {
        "mean_w": run["mean_w"],
        "window_s": window_s,
        "energy_mj": gross_j * 1000.0,
        "mj_per_inference": gross_j * 1000.0 / inferences,
        "mj_per_inference_above_idle": None,
    }
    if idle is not None:
        result["mj_per_inference_above_idle"] = (run["mean_w"] - idle["mean_w"]) * window_s * 1000.0 / inferences
    return result
