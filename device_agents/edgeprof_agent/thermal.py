"""Thermal state: SoC temperatures, CPU clocks, cooling devices and the Raspberry Pi's throttle bits.

Read before and after a measurement and watched at a low rate (1 Hz by default) in between, so a result can say
whether the board throttled while it was measured. The watch runs in the sibling process (sidecar.py), not in the
timed one; ``vcgencmd get_throttled``'s sticky bits (16-19) are read when it starts and when it stops. Sources
(kernel ABI, via the sysfs root): ``/sys/class/thermal/thermal_zone*/{type,temp}`` (temp in m°C),
``/sys/class/thermal/cooling_device*/{type,cur_state,max_state}``,
``/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq`` (kHz), and on Raspberry Pis ``vcgencmd get_throttled``.

``throttled`` is True when any source saw throttling during the run, False when at least one source was watched
and none did, and None when the board offers no source at all (then ``throttle_sources`` is empty).
"""

import re
import threading
import time

from . import commands, sysfs

# vcgencmd get_throttled, as documented by Raspberry Pi: bits 0-3 now, bits 16-19 since boot.
THROTTLE_BITS = (
    (0, "under-voltage detected"),
    (1, "arm frequency capped"),
    (2, "currently throttled"),
    (3, "soft temperature limit active"),
    (16, "under-voltage has occurred"),
    (17, "arm frequency capping has occurred"),
    (18, "throttling has occurred"),
    (19, "soft temperature limit has occurred"),
)
NOW_MASK = 0xF
SINCE_BOOT_MASK = 0xF0000

# Cooling devices that slow the CPU or the SoC when active (cpufreq/devfreq cooling, Raspberry Pi, Jetson).
_FREQ_COOLING = re.compile(r"cpufreq|cpu-?freq|devfreq|thermal-cpufreq|processor|gpufreq|cpu", re.I)


def decode_throttled(value):
    return {
        "raw": "0x%x" % value,
        "now": [label for bit, label in THROTTLE_BITS if bit < 16 and value & (1 << bit)],
        "since_boot": [label for bit, label in THROTTLE_BITS if bit >= 16 and value & (1 << bit)],
        "under_voltage_now": bool(value & 1),
        "throttling_now": bool(value & 0xE),
    }


