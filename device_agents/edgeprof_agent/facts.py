"""What board is this: the facts recorded beside every measurement.

Each fact comes from the place the board itself keeps it (device tree, /proc/cpuinfo, cpufreq, DMI,
/etc/nv_tegra_release, Android's getprop) and is None when the board does not say; nothing is guessed.
"""

import os
import platform
import re
import socket
import sys

from . import commands, memory, sysfs

# CPU implementer and part numbers of /proc/cpuinfo (Arm's TRMs; the kernel's arch/arm64/include/asm/cputype.h).
ARM_PARTS = {
    "0x41": {
        "0xc07": "Cortex-A7",
        "0xc09": "Cortex-A9",
        "0xc0f": "Cortex-A15",
        "0xd01": "Cortex-A32",
        "0xd03": "Cortex-A53",
        "0xd04": "Cortex-A35",
        "0xd05": "Cortex-A55",
        "0xd06": "Cortex-A65",
        "0xd07": "Cortex-A57",
        "0xd08": "Cortex-A72",
        "0xd09": "Cortex-A73",
        "0xd0a": "Cortex-A75",
        "0xd0b": "Cortex-A76",
        "0xd0c": "Neoverse-N1",
        "0xd0d": "Cortex-A77",
        "0xd0e": "Cortex-A76AE",
        "0xd40": "Neoverse-V1",
        "0xd41": "Cortex-A78",
        "0xd42": "Cortex-A78AE",
        "0xd44": "Cortex-X1",
        "0xd46": "Cortex-A510",
        "0xd47": "Cortex-A710",
        "0xd48": "Cortex-X2",
        "0xd49": "Neoverse-N2",
        "0xd4b": "Cortex-A78C",
        "0xd4d": "Cortex-A715",
        "0xd4e": "Cortex-X3",
        "0xd4f": "Neoverse-V2",
        "0xd80": "Cortex-A520",
        "0xd81": "Cortex-A720",
        "0xd82": "Cortex-X4",
    },
    "0x4e": {"0x003": "NVIDIA Denver 2", "0x004": "NVIDIA Carmel"},
}

ANDROID_PROPS = (
    "ro.product.manufacturer",
    "ro.product.model",
    "ro.product.device",
    "ro.product.board",
    "ro.board.platform",
    "ro.hardware",
    "ro.soc.manufacturer",
    "ro.soc.model",
    "ro.product.cpu.abi",
    "ro.build.version.release",
    "ro.build.version.sdk",
    "ro.build.fingerprint",
)


def os_release():
    text = sysfs.read_text("/etc/os-release") or ""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def cpuinfo():
    """/proc/cpuinfo as (one dict per processor, the fields outside processor blocks)."""
    text = sysfs.read_text("/proc/cpuinfo") or ""
    processors, general, current = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            current = {"processor": value}
            processors.append(current)
        elif current is not None:
            current[key] = value
        else:
            general[key] = value
    return processors, general


def _part_name(block):
    implementer = (block.get("CPU implementer") or "").lower()
    part = (block.get("CPU part") or "").lower()
    if not part:
        return block.get("model name") or block.get("Processor") or block.get("cpu model")
    name = ARM_PARTS.get(implementer, {}).get(part)
    return name or "implementer %s part %s" % (implementer or "?", part)


def _parse_cpu_list(text):
    """'0-3,6' -> [0, 1, 2, 3, 6]"""
    cpus = []
    for chunk in (text or "").split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        low, _, high = chunk.partition("-")
        try:
            cpus.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            return None
    return cpus


def _mhz(khz):
    return round(khz / 1000.0, 1) if khz is not None else None


def cpu_cores():
    """One entry per CPU with its part, clock range, current clock and governor (cpufreq), and the clusters."""
    processors, general = cpuinfo()
    blocks = {}
    for block in processors:
        try:
            blocks[int(block["processor"])] = block
        except ValueError:
            pass
    present = _parse_cpu_list(sysfs.read_text("/sys/devices/system/cpu/present"))
    online = _parse_cpu_list(sysfs.read_text("/sys/devices/system/cpu/online"))
    numbers = present or sorted(blocks) or list(range(os.cpu_count() or 0))
    cores = []
    for n in numbers:
        base = "/sys/devices/system/cpu/cpu%d/cpufreq/" % n
        core = {
            "cpu": n,
            "online": (n in online) if online is not None else None,
            "part": _part_name(blocks.get(n, {})) if n in blocks else None,
            "min_mhz": _mhz(sysfs.read_int(base + "cpuinfo_min_freq")),
            "max_mhz": _mhz(sysfs.read_int(base + "cpuinfo_max_freq")),
            "cur_mhz": _mhz(sysfs.read_int(base + "scaling_cur_freq")),
            "governor": sysfs.read_text(base + "scaling_governor"),
        }
        scaling_max = _mhz(sysfs.read_int(base + "scaling_max_freq"))
        if scaling_max is not None and core["max_mhz"] is not None and scaling_max < core["max_mhz"]:
            core["capped_mhz"] = scaling_max
        cores.append(core)
    clusters = []
    for core in cores:
        key = (core["part"], core["min_mhz"], core["max_mhz"], core["governor"])
        for cluster in clusters:
            if cluster["_key"] == key:
                cluster["cpus"].append(core["cpu"])
                break
        else:
            clusters.append(
                {
                    "_key": key,
                    "cpus": [core["cpu"]],
                    "part": core["part"],
                    "min_mhz": core["min_mhz"],
                    "max_mhz": core["max_mhz"],
                    "governor": core["governor"],
                }
            )
    for cluster in clusters:
        del cluster["_key"]
    frequency_scaling = any(c["max_mhz"] is not None for c in cores)
    model = None
    for block in processors:
        model = block.get("model name") or block.get("Processor")
        if model:
            break
    return {
        "count": len(numbers),
        "online": online,
        "model": model or general.get("Processor") or general.get("Hardware"),
        "cores": cores,
        "clusters": clusters,
        "frequency_scaling": frequency_scaling
        if frequency_scaling
        else "no cpufreq on this board (clocks are fixed or set by firmware/hypervisor)",
    }, general


