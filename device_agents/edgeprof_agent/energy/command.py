"""A user-given command that prints the current power in watts (a USB meter's CLI, a lab supply's script).

The command is an argument list run without a shell, once per reading; the first number in its output is the
reading, in watts unless followed by ``mW`` or ``uW``/``µW``. It runs on the board, next to the agent. Because each
reading spawns a process, the default sampling rate is that of the other command-based sensors.
"""

import re

from .. import commands
from .base import Sensor, SensorUnavailable

_NUMBER = re.compile(r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(mW|uW|µW|W)?")


def parse_watts(text):
    match = _NUMBER.search(text or "")
    if not match:
        raise ValueError("no number in the command's output %r" % (text or "")[:80])
    value = float(match.group(1))
    unit = match.group(2) or "W"
    return value / 1000.0 if unit == "mW" else value / 1e6 if unit in ("uW", "µW") else value


class CommandSensor(Sensor):
    plugin = "command"
    spawns_process = True

    def __init__(self, argv):
        self.argv = [str(a) for a in argv]
        self.label = "command: %s" % " ".join(self.argv)
        self.scope = "whatever the command measures (given by the user)"
        self.total = "the command's output"

    def read(self):
        out, why = commands.run(self.argv, timeout=5.0)
        if out is None:
            raise OSError(why)
        return parse_watts(out), None

    def sources(self):
        return [" ".join(self.argv)]


def discover(options):
    argv = options.get("energy_command")
    if not argv:
        raise SensorUnavailable("no --energy-command given")
    if isinstance(argv, str):
        argv = argv.split()
    sensor = CommandSensor(argv)
    try:
        sensor.read()
    except (OSError, ValueError) as exc:
        raise SensorUnavailable("the energy command failed: %s" % exc)
    return sensor
