"""Pytest side of compress_runs: run a batch of jobs in one child process and read back the manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgeprof.tflite import TFLiteModel, parse

ROOT = Path(__file__).resolve().parents[2]


class Run:
    def __init__(self, out: Path, status: dict[str, Any]) -> None:
        self.out = out
        self.status = status
        self.ok = status.get("ok", False)
        self.error = status.get("error", "")

    @property
    def manifest(self) -> dict[str, Any]:
        assert self.ok, self.error
        return json.loads((self.out / "manifest.json").read_text())

    @property
    def tflite(self) -> TFLiteModel:
        assert self.ok, self.error
        return parse((self.out / "model.tflite").read_bytes())

    def step(self, kind: str) -> dict[str, Any]:
        return next(s for s in self.manifest["steps"] if s["kind"] == kind)


def run_jobs(
    tmp: Path, jobs: dict[str, dict[str, Any]], timeout: float = 900, runner: str = "tests.helpers.compress_runs"
) -> dict[str, Run]:
    """jobs: name -> {"model", "recipe", "data"} or {"case", ...}; all run in one process (``runner``'s cases)."""
    listing = []
    for name, job in jobs.items():
        listing.append({"name": name, "out": str(tmp / name), **job})
    jobs_file = tmp / "jobs.json"
    jobs_file.write_text(json.dumps(listing))
    done = subprocess.run(
        [sys.executable, "-m", runner, str(jobs_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Run(tmp / name, status[name]) for name in jobs}
