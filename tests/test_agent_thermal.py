"""Thermal state and throttling: thermal zones, cooling devices, CPU clocks and ``vcgencmd get_throttled``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgeprof_agent import thermal
from tests.helpers import fake_boards


@pytest.fixture()
def pi5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Raspberry Pi 5's files and a vcgencmd whose get_throttled value the test sets in ``state``."""
    root = tmp_path / "pi5"
    fake_boards.raspberry_pi_5(root)
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "state")
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    return tmp_path / "state"


def test_throttle_bits_are_decoded_as_documented() -> None:
    decoded = thermal.decode_throttled(0x50005)
    assert decoded["now"] == ["under-voltage detected", "currently throttled"]
    assert decoded["since_boot"] == ["under-voltage has occurred", "throttling has occurred"]
    assert decoded["raw"] == "0x50005" and decoded["under_voltage_now"] and decoded["throttling_now"]
    assert thermal.decode_throttled(0x80008)["now"] == ["soft temperature limit active"]
    assert thermal.decode_throttled(0x20002)["since_boot"] == ["arm frequency capping has occurred"]
    assert thermal.decode_throttled(0) == {
        "raw": "0x0",
        "now": [],
        "since_boot": [],
        "under_voltage_now": False,
        "throttling_now": False,
    }
    assert thermal.parse_throttled("throttled=0x0\n") == 0
    assert thermal.parse_throttled("error=1") is None


def test_snapshot_reads_zones_clocks_cooling_and_vcgencmd(pi5: Path) -> None:
    pi5.write_text("0x50000\n")
    snap = thermal.snapshot()
    assert snap["zones"] == [{"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 51.65}]
    assert snap["cpu_mhz"] == {"0": 2400.0, "1": 2400.0, "2": 2400.0, "3": 2400.0}
    assert snap["cooling"][0]["type"] == "pwm-fan" and snap["cooling"][0]["slows_cpu"] is False
    assert snap["rpi_throttled"]["since_boot"] == ["under-voltage has occurred", "throttling has occurred"]


def test_throttling_that_starts_during_the_run_is_caught_by_the_watch(pi5: Path) -> None:
    watch = thermal.Watch(0.05).start()
    pi5.write_text("0x20002\n")  # arm frequency capped now (and since boot)
    time.sleep(0.3)
    pi5.write_text("0x20000\n")  # over before the run ends: only the polls saw it happen
    report = watch.stop()
    assert report["throttled"] is True and report["watch_polls"] >= 2
    assert any("arm frequency capped" in e for e in report["throttle_evidence"])


def test_sticky_bits_set_during_the_run_count_even_between_polls(pi5: Path) -> None:
    watch = thermal.Watch(0).start()  # no polling at all
    pi5.write_text("0x40000\n")
    report = watch.stop()
    assert report["throttled"] is True
    assert report["throttle_evidence"] == ["vcgencmd: newly set during the run: throttling has occurred"]


def test_old_sticky_bits_alone_do_not_flag_this_run(pi5: Path) -> None:
    pi5.write_text("0x50000\n")  # under-voltage and throttling happened earlier since boot, not now
    report = thermal.Watch(0.05).start().stop()
    assert report["throttled"] is False and report["throttle_sources"] == ["vcgencmd get_throttled"]
    assert report["throttle_evidence"] == []


def test_an_active_cpufreq_cooling_device_flags_throttling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "board"
    fake_boards.thermal_zone(root, 0, "soc_thermal", 85000)
    state = fake_boards.cooling_device(root, 0, "cpufreq-cpu0", 0, 10)
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert thermal.Watch(0.05).start().stop()["throttled"] is False
    watch = thermal.Watch(0.05).start()
    state.write_text("3\n")
    time.sleep(0.2)
    state.write_text("0\n")
    report = watch.stop()
    assert report["throttled"] is True
    assert report["throttle_evidence"] == ["cooling device cooling_device0 (cpufreq-cpu0) at state 3"]


def test_a_board_without_any_source_says_it_cannot_tell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    report = thermal.Watch(0.05).start().stop()
    assert report["throttled"] is None and report["throttle_sources"] == []
    assert "no throttling source" in report["throttle_reason"]


def test_a_profile_on_a_throttling_pi_carries_the_flag(start_agent, models: Path, tmp_path: Path) -> None:
    root = tmp_path / "pi5"
    fake_boards.raspberry_pi_5(root)
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "state")
    (tmp_path / "state").write_text("0x50005\n")
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    args = {"model": str(models / "float.tflite"), "runs": 5, "min_seconds": 0.1, "warmup_seconds": 0}
    result = agent.ok("profile", {**args, "idle_seconds": 0, "energy": "off"})
    assert result["throttled"] is True
    assert result["thermal"]["before"]["rpi_throttled"]["raw"] == "0x50005"
    assert result["thermal"]["max_temp_c"] == {"thermal_zone0": 51.65}
    (tmp_path / "state").write_text("0x0\n")
    assert agent.ok("profile", {**args, "idle_seconds": 0, "energy": "off"})["throttled"] is False
