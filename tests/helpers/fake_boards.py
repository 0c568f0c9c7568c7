"""Board files this machine lacks, laid out as the kernel and the firmware tools write them.

Every tree is written under a root that the agent reads through ``EDGEPROF_SYSFS_ROOT``. Formats, from the kernel's
documentation and the drivers:

* hwmon (Documentation/hwmon/sysfs-interface.rst): one integer and a newline per file; voltages in mV, currents in
  mA, power in µW, energy in µJ, temperatures in m°C. ``name`` and ``*_label`` are text lines.
* ina3221 (Documentation/hwmon/ina3221.rst): ``in[123]_label``, ``in[123]_input`` bus voltage (mV),
  ``curr[123]_input`` (mA), ``in[456]_input`` shunt voltage (µV), ``in7`` "sum of shunt voltages", ``curr4_input``.
  On Jetsons the device sits under /sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonN, linked from
  /sys/class/hwmon/hwmonN.
* NVIDIA's ina3221x iio driver (L4T R32): ``rail_name_N``, ``in_power{N}_input`` (mW), ``in_current{N}_input`` (mA),
  ``in_voltage{N}_input`` (mV) under /sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceM.
* ina2xx (Documentation/hwmon/ina2xx.rst): ``in0_input`` shunt (mV), ``in1_input`` bus (mV), ``curr1_input`` (mA),
  ``power1_input`` (µW), ``shunt_resistor`` (µΩ).
* power_supply (Documentation/ABI/testing/sysfs-class-power): ``type``, ``status``, ``current_now`` (µA),
  ``voltage_now`` (µV).
* powercap (Documentation/power/powercap/powercap.rst): ``intel-rapl:N/name``, ``energy_uj``,
  ``max_energy_range_uj``; sub-zones ``intel-rapl:N:M``.
* thermal (Documentation/driver-api/thermal/sysfs-api.rst): ``thermal_zoneN/{type,temp}`` (m°C),
  ``cooling_deviceN/{type,cur_state,max_state}``; cpufreq (Documentation/cpu-freq/cpu-drivers.rst) in kHz.
* device tree: ``/proc/device-tree/model`` and ``compatible`` are NUL-terminated strings.
* ``vcgencmd get_throttled`` prints ``throttled=0x50005``; ``vcgencmd pmic_read_adc`` prints rails as captured on a
  Raspberry Pi 5 (below).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5 Model B Rev 1.0, bookworm, four busy cores (public capture).
PMIC_READ_ADC = """ 3V7_WL_SW_A current(0)=0.09368929A
   3V3_SYS_A current(1)=0.08783370A
   1V8_SYS_A current(2)=0.18054710A
  DDR_VDD2_A current(3)=0.22543980A
  DDR_VDDQ_A current(4)=0.06666720A
   1V1_SYS_A current(5)=0.17566740A
    0V8_SW_A current(6)=0.37670900A
  VDD_CORE_A current(7)=6.22421000A
   3V3_DAC_A current(17)=0.00006105A
   3V3_ADC_A current(18)=0.00036630A
   0V8_AON_A current(16)=0.00305250A
      HDMI_A current(22)=0.02417580A
 3V7_WL_SW_V volt(8)=3.69977600V
   3V3_SYS_V volt(9)=3.31003300V
   1V8_SYS_V volt(10)=1.80512600V
  DDR_VDD2_V volt(11)=1.10476100V
  DDR_VDDQ_V volt(12)=0.60146460V
   1V1_SYS_V volt(13)=1.11025500V
    0V8_SW_V volt(14)=0.80146440V
  VDD_CORE_V volt(15)=0.86173300V
   3V3_DAC_V volt(20)=3.31318300V
   3V3_ADC_V volt(21)=3.30677300V
   0V8_AON_V volt(19)=0.80029220V
      HDMI_V volt(23)=5.08664000V
     EXT5V_V volt(24)=5.09066000V
      BATT_V volt(25)=0.00000000V
"""


def pmic_watts(text: str = PMIC_READ_ADC) -> float:
    """The same sum the plugin computes, written out independently for the tests' expectations."""
    amps, volts = {}, {}
    for line in text.splitlines():
        name, reading = line.split()
        value = float(reading.split("=")[1][:-1])
        (amps if name.endswith("_A") else volts)[name[:-2]] = value
    return sum(amps[r] * volts[r] for r in amps if r in volts)


