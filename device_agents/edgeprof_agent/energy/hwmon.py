"""Any other hwmon chip that reports power: ``power*_input`` (instantaneous) or ``power*_average``, in µW.

The kernel's hwmon sysfs interface gives every power channel in microwatts, whatever the chip; what the channel
covers depends on the chip (a board's supply monitor, a PMIC, a GPU), so the result names the chip and the channel's
label. Chips that have their own plugin (ina3221, ina2xx) are left to it. The first chip with power channels is
used, all of its channels summed; other chips are listed.
"""

import re

from .. import sysfs
from .base import Sensor, SensorUnavailable
from .ina2xx import CHIPS as INA2XX_CHIPS

SKIP = ("ina3221",) + INA2XX_CHIPS
_CHANNEL = re.compile(r"^power(\d+)_(input|average)$")


def _chips():
    found = []
    for path in sysfs.glob("/sys/class/hwmon/hwmon*"):
        name = sysfs.read_text(path + "/name") or path.rsplit("/", 1)[-1]
        if name in SKIP:
            continue
        channels = {}
        for entry in sysfs.listdir(path):
            match = _CHANNEL.match(entry)
            if match:
                number, kind = match.groups()
                if kind == "input" or number not in channels:
                    channels[number] = entry
        if channels:
            found.append((name, path, [channels[n] for n in sorted(channels, key=int)]))
    return found


class HwmonPower(Sensor):
    plugin = "hwmon"

    def __init__(self, name, path, files, others):
        self.label = "hwmon %s (%s)" % (name, path.rsplit("/", 1)[-1])
        self.others = others
        self._channels = []
        for entry in files:
            number = entry[len("power") :].split("_")[0]
            label = sysfs.read_text("%s/power%s_label" % (path, number)) or entry
            reader = sysfs.open_reader(path + "/" + entry)
            if reader is None:
                raise SensorUnavailable("cannot open %s/%s (permissions?)" % (path, entry))
            self._channels.append((label, reader))
        labels = [label for label, _r in self._channels]
        self.total = labels[0] if len(labels) == 1 else "sum of " + ", ".join(labels)
        self.scope = "what hwmon chip %s measures (%s)" % (name, ", ".join(labels))

    def read(self):
        rails = dict((label, reader.read_int() / 1e6) for label, reader in self._channels)
        return sum(rails.values()), (rails if len(rails) > 1 else None)

    def sources(self):
        return [reader.path for _label, reader in self._channels]

    def describe(self):
        info = Sensor.describe(self)
        if self.others:
            info["other_chips"] = self.others
        return info

    def close(self):
        for _label, reader in self._channels:
            reader.close()


def discover(options):
    chips = _chips()
    if not chips:
        raise SensorUnavailable("no hwmon chip with power*_input or power*_average")
    name, path, files = chips[0]
    return HwmonPower(name, path, files, ["%s at %s" % (c[0], c[1]) for c in chips[1:]])
