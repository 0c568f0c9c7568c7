"""The adb transport with the real adb client. No Android device is attached here, so these tests cover what a user
sees when the phone is missing; commands, push/pull and the Termux forward need a device and are not tested."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeprof.errors import TransportError
from edgeprof.targets import resolve_target
from edgeprof.transports.adb import AdbTransport
from tests.conftest import run_cli


@pytest.fixture
def adb() -> Iterator[str]:
    path = shutil.which("adb")
    if path is None:
        pytest.skip("adb is not installed (apt-get install adb; scripts/services/testbed.sh does it as root)")
    yield path
    subprocess.run([path, "kill-server"], capture_output=True, timeout=30)  # adb leaves a server behind


def test_a_missing_phone_is_one_clear_error(adb: str) -> None:
    with pytest.raises(TransportError, match="adb cannot reach phone: error: device 'R58M0TEST' not found") as info:
        AdbTransport("R58M0TEST", name="phone", timeout=30).run(["python3", "-V"])
    assert "adb devices" in info.value.fix


def test_termux_target_over_adb_reports_the_missing_phone(adb: str, isolated: Path) -> None:
    (isolated / "edgeprof.toml").write_text('[targets.phone]\nkind = "android-termux"\nserial = "R58M0TEST"\n')
    target = resolve_target("phone")
    assert (target.transport, target.port, target.sensors["energy"]) == ("adb", 8022, "battery")
    done = run_cli("targets", "check", "phone")
    assert done.returncode == 1 and "R58M0TEST" in done.stderr and "not found" in done.stderr
    bad = isolated / "bad.toml"
    bad.write_text('[targets.phone]\nkind = "android-termux"\nserial = "-s; reboot"\n')
    refused = run_cli("targets", "list", "--config", str(bad))
    assert refused.returncode == 2 and "is not an adb serial" in refused.stderr