def write(root: Path, path: str, value: object) -> Path:
    """One sysfs attribute: text plus newline (bytes are written as they are, e.g. device-tree strings)."""
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, bytes):
        target.write_bytes(value)
    else:
        target.write_text(f"{value}\n")
    return target


def link_class(root: Path, class_path: str, device_path: str) -> None:
    """/sys/class/X/name -> the device directory, as the kernel links class devices."""
    link = root / class_path.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    target = root / device_path.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def cpus(
    root: Path,
    count: int,
    *,
    part: str | None = None,
    min_khz: int,
    max_khz: int,
    cur_khz: int,
    governor: str = "ondemand",
    model_name: str | None = None,
    tail: str = "",
) -> None:
    blocks = []
    for n in range(count):
        base = f"/sys/devices/system/cpu/cpu{n}/cpufreq"
        write(root, f"{base}/cpuinfo_min_freq", min_khz)
        write(root, f"{base}/cpuinfo_max_freq", max_khz)
        write(root, f"{base}/scaling_max_freq", max_khz)
        write(root, f"{base}/scaling_cur_freq", cur_khz)
        write(root, f"{base}/scaling_governor", governor)
        if part:
            blocks.append(
                f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
                f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: {part}\n"
                "CPU revision\t: 1\n"
            )
        else:
            blocks.append(f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: {model_name}\n")
    write(root, "/sys/devices/system/cpu/present", f"0-{count - 1}")
    write(root, "/sys/devices/system/cpu/online", f"0-{count - 1}")
    write(root, "/proc/cpuinfo", "\n".join(blocks) + ("\n" + tail if tail else ""))


def meminfo(root: Path, total_kb: int, available_kb: int) -> None:
    write(
        root,
        "/proc/meminfo",
        f"MemTotal:       {total_kb} kB\nMemFree:        {available_kb // 2} kB\n"
        f"MemAvailable:   {available_kb} kB\nBuffers:           12345 kB\nSwapTotal:      102396 kB\n"
        "SwapFree:       102396 kB",
    )


def thermal_zone(root: Path, n: int, kind: str, millic: int) -> Path:
    write(root, f"/sys/devices/virtual/thermal/thermal_zone{n}/type", kind)
    temp = write(root, f"/sys/devices/virtual/thermal/thermal_zone{n}/temp", millic)
    link_class(root, f"/sys/class/thermal/thermal_zone{n}", f"/sys/devices/virtual/thermal/thermal_zone{n}")
    return temp


def cooling_device(root: Path, n: int, kind: str, cur: int, maximum: int) -> Path:
    base = f"/sys/devices/virtual/thermal/cooling_device{n}"
    write(root, f"{base}/type", kind)
    write(root, f"{base}/max_state", maximum)
    state = write(root, f"{base}/cur_state", cur)
    link_class(root, f"/sys/class/thermal/cooling_device{n}", base)
    return state


def os_release(root: Path, pretty: str, ident: str, version: str) -> None:
    write(
        root,
        "/etc/os-release",
        f'PRETTY_NAME="{pretty}"\nNAME="{pretty.split()[0]}"\nVERSION_ID="{version}"\nID={ident}',
    )


# --- boards --------------------------------------------------------------------------------------------------------


def jetson_orin_nano(root: Path) -> dict[str, Path]:
    """Orin Nano devkit, JetPack 6 (L4T R36): ina3221 through hwmon, rails VDD_IN / VDD_CPU_GPU_CV / VDD_SOC."""
    dev = "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    write(root, f"{dev}/name", "ina3221")
    files = {}
    rails = (("VDD_IN", 5008, 1432), ("VDD_CPU_GPU_CV", 4992, 312), ("VDD_SOC", 4992, 560))
    for n, (label, mv, ma) in enumerate(rails, start=1):
        write(root, f"{dev}/in{n}_label", label)
        write(root, f"{dev}/in{n}_enable", 1)
        files[f"in{n}"] = write(root, f"{dev}/in{n}_input", mv)
        files[f"curr{n}"] = write(root, f"{dev}/curr{n}_input", ma)
        write(root, f"{dev}/in{n + 3}_input", ma * 5)  # shunt voltage in µV across 5 mΩ
        write(root, f"{dev}/shunt{n}_resistor", 5000)
        write(root, f"{dev}/curr{n}_crit", 32760)
        write(root, f"{dev}/curr{n}_max", 32760)
    write(root, f"{dev}/in7_label", "sum of shunt voltages")
    write(root, f"{dev}/in7_input", sum(r[2] for r in rails[1:]) * 5)
    write(root, f"{dev}/curr4_input", sum(r[2] for r in rails[1:]))
    link_class(root, "/sys/class/hwmon/hwmon1", dev)
    write(root, "/proc/device-tree/model", b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    write(
        root,
        "/proc/device-tree/compatible",
        b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00",
    )
    write(
        root,
        "/etc/nv_tegra_release",
        "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
        "DATE: Fri Sep 13 04:36:44 UTC 2024\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
        "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia",
    )
    cpus(root, 6, part="0xd42", min_khz=115200, max_khz=1510400, cur_khz=1510400, governor="schedutil")
    meminfo(root, 7799468, 6012344)
    thermal_zone(root, 0, "cpu-thermal", 47531)
    thermal_zone(root, 1, "gpu-thermal", 46218)
    os_release(root, "Ubuntu 22.04.4 LTS", "ubuntu", "22.04")
    return files


def jetson_nano_iio(root: Path) -> dict[str, Path]:
    """Jetson Nano, L4T R32: NVIDIA's ina3221x iio driver, POM_5V_IN is the module's input (the total)."""
    dev = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    files = {}
    for n, (label, mw, mv, ma) in enumerate(
        (("POM_5V_IN", 2344, 5072, 462), ("POM_5V_GPU", 78, 5048, 15), ("POM_5V_CPU", 631, 5048, 125))
    ):
        write(root, f"{dev}/rail_name_{n}", label)
        files[f"power{n}"] = write(root, f"{dev}/in_power{n}_input", mw)
        write(root, f"{dev}/in_voltage{n}_input", mv)
        write(root, f"{dev}/in_current{n}_input", ma)
        write(root, f"{dev}/crit_current_limit_{n}", 4000)
        write(root, f"{dev}/warn_current_limit_{n}", 3000)
    write(root, "/proc/device-tree/model", b"NVIDIA Jetson Nano Developer Kit\x00")
    write(root, "/proc/device-tree/compatible", b"nvidia,p3450-0000\x00nvidia,jetson-nano\x00nvidia,tegra210\x00")
    write(
        root,
        "/etc/nv_tegra_release",
        "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
        "DATE: Sat Feb 19 17:05:08 UTC 2022",
    )
    return files


def jetson_agx_xavier_iio(root: Path) -> dict[str, tuple[str, int]]:
    """AGX Xavier, L4T R32: two ina3221x devices, no input rail, so the total is the sum of the six rails."""
    rails = {}
    for dev, names in (
        ("/sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0", (("GPU", 1523), ("CPU", 913), ("SOC", 1827))),
        ("/sys/bus/i2c/drivers/ina3221x/1-0041/iio:device1", (("CV", 0), ("VDDRQ", 456), ("SYS5V", 2134))),
    ):
        for n, (label, mw) in enumerate(names):
            write(root, f"{dev}/rail_name_{n}", label)
            write(root, f"{dev}/in_power{n}_input", mw)
            rails[label] = (dev, mw)
    return rails


def fake_vcgencmd(bin_dir: Path, state: Path, pmic: str = PMIC_READ_ADC, log: Path | None = None) -> Path:
    """A ``vcgencmd`` on PATH that prints the firmware's formats; ``state`` holds the get_throttled value.

    With ``log``, each call appends a line "PARENT_PID COMMAND": which process spawned it.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "pmic_read_adc.txt").write_text(pmic)
    if not state.exists():
        state.write_text("0x0\n")
    script = bin_dir / "vcgencmd"
    script.write_text(
        "#!/bin/sh\n" + (f'echo "$PPID $1" >> "{log}"\n' if log is not None else "") + 'case "$1" in\n'
        f'  get_throttled) printf "throttled=%s\\n" "$(cat {state})" ;;\n'
        f'  pmic_read_adc) cat "{bin_dir}/pmic_read_adc.txt" ;;\n'
        '  measure_temp) echo "temp=51.6\'C" ;;\n'
        '  *) echo "error=1 error_msg=\\"Command not registered\\"" ; exit 255 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def raspberry_pi_5(root: Path) -> None:
    write(root, "/proc/device-tree/model", b"Raspberry Pi 5 Model B Rev 1.0\x00")
    write(root, "/proc/device-tree/compatible", b"raspberrypi,5-model-b\x00brcm,bcm2712\x00")
    cpus(
        root,
        4,
        part="0xd0b",
        min_khz=1500000,
        max_khz=2400000,
        cur_khz=2400000,
        tail="Revision\t: d04170\nSerial\t\t: 8a3f2c1b9e7d6a54\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
    )
    meminfo(root, 4139536, 3512220)
    thermal_zone(root, 0, "cpu-thermal", 51650)
    cooling_device(root, 0, "pwm-fan", 2, 4)
    os_release(root, "Debian GNU/Linux 12 (bookworm)", "debian", "12")


def ina226(root: Path, microwatts: int = 3250000) -> Path:
    dev = "/sys/bus/i2c/devices/1-0040/hwmon/hwmon0"
    write(root, f"{dev}/name", "ina226")
    write(root, f"{dev}/in0_input", 8)
    write(root, f"{dev}/in1_input", 5104)
    write(root, f"{dev}/curr1_input", 637)
    power = write(root, f"{dev}/power1_input", microwatts)
    write(root, f"{dev}/shunt_resistor", 10000)
    write(root, f"{dev}/update_interval", 35)
    link_class(root, "/sys/class/hwmon/hwmon0", dev)
    return power


def android_battery(root: Path, *, current_ua: int, voltage_uv: int, status: str = "Discharging") -> dict[str, Path]:
    base = "/sys/class/power_supply/battery"
    write(root, f"{base}/type", "Battery")
    write(root, f"{base}/status", status)
    write(root, f"{base}/capacity", 81)
    return {
        "current": write(root, f"{base}/current_now", current_ua),
        "voltage": write(root, f"{base}/voltage_now", voltage_uv),
    }


def rapl(root: Path, energy_uj: int, max_uj: int = 262143328850) -> Path:
    base = "/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0"
    write(root, f"{base}/name", "package-0")
    write(root, f"{base}/max_energy_range_uj", max_uj)
    counter = write(root, f"{base}/energy_uj", energy_uj)
    write(root, f"{base}/intel-rapl:0:0/name", "core")
    write(root, f"{base}/intel-rapl:0:0/energy_uj", energy_uj // 2)
    write(root, f"{base}/intel-rapl:0:0/max_energy_range_uj", max_uj)
    link_class(root, "/sys/class/powercap/intel-rapl:0", base)
    link_class(root, "/sys/class/powercap/intel-rapl:0:0", f"{base}/intel-rapl:0:0")
    return counter


def amdgpu_hwmon(root: Path, microwatts: int = 18000000) -> Path:
    dev = "/sys/devices/pci0000:00/0000:00:08.1/0000:03:00.0/hwmon/hwmon4"
    write(root, f"{dev}/name", "amdgpu")
    write(root, f"{dev}/power1_label", "PPT")
    power = write(root, f"{dev}/power1_average", microwatts)
    write(root, f"{dev}/power1_cap", 30000000)
    write(root, f"{dev}/temp1_input", 45000)
    link_class(root, "/sys/class/hwmon/hwmon4", dev)
    return power


def fake_getprop(bin_dir: Path) -> Path:
    """``getprop`` as Android prints it: ``[key]: [value]`` lines."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    props = {
        "ro.product.manufacturer": "Google",
        "ro.product.model": "Pixel 7",
        "ro.product.device": "panther",
        "ro.board.platform": "gs201",
        "ro.soc.manufacturer": "Google",
        "ro.soc.model": "GS201",
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.product.cpu.abi": "arm64-v8a",
        "persist.sys.timezone": "Europe/Paris",
    }
    script = bin_dir / "getprop"
    lines = "".join(f"echo '[{k}]: [{v}]'\n" for k, v in props.items())
    script.write_text(f"#!/bin/sh\nif [ $# -eq 0 ]; then\n{lines}fi\n")
    script.chmod(0o755)
    return script
