"""Energy: find the board's power sensor, measure idle power, sample beside the inference loop, report mJ.

One plugin a file, tried in this order (the first that can measure wins; ``energy`` in the request names one to
force it, or ``off``): Jetson INA3221, Raspberry Pi 5 PMIC, INA219/INA226 (ina2xx), a battery fuel gauge, RAPL, any
other hwmon power sensor. ``command`` (a user-given command printing watts) is used when ``energy_command`` is set.

Default sampling rates: 100 Hz for sysfs sensors and 10 Hz for sensors read by spawning a command. The sampler runs
in a sibling process (sidecar.py), not in the timed one: a Python thread reading a sysfs file at 1 kHz inside it
slowed a 2-thread inference by 9-18 % on a 2-core machine (FIELD-NOTES; ``scripts/bench-agent`` measures the
sibling's cost). Each result reports the rate achieved, where the sampler ran and its own CPU time.
"""

from . import battery, command, hwmon, ina2xx, ina3221, rapl, rpi_pmic
from .base import Sampler, SensorUnavailable, per_inference, window_stats

PLUGINS = (
    ("jetson-ina3221", ina3221),
    ("rpi5-pmic", rpi_pmic),
    ("ina2xx", ina2xx),
    ("battery", battery),
    ("rapl", rapl),
    ("hwmon", hwmon),
)
COMMAND = ("command", command)
SYSFS_RATE_HZ = 100.0
COMMAND_RATE_HZ = 10.0
NAMES = tuple(name for name, _m in PLUGINS) + ("command",)


def discover(options):
    """``(sensor, checked)``: the sensor to use (or None) and, for every plugin tried, why it could not measure."""
    choice = (options.get("energy") or "auto").lower()
    if choice == "off":
        return None, {"energy": "disabled by request (--energy off)"}
    if options.get("energy_command"):
        plugins = [COMMAND] if choice in ("auto", "command") else []
    elif choice == "command":
        return None, {"command": "--energy command needs --energy-command"}
    else:
        plugins = []
    if choice == "auto":
        plugins += list(PLUGINS)
    elif choice != "command":
        plugins = [p for p in PLUGINS if p[0] == choice]
        if not plugins:
            return None, {"energy": "unknown sensor %r; choose auto, off or one of %s" % (choice, ", ".join(NAMES))}
    checked = {}
    for name, module in plugins:
        try:
            return module.discover(options), checked
        except SensorUnavailable as exc:
            checked[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the measurement
            checked[name] = "%s: %s" % (type(exc).__name__, exc)
    return None, checked


def sensors_found(options=None):
    """For ``hello``: the sensor the agent would use and why the others cannot measure."""
    sensor, checked = discover(options or {})
    found = []
    if sensor is not None:
        found.append(sensor.describe())
        sensor.close()
    return {"found": found, "unavailable": checked}


def rate_for(sensor, options):
    if options.get("energy_rate_hz"):
        return float(options["energy_rate_hz"])
    return COMMAND_RATE_HZ if sensor.spawns_process else SYSFS_RATE_HZ


def unavailable(checked):
    if "energy" in checked:
        reason = checked["energy"]
    elif checked:
        # One short line for tables and summaries; each plugin's own reason stays in "checked".
        reason = "no power sensor on this board (looked for %s)" % ", ".join(checked)
    else:
        reason = "no power sensor on this board"
    return {"available": False, "reason": reason, "checked": checked}


def figures(info, kind, rate_hz, idle, idle_reason, run, run_why, inferences, window_s, cost):
    """The energy result from window statistics (``window_stats``) of the idle and measured windows.

    ``info``: the sensor's ``describe()``; ``cost``: the sampler's own CPU time (``cpu_s``, over ``cpu_window_s``)
    and where it ran (``where``).
    """
    if run is None:
        out = {
            "available": False,
            "reason": "the measured window (%.3f s) held too few sensor readings at %.0f Hz: %s; "
            "raise --min-seconds" % (window_s, rate_hz, run_why),
        }
        out.update(info)
        return out
    out = {"available": True}
    out.update(info)
    cpu_s, cpu_window = cost.get("cpu_s"), cost.get("cpu_window_s")
    out.update(
        {
            "target_rate_hz": rate_hz,
            "sample_rate_hz": run["rate_hz"],
            "samples": run["samples"],
            "distinct_values": run["distinct_values"],
            "read_errors": cost.get("read_errors", 0),
            "sampler": cost.get("where"),
            "sampler_cpu_s": cpu_s,
            "sampler_cpu_share": cpu_s / cpu_window if cpu_s is not None and cpu_window else None,
            "idle_w": idle["mean_w"] if idle else None,
            "idle_seconds": idle["seconds"] if idle else None,
            "idle_samples": idle["samples"] if idle else None,
        }
    )
    if idle_reason:
        out["idle_reason"] = idle_reason
    for key in ("min_w", "max_w"):
        if key in run:
            out[key] = run[key]
    out.update(per_inference(run, idle, inferences, window_s))
    if "rails_w" in run:
        rails = dict((name, {"mean_w": w}) for name, w in run["rails_w"].items())
        for name, w in ((idle or {}).get("rails_w") or {}).items():
            rails.setdefault(name, {})["idle_w"] = w
        out["rails"] = rails
    return out


class Meter(object):
    """The in-process fallback: idle first, then a sampler thread around the measured loop."""

    def __init__(self, sensor, options):
        self.sensor = sensor
        self.rate_hz = rate_for(sensor, options)
        self.idle_seconds = float(options.get("idle_seconds") or 0.0)
        self.idle = None
        self.idle_reason = None
        self.sampler = None

    def measure_idle(self):
        if self.idle_seconds <= 0:
            self.idle_reason = "idle power was not measured (--idle-seconds 0)"
            return
        sampler = Sampler(self.sensor, self.rate_hz).run_for(self.idle_seconds)
        self.idle, why = window_stats(sampler, self.sensor.kind)
        if self.idle is None:
            self.idle_reason = "idle window: " + why

    def start(self):
        self.sampler = Sampler(self.sensor, self.rate_hz).start()

    def stop(self):
        if self.sampler is not None:
            self.sampler.stop()

    def result(self, inferences, window_s):
        info = self.sensor.describe()
        self.sensor.close()
        run, why = window_stats(self.sampler, self.sensor.kind)
        cost = {
            "cpu_s": self.sampler.cpu_s,
            "cpu_window_s": run["seconds"] if run else None,
            "read_errors": self.sampler.errors,
            "where": "in-process",
        }
        return figures(
            info, self.sensor.kind, self.rate_hz, self.idle, self.idle_reason, run, why, inferences, window_s, cost
        )
