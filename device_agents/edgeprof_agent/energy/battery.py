"""A battery's fuel gauge (Android phones under Termux, laptops), through the power_supply class.

``/sys/class/power_supply/<name>/`` with ``type`` = ``Battery``, ``current_now`` (µA) and ``voltage_now`` (µV).
The kernel documents negative current for discharging since 2020, but older drivers use the opposite sign or only
positive values, so the magnitude is used and the direction comes from ``status``. While the battery charges (or is
full on the charger) its current is not what the device draws, so the sensor refuses to measure then. Fuel gauges
update slowly (often about once a second): the result's ``distinct_values`` shows how many different readings the
window really held.
"""

from .. import sysfs
from .base import Sensor, SensorUnavailable


def _batteries():
    found = []
    for path in sysfs.glob("/sys/class/power_supply/*"):
        if (sysfs.read_text(path + "/type") or "") != "Battery":
            continue
        if sysfs.exists(path + "/current_now") and sysfs.exists(path + "/voltage_now"):
            found.append(path)
    return found


class Battery(Sensor):
    plugin = "battery"
    total = "|current_now| x voltage_now"

    def __init__(self, path):
        self.path = path
        self.label = "battery fuel gauge (%s)" % path.rsplit("/", 1)[-1]
        self.scope = "the whole device's draw from its battery (all processes, screen included)"
        self._current = sysfs.open_reader(path + "/current_now")
        self._voltage = sysfs.open_reader(path + "/voltage_now")
        if self._current is None or self._voltage is None:
            raise SensorUnavailable("cannot open %s/current_now or voltage_now (SELinux or permissions)" % path)

    def read(self):
        # µA x µV = pW
        return abs(self._current.read_int()) * self._voltage.read_int() / 1e12, None

    def sources(self):
        return [self._current.path, self._voltage.path]

    def close(self):
        self._current.close()
        self._voltage.close()


def discover(options):
    batteries = _batteries()
    if not batteries:
        raise SensorUnavailable("no battery with current_now and voltage_now in /sys/class/power_supply")
    path = batteries[0]
    status = sysfs.read_text(path + "/status") or "Unknown"
    if status in ("Charging", "Full"):
        raise SensorUnavailable(
            "the battery %s is %s: its current is the charger's, not the device's draw; unplug the charger"
            % (path.rsplit("/", 1)[-1], status.lower())
        )
    return Battery(path)
