"""What every power sensor plugin provides, the sampler thread, and the arithmetic of energy per inference.

A sensor reads either instantaneous power in watts (``kind = "power"``: INA3221, INA2xx, PMIC, battery, hwmon, a
command) or a cumulative energy counter in joules (``kind = "energy"``: RAPL). The sampler reads it at a fixed rate
in a thread: in the sibling process (sidecar.py) by default, in the timed process only as a fallback. Each reading
is stamped with the monotonic clock at the middle of the read. A window (idle, measured loop) takes the readings
inside it, with the values at its two ends interpolated from the readings around them. Power sensors are averaged
over time (trapezoids, so uneven sample spacing does not bias the mean); energy counters are differenced.

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

    def __init__(self, sensor, rate_hz, clock=time.monotonic):
        self.sensor = sensor
        self.rate_hz = float(rate_hz)
        self.clock = clock
        self.thread_id = None  # the native id of the sampling thread, once it runs
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
        t0 = self.clock()
        try:
            value, rails = self.sensor.read()
        except Exception as exc:  # noqa: BLE001 - a failed read is counted, not fatal
            self.errors += 1
            self.last_error = "%s: %s" % (type(exc).__name__, exc)
            return
        self.times.append((t0 + self.clock()) * 0.5)  # a command takes milliseconds: stamp its middle
        self.values.append(float(value))
        self.rails.append(rails)

    def _run(self):
        native = getattr(threading, "get_native_id", None)
        self.thread_id = native() if native else None
        period = 1.0 / self.rate_hz
        thread_clock = getattr(time, "thread_time", None)
        cpu0 = thread_clock() if thread_clock else 0.0
        children0 = _children_cpu_s() if self.sensor.spawns_process else 0.0
        deadline = self.clock()
        while True:
            with self._lock:
                if self._stopping:
                    break
                self._sample()
            deadline += period
            delay = deadline - self.clock()
            if delay < 0:  # the sensor is slower than the rate: sample back to back, never in bursts
                deadline = self.clock()
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


class Series(object):
    """Readings of one window: times, values, rails (a dict per reading or None) and how many were real readings
    (the window's two ends may be interpolated points)."""

    def __init__(self, times, values, rails, errors=0, last_error=None, readings=None, rate_hz=None):
        self.times = times
        self.values = values
        self.rails = rails
        self.errors = errors
        self.last_error = last_error
        self.readings = len(values) if readings is None else readings
        self.rate_hz = rate_hz  # achieved rate of the real readings


def _between(t, t_a, t_b, a, b):
    if a is None or b is None:
        return a if b is None else b
    if t_b == t_a:
        return a
    return a + (b - a) * (t - t_a) / (t_b - t_a)


def _rails_between(t, t_a, t_b, a, b):
    if not a or not b:
        return a or b
    return dict((name, _between(t, t_a, t_b, a[name], b.get(name))) for name in a)


def clip(times, values, rails, start, end, errors=0, last_error=None):
    """The readings in ``[start, end]``, with interpolated points at both ends when readings lie beyond them."""
    inside = [i for i, t in enumerate(times) if start <= t <= end]
    if not inside:
        return Series([], [], [], errors, last_error, 0)
    first, last = inside[0], inside[-1]
    span = times[last] - times[first]
    rate = (len(inside) - 1) / span if len(inside) > 1 and span > 0 else None
    out_t = [times[i] for i in inside]
    out_v = [values[i] for i in inside]
    out_r = [rails[i] for i in inside]
    if len(inside) >= 2 and first > 0 and times[first] > start:
        a = first - 1
        out_t.insert(0, start)
        out_v.insert(0, _between(start, times[a], times[first], values[a], values[first]))
        out_r.insert(0, _rails_between(start, times[a], times[first], rails[a], rails[first]))
    if len(inside) >= 2 and last + 1 < len(times) and times[last] < end:
        b = last + 1
        out_t.append(end)
        out_v.append(_between(end, times[last], times[b], values[last], values[b]))
        out_r.append(_rails_between(end, times[last], times[b], rails[last], rails[b]))
    return Series(out_t, out_v, out_r, errors, last_error, len(inside), rate)


def window_stats(sampler, kind):
    """Mean power over the sampled window, or None with a reason when there is too little to average."""
    times, values = sampler.times, sampler.values
    readings = getattr(sampler, "readings", len(values))
    if readings < 2:
        return None, "only %d reading(s) in the window (%d failed%s)" % (
            readings,
            sampler.errors,
            (": " + sampler.last_error) if sampler.last_error else "",
        )
    span = times[-1] - times[0]
    if span <= 0:
        return None, "readings have no time span"
    rate = sampler.rate_hz if isinstance(sampler, Series) and sampler.rate_hz else (len(values) - 1) / span
    stats = {"samples": readings, "seconds": span, "rate_hz": rate}
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
