"""Meter drivers against real HTTP servers that answer as the vendors document (scripts/testbed/fake_meter.py), the
config table that names them, and every way a meter can fail: one line with the fix, never a traceback."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

from edgeprof.errors import MeterError, TargetError
from edgeprof.meters import MeterConfig, open_driver
from edgeprof.meters.config import parse_meter
from edgeprof.targets import load_config
from tests.conftest import run_cli
from tests.helpers.fake_meter import FakeMeter


@pytest.fixture(scope="module")
def shelly():
    with FakeMeter("shelly", rate=10, idle=3.0, noise=0.0, resolution=0.1) as meter:
        meter.wait_readings()
        yield meter


@pytest.fixture(scope="module")
def tasmota():
    with FakeMeter("tasmota", rate=10, idle=7.0, noise=0.0, resolution=1.0) as meter:
        meter.wait_readings()
        yield meter


def _driver(kind: str, **settings):
    return open_driver(parse_meter({"kind": kind, **settings}, "bench", "edgeprof.toml"))


def test_shelly_gen2_switch_status_gives_apower_and_the_energy_counters(shelly: FakeMeter) -> None:
    body = json.loads(shelly.get("/rpc/Switch.GetStatus?id=0"))
    assert {"id", "output", "apower", "voltage", "current", "aenergy", "temperature"} <= set(body)
    assert set(body["aenergy"]) == {"total", "by_minute", "minute_ts"} and len(body["aenergy"]["by_minute"]) == 3
    reading = _driver("shelly", address=shelly.address).read()
    assert reading.watts == pytest.approx(3.0, abs=0.05)  # idle: nothing of ours runs
    assert reading.relay_on is True
    assert reading.counter_wh is not None and reading.counter_wh >= 0
    assert reading.extra["minute_ts"] % 60 == 0 and len(reading.extra["by_minute_mwh"]) == 3


def test_tasmota_status_8_gives_statussns_energy_power(tasmota: FakeMeter) -> None:
    body = json.loads(tasmota.get("/cm?cmnd=Status%208"))
    energy = body["StatusSNS"]["ENERGY"]
    assert isinstance(energy["Power"], int)  # WattRes 0, Tasmota's default: whole watts
    reading = _driver("tasmota", address=f"http://{tasmota.address}").read()
    assert reading.watts == 7.0 and reading.counter_wh == pytest.approx(energy["Total"] * 1000, abs=1.0)


def test_http_json_follows_the_dotted_field_and_scale() -> None:
    with FakeMeter("http-json", rate=10, idle=2.5, noise=0.0, resolution=0.001) as meter:
        meter.wait_readings()
        watts = _driver("http-json", url=f"{meter.url}/api/power", field="meter.power_w").read().watts
        milli = _driver("http-json", url=f"{meter.url}/api/power", field="meter.power_w", scale=1000.0).read().watts
    assert watts == pytest.approx(2.5, abs=0.01) and milli == pytest.approx(watts * 1000, rel=0.01)


def test_command_meter_reads_what_the_command_prints(tmp_path: Path) -> None:
    script = tmp_path / "usb-meter"
    script.write_text("#!/bin/sh\necho 'V=5.08 I=0.41 P=2083 mW'\n")
    script.chmod(0o755)
    assert _driver("command", command=[str(script)]).read().watts == pytest.approx(5.08)  # the first number
    script.write_text("#!/bin/sh\necho '2083 mW'\n")
    assert _driver("command", command=[str(script)]).read().watts == pytest.approx(2.083)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "mode, kind, expect",
    [
        ("garbage", "shelly", "not JSON"),
        ("schema", "shelly", "without 'apower'"),
        ("schema", "tasmota", "without StatusSNS.ENERGY"),
        ("schema", "http-json", "without the field 'meter.power_w'"),
    ],
)
def test_a_meter_that_answers_something_else_is_one_line_naming_it(mode: str, kind: str, expect: str) -> None:
    with FakeMeter(kind, rate=10, mode=mode) as meter:
        settings = (
            {"url": f"{meter.url}/api/power", "field": "meter.power_w"}
            if kind == "http-json"
            else {"address": meter.address}
        )
        with pytest.raises(MeterError) as caught:
            _driver(kind, **settings).read()
    message = str(caught.value)
    assert expect in message and "\n" not in message
    assert caught.value.fix and "curl" in caught.value.fix


def test_unreachable_slow_and_wrong_channel_each_say_what_to_do(shelly: FakeMeter) -> None:
    with pytest.raises(MeterError, match=r"cannot reach the shelly plug at 127\.0\.0\.1:") as unreachable:
        _driver("shelly", address=f"127.0.0.1:{_closed_port()}").read()
    assert "address" in unreachable.value.fix
    with pytest.raises(MeterError, match=r"answered HTTP 404 .*-105.*not found") as wrong:
        _driver("shelly", address=shelly.address, channel=3).read()
    assert "channel" in wrong.value.fix
    with FakeMeter("shelly", rate=10, mode="slow", delay=2.0) as slow:
        started = time.monotonic()
        with pytest.raises(MeterError, match=r"did not answer within 0\.3 s") as late:
            _driver("shelly", address=slow.address, timeout_s=0.3).read()
        assert time.monotonic() - started < 1.5
    assert "timeout_s" in late.value.fix


def test_a_plug_switched_off_reads_zero_with_its_relay_off() -> None:
    with FakeMeter("shelly", rate=10, mode="off") as meter:
        meter.wait_readings()
        reading = _driver("shelly", address=meter.address).read()
    assert reading.watts == 0.0 and reading.relay_on is False


@pytest.mark.parametrize(
    "table, expect",
    [
        ({"kind": "zigbee"}, "kind = 'zigbee'; choose one of: shelly, tasmota, http-json, command"),
        ({"kind": "shelly"}, "kind 'shelly' needs address; add address ="),
        ({"kind": "shelly", "adress": "x"}, "unknown setting 'adress'"),
        ({"kind": "http-json", "url": "ftp://x", "field": "a"}, "is not an http(s) URL"),
        ({"kind": "tasmota", "address": "10.0.0.5", "rate_hz": 0}, "rate_hz = 0 is out of range"),
        ({"kind": "command", "command": "meter --watts"}, "command = 'meter --watts' has the wrong type"),
    ],
)
def test_bad_meter_tables_are_one_line_with_the_fix(tmp_path: Path, table: dict, expect: str) -> None:
    config = tmp_path / "edgeprof.toml"
    lines = ["[targets.pi]", 'host = "10.0.0.2"', "", "[targets.pi.meter]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    config.write_text("\n".join(lines) + "\n")
    with pytest.raises(TargetError) as caught:
        load_config(config)
    assert expect in str(caught.value)
    done = run_cli("targets", "list", "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("edgeprof: error: ") and expect in done.stderr


def test_a_good_table_shows_in_targets_show(tmp_path: Path) -> None:
    config = tmp_path / "edgeprof.toml"
    config.write_text(
        '[targets.pi]\nhost = "10.0.0.2"\n\n[targets.pi.meter]\nkind = "tasmota"\naddress = "10.0.0.9"\n'
        "resolution_w = 0.01\n"
    )
    target = load_config(config).targets["pi"]
    assert target.meter == MeterConfig(kind="tasmota", address="10.0.0.9", rate_hz=1.0, resolution_w=0.01)
    shown = run_cli("targets", "show", "pi", "--config", str(config), "--json")
    assert json.loads(shown.stdout)["meter"]["address"] == "10.0.0.9", shown.stderr
    assert sys.executable  # the CLI ran in this interpreter's environment
