"""An INA219 / INA226 (or another chip of the kernel's ina2xx driver) on I2C, through hwmon.

The ina2xx driver exposes ``in0_input`` (shunt voltage, mV), ``in1_input`` (bus voltage, mV), ``curr1_input`` (mA)
and ``power1_input`` (µW), computed by the chip from the shunt resistor in ``shunt_resistor`` (µΩ). Such a monitor
is wired by the user, usually in the board's supply line, so it measures whatever it was put in series with; the
result names the chip and its I2C device so the user can tell. With several such chips, the first is used and the
others are listed.
"""

from .. import sysfs
from .base import Sensor, SensorUnavailable

CHIPS = ("ina219", "ina220", "ina226", "ina230", "ina231", "ina260")


def _chips():
    found = []
    for path in sysfs.glob("/sys/class/hwmon/hwmon*"):
        name = sysfs.read_text(path + "/name") or ""
        if name in CHIPS and sysfs.exists(path + "/power1_input"):
            found.append((name, path))
    return found


class Ina2xx(Sensor):
    plugin = "ina2xx"
    total = "power1_input"

    def __init__(self, name, path, others):
        self.name = name
        self.path = path
        self.label = "%s power monitor (hwmon %s)" % (name.upper(), path.rsplit("/", 1)[-1])
        self.scope = "whatever the %s is wired in series with (normally the board's supply)" % name.upper()
        self.others = others
        self._reader = sysfs.open_reader(path + "/power1_input")
        if self._reader is None:
            raise SensorUnavailable("cannot open %s/power1_input (permissions?)" % path)

    def read(self):
        return self._reader.read_int() / 1e6, None  # µW

    def sources(self):
        return [self._reader.path]

    def describe(self):
        info = Sensor.describe(self)
        if self.others:
            info["other_monitors"] = self.others
        return info

    def close(self):
        self._reader.close()


def discover(options):
    chips = _chips()
    if not chips:
        raise SensorUnavailable("no ina219/ina226-family hwmon device")
    name, path = chips[0]
    return Ina2xx(name, path, ["%s at %s" % c for c in chips[1:]])
