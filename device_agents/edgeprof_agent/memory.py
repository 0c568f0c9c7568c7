"""Resident memory of this process, from /proc (Linux and Android), and the board's memory.

The peak (VmHWM) is reset through /proc/self/clear_refs ("5", Linux >= 4.0) before the model loads and again before
the first inference, so each phase's peak belongs to that phase and not to the agent's own imports. A reset counts
only when the kernel accepted the write *and* VmHWM then fell to VmRSS; otherwise the result says the peak includes
everything since the process started.
"""

import gc

from . import sysfs


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
    """``(True, None)`` when the high-water mark was reset, else ``(False, why)``."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError as exc:
        return False, "the kernel refused /proc/self/clear_refs (%s)" % (exc.strerror or exc)
    peak, rss = _status_kb("VmHWM"), _status_kb("VmRSS")
    if peak is None or rss is None:
        return False, "/proc/self/status has no VmHWM/VmRSS"
    # The write succeeds on kernels older than 4.0 too, which ignore "5": check that the peak really fell.
    if peak > rss + 256:
        return False, "the kernel accepted clear_refs but kept VmHWM (%d kB > VmRSS %d kB); Linux < 4.0?" % (peak, rss)
    return True, None


def meminfo():
    """Total and available memory of the board in kB (MemAvailable needs Linux >= 3.14)."""
    out = {}
    text = sysfs.read_text("/proc/meminfo") or ""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree", "SwapTotal", "SwapFree"):
            try:
                out[key] = int(rest.split()[0])
            except (ValueError, IndexError):
                pass
    return {
        "total_kb": out.get("MemTotal"),
        "available_kb": out.get("MemAvailable"),
        "free_kb": out.get("MemFree"),
        "swap_total_kb": out.get("SwapTotal"),
        "swap_free_kb": out.get("SwapFree"),
    }
