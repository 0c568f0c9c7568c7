"""An installed wheel works from any folder, with no checkout around it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("edgeprof-*.whl"))


def test_wheel_ships_sdk_agent_and_board_profiles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in (ROOT / "sdk" / "edgeprof").rglob("*.py"):
        assert f"edgeprof/{source.relative_to(ROOT / 'sdk' / 'edgeprof').as_posix()}" in names
    for source in (ROOT / "device_agents" / "edgeprof_agent").rglob("*.py"):
        assert f"edgeprof_agent/{source.relative_to(ROOT / 'device_agents' / 'edgeprof_agent').as_posix()}" in names
    for data in (ROOT / "sdk" / "edgeprof").rglob("*.json"):
        assert f"edgeprof/{data.relative_to(ROOT / 'sdk' / 'edgeprof').as_posix()}" in names
    for profile in (ROOT / "targets").glob("*.toml"):
        assert f"edgeprof/builtin_targets/{profile.name}" in names


def test_installed_wheel_profiles_from_an_empty_folder(wheel: Path, tmp_path: Path, models: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    model = empty / "m.tflite"
    model.write_bytes((models / "float.tflite").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(site), "EDGEPROF_STORE": str(empty / "r.db")}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import edgeprof, edgeprof_agent; from edgeprof.tflite import compat; print(edgeprof.__file__);"
            "print(edgeprof_agent.__file__); print(compat.__file__); assert len(compat.KNOWN_RUNTIMES) >= 11",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert all(line.startswith(str(site)) for line in probe.stdout.split()), probe.stdout
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeprof",
            "profile",
            "m.tflite",
            "--runs",
            "5",
            "--min-seconds",
            "0",
            "--warmup-seconds",
            "0",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "median" in done.stdout
    assert (empty / "r.db").exists()
