"""The emulated arm64 board: Debian bookworm arm64 under qemu-user, its own sshd in a namespace, profiled end to end.

Its timings are 10-100x slower than any real arm64 board's: the result is marked emulated and the summary says so.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.testbed import QUICK_CLI, TestBed, needs_netns, write_config

pytestmark = pytest.mark.ssh


def test_profile_on_the_emulated_arm64_board(bed: TestBed, fresh_board, isolated: Path, models: Path) -> None:
    needs_netns(bed)
    rootfs = os.environ.get("EDGEPROF_TESTBED_ARM64")
    if not rootfs or not Path(rootfs, ".edgeprof-board-ready").exists():
        pytest.skip("no emulated arm64 board: scripts/services/testbed.sh builds it as root (run ./scripts/test)")
    board = fresh_board("arm64", rootfs=rootfs)
    # no "emulated = true" in the config: edgeprof must notice the emulation on its own
    write_config(bed, isolated, [board], extra={"arm64": {"emulated": None}})
    assert "emulated =" not in (isolated / "edgeprof.toml").read_text()
    done = run_cli("profile", str(models / "int8.tflite"), "--target", "arm64", *QUICK_CLI, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("EMULATED board"), done.stdout  # never presented as a speed figure
    with sqlite3.connect(isolated / "results.db") as conn:
        target, record = conn.execute("SELECT target, record FROM profiles").fetchone()
    device = json.loads(record)["device"]
    assert target == "arm64"
    assert device["machine"] == "aarch64" and device["hostname"] == "arm64"
    assert device["emulated"] is True and "qemu-user" in device["emulated_reason"]
    assert json.loads(record)["runtime"]["name"] == "ai_edge_litert"
