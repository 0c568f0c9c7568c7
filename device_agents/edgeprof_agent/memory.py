"""Resident memory of this process, from /proc (Linux and Android).

The peak (VmHWM) is reset through /proc/self/clear_refs ("5", Linux >= 4.0) just before the model loads, so that the
peak belongs to the model and not to the agent's own imports. Where the kernel refuses, the result says so.
"""

import os


def _status_kb(field, path="/proc/self/status"):
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kb():
    return _status_kb("VmRSS")


def peak_rss_kb():
    value = _status_kb("VmHWM")
    if value is None:
        try:
            import resource

            value = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux
        except Exception:  # noqa: BLE001
            value = None
    return value


def reset_peak():
    """True when the kernel accepted the reset of the high-water mark."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def meminfo(path="/proc/meminfo"):
    """Total and available memory of the board in kB."""
    out = {}
    try:
        with open(path) as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return {"total_kb": out.get("MemTotal"), "available_kb": out.get("MemAvailable")}


def pid():
    return os.getpid()
