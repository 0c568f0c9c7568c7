"""Intel (and AMD, same driver) RAPL energy counters, through the powercap class.

``/sys/class/powercap/intel-rapl:N/`` per package (``name`` = ``package-N``; ``psys`` for the whole SoC platform
where the firmware offers it), ``energy_uj`` counting µJ and wrapping to 0 at ``max_energy_range_uj``. The counter
is read at the sampling rate, so a wrap between two readings is seen and corrected (a wrap takes minutes even at
full power). Sub-zones (``intel-rapl:N:M``: core, uncore, dram) are parts of their package and not added. Since
Linux 5.10 ``energy_uj`` is readable by root only; the agent then says so. RAPL covers CPU packages (or the
platform with psys), not the rest of the board.
"""

from .. import sysfs
from .base import Sensor, SensorUnavailable


class _Zone(object):
    def __init__(self, path, name):
        self.name = name
        self.reader = sysfs.open_reader(path + "/energy_uj")
        self.max_uj = sysfs.read_int(path + "/max_energy_range_uj")
        self.last = None
        self.wraps = 0

    def joules(self):
        raw = self.reader.read_int()
        if self.last is not None and raw < self.last and self.max_uj:
            self.wraps += 1
        self.last = raw
        return (raw + self.wraps * (self.max_uj or 0)) / 1e6


class Rapl(Sensor):
    plugin = "rapl"
    label = "RAPL energy counters (powercap)"
    kind = "energy"

    def __init__(self, zones):
        self.zones = zones
        names = [z.name for z in zones]
        if names == ["psys"]:
            self.total = "psys"
            self.scope = "the SoC platform (RAPL psys), not the rest of the board"
        else:
            self.total = " + ".join(names)
            self.scope = "CPU package(s) only (RAPL package domains), not memory or the rest of the board"

    def read(self):
        rails = dict((z.name, z.joules()) for z in self.zones)
        return sum(rails.values()), rails

    def sources(self):
        return [z.reader.path for z in self.zones]

    def close(self):
        for z in self.zones:
            z.reader.close()


def discover(options):
    tops = []
    for path in sysfs.glob("/sys/class/powercap/intel-rapl:*"):
        if path.rsplit("/", 1)[-1].count(":") != 1:
            continue  # a sub-zone
        name = sysfs.read_text(path + "/name") or path.rsplit("/", 1)[-1]
        if sysfs.exists(path + "/energy_uj"):
            tops.append((path, name))
    if not tops:
        raise SensorUnavailable("no RAPL zone in /sys/class/powercap")
    psys = [t for t in tops if t[1] == "psys"]
    chosen = psys or [t for t in tops if t[1].startswith("package")] or tops
    zones = []
    for path, name in chosen:
        if sysfs.read_int(path + "/energy_uj") is None:
            raise SensorUnavailable(
                "%s/energy_uj is not readable (root only since Linux 5.10); run the agent as root" % path
            )
        zones.append(_Zone(path, name))
    return Rapl(zones)
