"""Power sensor plugins against board files laid out as the kernel documents them (tests/helpers/fake_boards.py).

This machine has no power sensor, so the trees and a ``vcgencmd`` on PATH stand in for the hardware; the agent code
that reads them is the real one, in-process for the parsers and in a real agent process end to end.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgeprof_agent import energy
from edgeprof_agent.energy import base
from tests.helpers import fake_boards


@pytest.fixture()
def board_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "board"
    root.mkdir()
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vcgencmd unless a test puts one there
    return root


def _found(options: dict | None = None):
    sensor, checked = energy.discover(options or {})
    assert sensor is not None, checked
    return sensor


def test_jetson_orin_hwmon_uses_the_input_rail_as_the_total(board_root: Path) -> None:
    fake_boards.jetson_orin_nano(board_root)
    sensor = _found()
    assert sensor.plugin == "jetson-ina3221" and sensor.total == "VDD_IN"
    total, rails = sensor.read()
    assert rails == pytest.approx({"VDD_IN": 5.008 * 1.432, "VDD_CPU_GPU_CV": 4.992 * 0.312, "VDD_SOC": 4.992 * 0.56})
    assert total == pytest.approx(5.008 * 1.432)  # not the sum: VDD_IN is upstream of the other rails
    assert "sum of shunt voltages" not in rails
    assert "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1/curr1_input" in sensor.sources() or any(
        s.startswith("/sys/class/hwmon/hwmon1/") for s in sensor.sources()
    )
    assert not any(str(board_root) in s for s in sensor.sources())  # results show board paths


def test_jetson_hwmon_skips_unconnected_and_disabled_channels(board_root: Path) -> None:
    fake_boards.jetson_orin_nano(board_root)
    dev = "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    fake_boards.write(board_root, f"{dev}/in3_label", "NC")
    fake_boards.write(board_root, f"{dev}/in2_enable", 0)
    _total, rails = _found().read()
    assert set(rails) == {"VDD_IN"}


def test_jetson_nano_iio_layout_reads_milliwatts_and_pom_5v_in_is_the_total(board_root: Path) -> None:
    fake_boards.jetson_nano_iio(board_root)
    sensor = _found()
    assert sensor.plugin == "jetson-ina3221" and "iio" in sensor.label and sensor.total == "POM_5V_IN"
    total, rails = sensor.read()
    assert total == pytest.approx(2.344) and rails["POM_5V_CPU"] == pytest.approx(0.631)


def test_agx_xavier_without_an_input_rail_sums_all_rails(board_root: Path) -> None:
    rails = fake_boards.jetson_agx_xavier_iio(board_root)
    sensor = _found()
    assert sensor.total == "sum of rails"
    total, read = sensor.read()
    assert set(read) == set(rails)
    assert total == pytest.approx(sum(mw for _dev, mw in rails.values()) / 1000.0)


def test_raspberry_pi_5_pmic_pairs_rails_by_name(board_root: Path, tmp_path: Path, monkeypatch) -> None:
    fake_boards.raspberry_pi_5(board_root)
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "throttled")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    sensor = _found()
    assert sensor.plugin == "rpi5-pmic" and sensor.spawns_process
    total, rails = sensor.read()
    assert "EXT5V" not in rails and "BATT" not in rails  # voltage only: no current, no power
    assert rails["VDD_CORE"] == pytest.approx(6.22421 * 0.861733)
    assert total == pytest.approx(fake_boards.pmic_watts())
    assert energy.rate_for(sensor, {}) == energy.COMMAND_RATE_HZ


def test_a_pi_without_the_pmic_adc_says_so(board_root: Path, tmp_path: Path, monkeypatch) -> None:
    fake_boards.fake_vcgencmd(tmp_path / "bin", tmp_path / "throttled", pmic="")
    (tmp_path / "bin" / "vcgencmd").write_text("#!/bin/sh\necho 'error=2 error_msg=\"Invalid arguments\"'\nexit 2\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    sensor, checked = energy.discover({})
    assert sensor is None
    assert "Raspberry Pi 5 only" in checked["rpi5-pmic"]


def test_ina226_reads_microwatts(board_root: Path) -> None:
    fake_boards.ina226(board_root, 3250000)
    sensor = _found()
    assert sensor.plugin == "ina2xx" and "INA226" in sensor.label
    assert sensor.read() == (pytest.approx(3.25), None)


@pytest.mark.parametrize("sign", [-1, 1], ids=["negative-when-discharging", "vendor-positive"])
def test_android_battery_power_ignores_the_vendors_sign(board_root: Path, sign: int) -> None:
    fake_boards.android_battery(board_root, current_ua=sign * 412000, voltage_uv=3987000)
    sensor = _found()
    assert sensor.plugin == "battery"
    assert sensor.read()[0] == pytest.approx(0.412 * 3.987)


def test_a_charging_battery_is_refused_with_the_reason(board_root: Path) -> None:
    fake_boards.android_battery(board_root, current_ua=900000, voltage_uv=4200000, status="Charging")
    sensor, checked = energy.discover({})
    assert sensor is None and "unplug the charger" in checked["battery"]


def test_rapl_counts_energy_across_a_wrap(board_root: Path) -> None:
    max_uj = 262143328850
    counter = fake_boards.rapl(board_root, energy_uj=max_uj - 1000, max_uj=max_uj)
    sensor = _found()
    assert sensor.plugin == "rapl" and sensor.kind == "energy" and sensor.total == "package-0"
    first, _ = sensor.read()
    counter.write_text("500\n")  # the counter wrapped to zero and went on
    second, _ = sensor.read()
    assert second - first == pytest.approx((1000 + 500) / 1e6)
    counter.write_text("2500\n")
    third, _ = sensor.read()
    assert third - second == pytest.approx(2000 / 1e6)


def test_generic_hwmon_power_channel(board_root: Path) -> None:
    fake_boards.amdgpu_hwmon(board_root, 18000000)
    sensor = _found()
    assert sensor.plugin == "hwmon" and sensor.total == "PPT" and "amdgpu" in sensor.scope
    assert sensor.read()[0] == pytest.approx(18.0)


def test_order_of_preference_and_forcing_a_plugin(board_root: Path) -> None:
    fake_boards.android_battery(board_root, current_ua=-500000, voltage_uv=4000000)
    fake_boards.rapl(board_root, energy_uj=123456)
    assert _found().plugin == "battery"
    assert _found({"energy": "rapl"}).plugin == "rapl"
    sensor, checked = energy.discover({"energy": "ina2xx"})
    assert sensor is None and set(checked) == {"ina2xx"}
    sensor, checked = energy.discover({"energy": "off"})
    assert sensor is None and "disabled" in checked["energy"]


def test_a_user_command_that_prints_watts(board_root: Path, tmp_path: Path) -> None:
    meter = tmp_path / "meter"
    meter.write_text('#!/bin/sh\necho "power: 4200 mW"\n')
    meter.chmod(0o755)
    sensor = _found({"energy_command": [str(meter)]})
    assert sensor.plugin == "command" and sensor.read()[0] == pytest.approx(4.2)
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'no reading'\n")
    broken.chmod(0o755)
    sensor, checked = energy.discover({"energy_command": [str(broken)], "energy": "command"})
    assert sensor is None and "no number" in checked["command"]


def test_no_sensor_gives_available_false_with_every_reason(board_root: Path) -> None:
    sensor, checked = energy.discover({})
    assert sensor is None
    result = energy.unavailable(checked)
    assert result["available"] is False
    assert set(result["checked"]) == {"jetson-ina3221", "rpi5-pmic", "ina2xx", "battery", "rapl", "hwmon"}
    assert "no power sensor" in result["reason"]


class _Recorded:
    def __init__(self, times: list[float], values: list[float]) -> None:
        self.times, self.values, self.rails, self.errors, self.last_error = times, values, [None] * len(times), 0, None


def test_mean_power_is_time_weighted_and_energy_per_inference_follows() -> None:
    # 1 W for 1 s, then 3 W for 3 s, sampled unevenly: the trapezoids give 1x1 + 2x1 (ramp) + 3x2 = 9 J over 4 s.
    stats, why = base.window_stats(_Recorded([0.0, 1.0, 2.0, 4.0], [1.0, 1.0, 3.0, 3.0]), "power")
    assert why is None and stats["mean_w"] == pytest.approx(9 / 4)
    figures = base.per_inference({"mean_w": 2.0}, {"mean_w": 0.5}, inferences=300, window_s=3.0)
    assert figures["mj_per_inference"] == pytest.approx(20.0)
    assert figures["mj_per_inference_above_idle"] == pytest.approx(15.0)
    counter, _ = base.window_stats(_Recorded([10.0, 12.0], [100.0, 108.0]), "energy")
    assert counter["mean_w"] == pytest.approx(4.0)
    assert base.window_stats(_Recorded([1.0], [5.0]), "power") == (None, "only 1 reading(s) in the window (0 failed)")


def test_sampler_keeps_its_rate_and_reports_its_cost(board_root: Path) -> None:
    fake_boards.ina226(board_root)
    sensor = _found()
    sampler = base.Sampler(sensor, 100.0).run_for(0.5)
    stats, _ = base.window_stats(sampler, sensor.kind)
    assert 60 <= stats["rate_hz"] <= 110 and stats["mean_w"] == pytest.approx(3.25)
    assert 0 < sampler.cpu_s < 0.5 and sampler.errors == 0


def test_profile_measures_idle_then_the_run_end_to_end(start_agent, models: Path, tmp_path: Path) -> None:
    """A real agent on a fake Orin Nano whose input current doubles when the measured loop starts."""
    root = tmp_path / "orin"
    files = fake_boards.jetson_orin_nano(root)
    files["curr1"].write_text("1000\n")  # idle: 5.008 V x 1.0 A
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})

    def load_the_rail() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(e.get("phase") == "measure" for e in list(agent.events)):
                with open(files["curr1"], "r+") as handle:  # in place, as sysfs does: same inode
                    handle.write("2000\n")
                return
            time.sleep(0.001)

    writer = threading.Thread(target=load_the_rail)
    writer.start()
    result = agent.ok(
        "profile",
        {
            "model": str(models / "float.tflite"),
            "runs": 10,
            "min_seconds": 1.0,
            "warmup_seconds": 0.1,
            "idle_seconds": 0.5,
        },
    )
    writer.join()
    e = result["energy"]
    assert e["available"] is True and e["sensor"] == "jetson-ina3221" and e["total"] == "VDD_IN"
    assert e["idle_w"] == pytest.approx(5.008) and e["idle_samples"] >= 20
    assert 9.5 < e["mean_w"] <= 10.016 + 1e-9
    count, window = result["latency_ms"]["count"], result["measured_seconds"]
    assert e["window_s"] == pytest.approx(window)
    assert e["mj_per_inference"] == pytest.approx(e["mean_w"] * window / count * 1000)
    assert e["mj_per_inference_above_idle"] == pytest.approx((e["mean_w"] - e["idle_w"]) * window / count * 1000)
    assert e["mj_per_inference_above_idle"] > 0
    assert e["samples"] >= 50 and 50 <= e["sample_rate_hz"] <= 110 and e["read_errors"] == 0
    assert e["rails"]["VDD_SOC"]["mean_w"] == pytest.approx(4.992 * 0.56)
    assert e["sampler_cpu_share"] < 0.1
    assert [p["phase"] for p in agent.events if p.get("event") == "phase"][:2] == ["idle", "load"]


def test_skipping_idle_gives_no_above_idle_figure(start_agent, models: Path, tmp_path: Path) -> None:
    root = tmp_path / "ina"
    fake_boards.ina226(root)
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})
    args = {"model": str(models / "float.tflite"), "runs": 5, "min_seconds": 0.2, "warmup_seconds": 0}
    e = agent.ok("profile", {**args, "idle_seconds": 0})["energy"]
    assert e["available"] is True and e["mean_w"] == pytest.approx(3.25)
    assert e["idle_w"] is None and e["mj_per_inference_above_idle"] is None
    assert "idle power was not measured" in e["idle_reason"]


def test_a_sensor_that_fails_every_read_gives_no_figure(start_agent, models: Path, tmp_path: Path) -> None:
    root = tmp_path / "ina"
    fake_boards.ina226(root).write_text("not a number\n")
    agent = start_agent(env={"EDGEPROF_SYSFS_ROOT": str(root)})
    args = {"model": str(models / "float.tflite"), "runs": 5, "min_seconds": 0.2, "warmup_seconds": 0}
    e = agent.ok("profile", {**args, "idle_seconds": 0.1})["energy"]
    assert e["available"] is False and e["sensor"] == "ina2xx"
    assert "too few sensor readings" in e["reason"] and "ValueError" in e["reason"]
    assert "mj_per_inference" not in e
