"""A power meter on a test-bed board's network: the plug answers from inside the board's namespace (its own
address), the host reads it over the veth link while the agent runs over SSH, and the plug's trace follows every
process of that board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeprof
from tests.helpers.fake_meter import FakeMeter
from tests.testbed import Board, TestBed, needs_netns, write_config

pytestmark = [pytest.mark.ssh, pytest.mark.netns]


def test_a_plug_in_the_boards_namespace_measures_a_profile_over_ssh(
    bed: TestBed, fresh_board, isolated: Path, models: Path
) -> None:
    needs_netns(bed)
    board: Board = fresh_board("plugged")
    with FakeMeter("tasmota", rate=10, resolution=0.01, netns=board.netns, bind=board.address) as meter:
        config = write_config(bed, isolated, [board])
        table = {"kind": "tasmota", "address": meter.address, "rate_hz": 10, "resolution_w": 0.01}
        config.write_text(
            config.read_text()
            + f"\n[targets.{board.name}.meter]\n"
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        )
        meter.wait_readings()
        result = edgeprof.profile(
            models / "float.tflite", board.name, threads=1, runs=20, min_seconds=0.5, warmup_seconds=0.2,
            max_seconds=12.0, energy_precision=0.25,
        )  # fmt: skip
        energy = result.measurement["energy"]
        assert energy["available"], energy
        truth = meter.energy_per_inference_mj(result.measurement)
    assert abs(energy["mj_per_inference"] - truth) <= 2 * energy["mj_per_inference_u95"], (energy, truth)
    assert energy["meter"]["kind"] == "tasmota" and board.address in energy["label"]
    alignment = energy["alignment"]
    # Over SSH the exchanges take longer than in-process ones, but the clocks are still one: offset within the bound.
    assert abs(alignment["offset_s"]) <= alignment["error_s"] + 1e-6 and alignment["rtt_s"] > 0
    assert result.device["hostname"] == board.hostname
