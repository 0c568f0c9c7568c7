"""A search whose objective is energy per inference, measured by a metering plug on the host (a board with no power
sensor, as most smart-home prototypes are): each trial's energy is the median of its stored runs' metered energy,
and those runs hold the plug's true energy within their stated uncertainty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeprof.store import open_store
from edgeprof.store.sql import energy_mj
from tests.conftest import run_cli
from tests.helpers.fake_meter import FakeMeter, meter_config

pytestmark = pytest.mark.slow

SPACE = '[[step]]\nkind = "quantize"\nmode = ["dynamic", "float16"]\n'


def test_energy_is_an_objective_measured_by_a_plug_on_the_host(models: Path, isolated: Path) -> None:
    board = isolated / "board"
    (isolated / "space.toml").write_text(SPACE)
    with FakeMeter("shelly", rate=10, idle=3.0, active=5.0, noise=0.01, resolution=0.01, watch=str(board)) as meter:
        meter_config(isolated / "edgeprof.toml", meter, name="plugged", workdir=board, rate_hz=10)
        meter.wait_readings()
        done = run_cli(
            "search", "run", str(models / "cnn.keras"), "--data", str(models / "digits.npz"),
            "--space", str(isolated / "space.toml"), "--target", "plugged", "--objectives", "accuracy_drop,energy_mj",
            "--sampler", "grid", "--trials", "2", "--repeat", "2", "--min-seconds", "0.5", "--warmup-seconds", "0.2",
            "--study", "energy", "--json", cwd=isolated,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)
        trials = [t for t in result["trials"] if t["state"] == "COMPLETE"]
        assert len(trials) == 2
        with open_store(isolated / "results.db") as store:
            for trial in trials:
                board_figures = trial["figures"]["boards"]["plugged"]
                records = [store.profile(run)["record"] for run in board_figures["runs"]]
                energies = sorted(energy_mj(r) for r in records)
                assert trial["values"]["energy_mj"] == pytest.approx(sum(energies) / 2)  # the median of 2 runs
                for record in records:
                    energy = record["energy"]
                    assert energy["source"] == "meter" and energy["meter"]["kind"] == "shelly"
                    truth = meter.energy_per_inference_mj(record)
                    # 3 × the 95 % half-width: a run outside it is a wrong figure, not bad luck (p < 0.3 %)
                    assert abs(energy["mj_per_inference"] - truth) <= 3 * energy["mj_per_inference_u95"], (
                        energy,
                        truth,
                    )
