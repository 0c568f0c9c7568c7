"""Device facts as each kind of board keeps them: device tree, cpufreq, /proc, nv_tegra_release, getprop, DMI."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprof_agent import facts
from tests.helpers import fake_boards


@pytest.fixture()
def board_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "board"
    root.mkdir()
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    monkeypatch.delenv("PREFIX", raising=False)
    return root


def test_raspberry_pi_5(board_root: Path) -> None:
    fake_boards.raspberry_pi_5(board_root)
    device = facts.device_facts()
    assert device["board"] == "Raspberry Pi 5 Model B Rev 1.0" and device["board_source"] == "device-tree"
    assert device["compatible"] == ["raspberrypi,5-model-b", "brcm,bcm2712"]
    assert device["soc"] == {"name": "brcm,bcm2712", "source": "device-tree compatible"}
    assert device["cpu"]["clusters"] == [
        {"cpus": [0, 1, 2, 3], "part": "Cortex-A76", "min_mhz": 1500.0, "max_mhz": 2400.0, "governor": "ondemand"}
    ]
    assert device["cpu"]["cores"][2]["cur_mhz"] == 2400.0 and device["cpu"]["frequency_scaling"] is True
    assert device["memory"]["total_kb"] == 4139536 and device["memory"]["available_kb"] == 3512220
    assert device["os"] == "Debian GNU/Linux 12 (bookworm)" and device["os_id"] == "debian"
    assert device["l4t"] is None and device["android"] is None and device["termux"] is False
    assert device["sysfs_root"] == str(board_root)


def test_jetson_orin_nano_l4t_release_and_cores(board_root: Path) -> None:
    fake_boards.jetson_orin_nano(board_root)
    device = facts.device_facts()
    assert device["board"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert device["soc"]["name"] == "nvidia,tegra234"
    assert device["l4t"]["release"] == "R36.4.0" and device["l4t"]["board"] == "generic"
    (cluster,) = device["cpu"]["clusters"]
    assert cluster["cpus"] == [0, 1, 2, 3, 4, 5] and cluster["part"] == "Cortex-A78AE"
    assert cluster["governor"] == "schedutil" and cluster["max_mhz"] == 1510.4


def test_jetson_nano_on_l4t_32(board_root: Path) -> None:
    fake_boards.jetson_nano_iio(board_root)
    assert facts.l4t_release()["release"] == "R32.7.1"


def test_a_capped_core_shows_its_cap(board_root: Path) -> None:
    fake_boards.raspberry_pi_5(board_root)
    fake_boards.write(board_root, "/sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq", 1800000)
    cores = facts.device_facts()["cpu"]["cores"]
    assert cores[3]["capped_mhz"] == 1800.0 and "capped_mhz" not in cores[0]


def test_android_under_termux_reads_getprop(board_root: Path, tmp_path: Path, monkeypatch) -> None:
    fake_boards.fake_getprop(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("TERMUX_VERSION", "0.118.0")
    fake_boards.meminfo(board_root, 7723932, 2398124)
    device = facts.device_facts()
    assert device["termux"] is True
    assert device["android"]["ro.product.model"] == "Pixel 7" and device["android"]["ro.build.version.sdk"] == "34"
    assert "persist.sys.timezone" not in device["android"]  # only the properties that describe the device
    assert device["board"] == "Google Pixel 7" and device["board_source"] == "getprop ro.product.*"
    assert device["soc"] == {"name": "Google GS201", "source": "getprop ro.soc.*"}
    assert device["os"] == "Android 14"


def test_a_pc_or_vm_is_named_by_dmi(board_root: Path) -> None:
    fake_boards.write(board_root, "/sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)")
    fake_boards.write(board_root, "/sys/class/dmi/id/sys_vendor", "QEMU")
    fake_boards.cpus(
        board_root, 2, min_khz=800000, max_khz=3500000, cur_khz=2600000, model_name="Intel(R) Xeon(R) Gold 6438Y+"
    )
    device = facts.device_facts()
    assert device["board"] == "QEMU Standard PC (Q35 + ICH9, 2009)" and device["board_source"] == "dmi"
    assert device["soc"] == {"name": "Intel(R) Xeon(R) Gold 6438Y+", "source": "/proc/cpuinfo model name"}


def test_a_board_that_says_nothing_gets_none_not_guesses(board_root: Path) -> None:
    device = facts.device_facts()
    assert device["board"] is None and device["soc"] is None and device["l4t"] is None
    assert device["memory"]["total_kb"] is None
    assert "no cpufreq" in device["cpu"]["frequency_scaling"]


def test_hello_reports_the_fake_board_through_the_real_agent(start_agent, tmp_path: Path) -> None:
    root = tmp_path / "orin"
    fake_boards.jetson_orin_nano(root)
    hello = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)}).ok("hello")
    assert hello["device"]["board"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert hello["device"]["l4t"]["release"] == "R36.4.0"
    found = hello["sensors"]["energy"]["found"]
    assert [s["sensor"] for s in found] == ["jetson-ina3221"] and found[0]["total"] == "VDD_IN"
    assert [z["type"] for z in hello["sensors"]["thermal"]["zones"]] == ["cpu-thermal", "gpu-thermal"]