def parse_throttled(text):
    """'throttled=0x50005' -> 0x50005, or None."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text or "")
    if not match:
        return None
    return int(match.group(1), 0)


def read_throttled():
    if commands.which("vcgencmd") is None:
        return None, "vcgencmd not found"
    out, why = commands.run(["vcgencmd", "get_throttled"], timeout=3.0)
    if out is None:
        return None, why
    value = parse_throttled(out)
    if value is None:
        return None, "vcgencmd get_throttled printed %r" % out.strip()[:80]
    return value, None


def zones():
    found = []
    for path in sysfs.glob("/sys/class/thermal/thermal_zone*"):
        milli = sysfs.read_int(path + "/temp")
        if milli is None:
            continue
        found.append(
            {"zone": path.rsplit("/", 1)[-1], "type": sysfs.read_text(path + "/type"), "temp_c": milli / 1000.0}
        )
    return found


def cooling_devices():
    found = []
    for path in sysfs.glob("/sys/class/thermal/cooling_device*"):
        kind = sysfs.read_text(path + "/type") or ""
        cur = sysfs.read_int(path + "/cur_state")
        if cur is None:
            continue
        found.append(
            {
                "device": path.rsplit("/", 1)[-1],
                "type": kind,
                "cur_state": cur,
                "max_state": sysfs.read_int(path + "/max_state"),
                "slows_cpu": bool(_FREQ_COOLING.search(kind)) and "fan" not in kind.lower(),
            }
        )
    return found


def cpu_clocks_mhz():
    clocks = {}
    for path in sysfs.glob("/sys/devices/system/cpu/cpu[0-9]*"):
        khz = sysfs.read_int(path + "/cpufreq/scaling_cur_freq")
        if khz is not None:
            clocks[path.rsplit("cpu", 1)[-1]] = round(khz / 1000.0, 1)
    return clocks


def snapshot():
    value, why = read_throttled()
    snap = {
        "time": time.time(),
        "zones": zones(),
        "cpu_mhz": cpu_clocks_mhz(),
        "cooling": cooling_devices(),
        "rpi_throttled": decode_throttled(value) if value is not None else None,
    }
    snap["_throttled_value"] = value
    snap["_throttled_why"] = why
    return snap


def _active_cooling(snap):
    return [
        "%s (%s) at state %d" % (c["device"], c["type"], c["cur_state"])
        for c in snap["cooling"]
        if c["slows_cpu"] and c["cur_state"] > 0
    ]


class Watch(object):
    """A low-rate thread beside the measurement: peak temperatures, active cooling, Raspberry Pi throttle bits."""

    def __init__(self, interval_s=1.0):
        self.interval_s = float(interval_s)
        self.before = snapshot()
        self.polls = 0
        self.max_temp = dict((z["zone"], z["temp_c"]) for z in self.before["zones"])
        self.now_bits = 0
        self.cooling_seen = []
        self._stop = threading.Event()
        self._thread = None
        self.thread_id = None  # native id of the polling thread, once it runs
        self._use_vcgencmd = self.before["_throttled_value"] is not None

    def start(self):
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="edgeprof-thermal")
            self._thread.daemon = True
            self._thread.start()
        return self

    def _poll(self):
        for zone in zones():
            if zone["temp_c"] > self.max_temp.get(zone["zone"], -1e9):
                self.max_temp[zone["zone"]] = zone["temp_c"]
        for line in _active_cooling({"cooling": cooling_devices()}):
            if line not in self.cooling_seen:
                self.cooling_seen.append(line)
        if self._use_vcgencmd:
            value, _why = read_throttled()
            if value is not None:
                self.now_bits |= value & NOW_MASK
        self.polls += 1

    def _run(self):
        native = getattr(threading, "get_native_id", None)
        self.thread_id = native() if native else None
        while not self._stop.wait(self.interval_s):
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - a sensor read failing must not end the measurement
                pass

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        after = snapshot()
        return self._report(after)

    def _report(self, after):
        before = self.before
        for zone in after["zones"]:
            self.max_temp[zone["zone"]] = max(self.max_temp.get(zone["zone"], zone["temp_c"]), zone["temp_c"])
        evidence, sources = [], []
        if before["_throttled_value"] is not None or after["_throttled_value"] is not None:
            sources.append("vcgencmd get_throttled")
            b = before["_throttled_value"] or 0
            a = after["_throttled_value"] or 0
            now = (b | a | self.now_bits) & NOW_MASK
            if now:
                evidence.append("vcgencmd: " + ", ".join(decode_throttled(now)["now"]))
            new_sticky = (a & ~b) & SINCE_BOOT_MASK
            if new_sticky:
                evidence.append(
                    "vcgencmd: newly set during the run: " + ", ".join(decode_throttled(new_sticky)["since_boot"])
                )
        if any(c["slows_cpu"] for c in before["cooling"] + after["cooling"]):
            sources.append("thermal cooling devices")
            for line in _active_cooling(before) + self.cooling_seen + _active_cooling(after):
                text = "cooling device " + line
                if text not in evidence:
                    evidence.append(text)
        for snap in (before, after):
            snap.pop("_throttled_value", None)
            snap.pop("_throttled_why", None)
        throttled = bool(evidence) if sources else None
        report = {
            "watching": bool(before["zones"] or before["cooling"] or "vcgencmd get_throttled" in sources),
            "before": before,
            "after": after,
            "max_temp_c": self.max_temp,
            "watch_interval_s": self.interval_s,
            "watch_polls": self.polls,
            "throttled": throttled,
            "throttle_sources": sources,
            "throttle_evidence": evidence,
        }
        if not sources:
            report["throttle_reason"] = "no throttling source on this board: no vcgencmd, no CPU cooling device"
        return report
