"""NVIDIA Jetson's INA3221 rail monitors.

Two kernel layouts:

* hwmon (mainline driver; L4T R34+ / JetPack 5+): ``/sys/class/hwmon/hwmon*/name`` is ``ina3221``, each channel N
  in 1..3 has ``inN_label`` (the rail), ``inN_input`` (bus voltage, mV) and ``currN_input`` (mA), so the rail's power
  is mV x mA = µW. ``in7`` ("sum of shunt voltages") and rails labelled ``NC`` (not connected) are skipped.
* iio (NVIDIA's ina3221x driver; L4T R32 and older): ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/`` with
  ``rail_name_N`` and ``in_power{N}_input`` in mW.

Which figure is the board's: on modules with an input rail (``POM_5V_IN`` on Nano/TX2, ``VDD_IN`` on Xavier NX and
Orin NX/Nano) that rail is measured upstream of the others and already is the module total; summing would count
twice. Where no input rail exists (AGX Xavier: GPU, CPU, SOC, CV, VDDRQ, SYS5V; AGX Orin) the total is the sum of the
rails. Either way the figure is the module's, not the carrier board's peripherals, and not this process's alone.
"""

from .. import sysfs
from .base import Sensor, SensorUnavailable

INPUT_RAILS = ("POM_5V_IN", "VDD_IN")


def _hwmon_rails():
    rails = []
    for path in sysfs.glob("/sys/class/hwmon/hwmon*"):
        if (sysfs.read_text(path + "/name") or "") != "ina3221":
            continue
        for channel in (1, 2, 3):
            label = sysfs.read_text("%s/in%d_label" % (path, channel))
            if not label or label.upper() == "NC" or label.upper().startswith("NC "):
                continue
            if sysfs.read_text("%s/in%d_enable" % (path, channel)) == "0":
                continue
            volt = "%s/in%d_input" % (path, channel)
            curr = "%s/curr%d_input" % (path, channel)
            if sysfs.exists(volt) and sysfs.exists(curr):
                rails.append((label, volt, curr))
    return rails


def _iio_rails():
    rails = []
    for path in sysfs.glob("/sys/bus/i2c/drivers/ina3221x/*/iio:device*"):
        for channel in (0, 1, 2):
            label = sysfs.read_text("%s/rail_name_%d" % (path, channel))
            power = "%s/in_power%d_input" % (path, channel)
            if label and sysfs.exists(power):
                rails.append((label, power))
    return rails


class _Ina3221(Sensor):
    plugin = "jetson-ina3221"
    scope = "Jetson module input power (whole module, all processes)"

    def _choose_total(self, labels):
        for name in INPUT_RAILS:
            if name in labels:
                self.total = name
                self.scope = "Jetson module input power, rail %s (whole module, all processes)" % name
                return
        self.total = "sum of rails"
        self.scope = "sum of the Jetson module's monitored rails (whole module, all processes)"

    def read(self):
        rails = self._read_rails()
        if self.total in rails:
            return rails[self.total], rails
        return sum(rails.values()), rails


class HwmonIna3221(_Ina3221):
    label = "Jetson INA3221 (hwmon)"

    def __init__(self, rails):
        self._rails = []
        for label, volt, curr in rails:
            v, c = sysfs.open_reader(volt), sysfs.open_reader(curr)
            if v is None or c is None:
                raise SensorUnavailable("cannot open %s or %s (permissions?)" % (volt, curr))
            self._rails.append((label, v, c))
        self._choose_total([r[0] for r in rails])

    def _read_rails(self):
        # mV x mA = µW
        return dict((label, v.read_int() * c.read_int() / 1e6) for label, v, c in self._rails)

    def sources(self):
        return [r.path for _label, v, c in self._rails for r in (v, c)]

    def close(self):
        for _label, v, c in self._rails:
            v.close()
            c.close()


class IioIna3221(_Ina3221):
    label = "Jetson INA3221 (ina3221x iio, L4T R32)"

    def __init__(self, rails):
        self._rails = []
        for label, power in rails:
            reader = sysfs.open_reader(power)
            if reader is None:
                raise SensorUnavailable("cannot open %s (permissions?)" % power)
            self._rails.append((label, reader))
        self._choose_total([r[0] for r in rails])

    def _read_rails(self):
        return dict((label, reader.read_int() / 1000.0) for label, reader in self._rails)  # mW

    def sources(self):
        return [reader.path for _label, reader in self._rails]

    def close(self):
        for _label, reader in self._rails:
            reader.close()


def discover(options):
    rails = _hwmon_rails()
    if rails:
        return HwmonIna3221(rails)
    rails = _iio_rails()
    if rails:
        return IioIna3221(rails)
    raise SensorUnavailable("no ina3221 hwmon device and no ina3221x iio device")
