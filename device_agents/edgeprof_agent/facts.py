"""What board is this: the facts recorded beside every measurement."""

import os
import platform
import socket

from . import memory


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def os_release(path="/etc/os-release"):
    text = _read(path) or ""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values.get("PRETTY_NAME")


def device_facts():
    uname = platform.uname()
    return {
        "hostname": socket.gethostname(),
        "machine": uname.machine,
        "system": uname.system,
        "kernel": uname.release,
        "os": os_release(),
        "board": _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "memory": memory.meminfo(),
    }
