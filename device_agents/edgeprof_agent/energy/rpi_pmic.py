"""Raspberry Pi 5 PMIC, through ``vcgencmd pmic_read_adc``.

The firmware prints one line per ADC channel: ``  VDD_CORE_A current(7)=1.08053000A`` and
``  VDD_CORE_V volt(15)=0.72178200V``; the channel numbers of a rail's current and voltage differ, so rails are
paired by name. Power is the sum of current x voltage over the paired rails. ``EXT5V_V`` (the 5 V input) has no
current channel, so the figure covers the PMIC's rails (SoC, DRAM, I/O) and not the 5 V peripherals (USB devices,
fan, HATs): it is not the wall power. Earlier Pis have no such ADC. Each reading spawns ``vcgencmd``, so the default
sampling rate is lower than for sysfs sensors.
"""

import re

from .. import commands
from .base import Sensor, SensorUnavailable

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(current|volt)\(\d+\)=\s*([-+0-9.eE]+|nan)\s*([AV])\s*$", re.M)


def parse(text):
    """{rail: watts} for every rail with both a current and a voltage line."""
    amps, volts = {}, {}
    for match in _LINE.finditer(text or ""):
        rail, suffix, _kind, raw, _unit = match.groups()
        try:
            value = float(raw)
        except ValueError:
            continue
        if value != value:  # nan
            continue
        (amps if suffix == "A" else volts)[rail] = value
    return dict((rail, amps[rail] * volts[rail]) for rail in amps if rail in volts)


class RpiPmic(Sensor):
    plugin = "rpi5-pmic"
    label = "Raspberry Pi 5 PMIC (vcgencmd pmic_read_adc)"
    scope = "sum of the PMIC's rails (SoC, DRAM, I/O); excludes 5 V peripherals such as USB devices"
    total = "sum of paired rails"
    spawns_process = True

    def read(self):
        out, why = commands.run(["vcgencmd", "pmic_read_adc"], timeout=2.0)
        if out is None:
            raise OSError(why)
        rails = parse(out)
        if not rails:
            raise ValueError("no paired rails in vcgencmd output")
        return sum(rails.values()), rails

    def sources(self):
        return ["vcgencmd pmic_read_adc"]


def discover(options):
    if commands.which("vcgencmd") is None:
        raise SensorUnavailable("vcgencmd not found")
    out, why = commands.run(["vcgencmd", "pmic_read_adc"], timeout=3.0)
    if out is None:
        raise SensorUnavailable("%s (pmic_read_adc exists on the Raspberry Pi 5 only)" % why)
    if not parse(out):
        raise SensorUnavailable("vcgencmd pmic_read_adc printed no current/voltage pairs")
    return RpiPmic()