def board_model():
    """(model, where it came from): the device tree on Arm boards, DMI on PCs and VMs."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        model = sysfs.read_text(path)
        if model:
            return model, "device-tree"
    product = sysfs.read_text("/sys/class/dmi/id/product_name")
    vendor = sysfs.read_text("/sys/class/dmi/id/sys_vendor")
    if product:
        return ("%s %s" % (vendor, product)) if vendor and vendor not in product else product, "dmi"
    return None, None


def compatible():
    for path in ("/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible"):
        values = sysfs.read_strings(path)
        if values:
            return values
    return None


def soc(compat, cpu, general, android):
    """The SoC as the board names it: the device tree's last ``compatible`` entry, Android's ro.soc.*, or
    /proc/cpuinfo (``Hardware`` on 32-bit Arm kernels, ``model name`` on x86)."""
    if android and android.get("ro.soc.model"):
        maker = android.get("ro.soc.manufacturer")
        return {"name": ((maker + " ") if maker else "") + android["ro.soc.model"], "source": "getprop ro.soc.*"}
    if compat:
        return {"name": compat[-1], "source": "device-tree compatible"}
    if general.get("Hardware"):
        return {"name": general["Hardware"], "source": "/proc/cpuinfo Hardware"}
    if cpu.get("model"):
        return {"name": cpu["model"], "source": "/proc/cpuinfo model name"}
    return None


def l4t_release():
    """NVIDIA Jetson Linux (L4T) release from /etc/nv_tegra_release, e.g. 'R35.4.1'."""
    text = sysfs.read_text("/etc/nv_tegra_release")
    if not text:
        return None
    first = text.splitlines()[0]
    major = re.search(r"R(\d+)\s*\(release\)", first)
    revision = re.search(r"REVISION:\s*([0-9.]+)", first)
    board = re.search(r"BOARD:\s*([^,]+)", first)
    return {
        "release": ("R%s.%s" % (major.group(1), revision.group(1))) if major and revision else None,
        "board": board.group(1).strip() if board else None,
        "raw": first.lstrip("# ").strip(),
    }


def android_properties():
    """Android system properties through ``getprop`` (present under Termux), or None elsewhere."""
    if commands.which("getprop") is None:
        return None
    out, _why = commands.run(["getprop"], timeout=5.0)
    if out is None:
        return None
    props = {}
    for match in re.finditer(r"^\[([^\]]+)\]: \[(.*)\]\s*$", out, re.M):
        if match.group(1) in ANDROID_PROPS:
            props[match.group(1)] = match.group(2)
    return props or None


def _numpy_version():
    try:
        import numpy
    except Exception as exc:  # noqa: BLE001 - a missing or broken numpy is a fact to report
        return "unavailable (%s: %s)" % (type(exc).__name__, exc)
    return numpy.__version__


def device_facts():
    uname = platform.uname()
    release = os_release()
    android = android_properties()
    cpu, general = cpu_cores()
    compat = compatible()
    model, model_source = board_model()
    if android and not model:
        model = " ".join(v for v in (android.get("ro.product.manufacturer"), android.get("ro.product.model")) if v)
        model_source = "getprop ro.product.*"
    facts = {
        "hostname": socket.gethostname(),
        "machine": uname.machine,
        "system": uname.system,
        "kernel": uname.release,
        "kernel_build": uname.version,
        "os": release.get("PRETTY_NAME") or (("Android %s" % android["ro.build.version.release"]) if android else None),
        "os_id": release.get("ID"),
        "os_version": release.get("VERSION_ID"),
        "board": model or None,
        "board_source": model_source,
        "compatible": compat,
        "soc": soc(compat, cpu, general, android),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "numpy": _numpy_version(),
        "memory": memory.meminfo(),
        "l4t": l4t_release(),
        "android": android,
        "termux": commands.is_termux(),
    }
    if sysfs.root() != "/":
        facts["sysfs_root"] = sysfs.root()
    return facts
