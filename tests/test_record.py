"""One typed record (``edgeprof_agent.record``): what the agent emits, the store keeps and every view renders, with the
same figures and the same caveats everywhere; defaults and the protocol version written once."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

import edgeprof
from edgeprof import _table, session
from edgeprof.cli.profile import command as profile_command
from edgeprof.profile import ProfileOptions
from edgeprof.report import build_report
from edgeprof.store import open_store
from edgeprof_agent import PROTOCOL_VERSION
from edgeprof_agent.defaults import DEFAULTS, HOST_DEFAULTS
from edgeprof_agent.record import RECORD_VERSION, Energy, Part, ProfileRecord
from tests.conftest import run_cli

QUICK = {"runs": 20, "min_seconds": 0.0, "warmup_seconds": 0.0, "idle_seconds": 0.0}
# What a lone run on this machine has no reason to carry: its group (no --repeat), the subsample of very many
# samples, the figures of a power sensor it does not have and of a power meter on the host it has not got (every
# Energy field the agent's sensor plugins never write; tests/test_meter_profile.py checks a metered record), the
# idle windows held only for a sensor or a meter, the reasons for failures that did not happen; and the store keeps
# the id beside the record, not in it.
SENSOR_ENERGY = {"available", "reason", "checked", "sensor", "label", "scope", "total", "mj_per_inference",
                 "mj_per_inference_above_idle", "mj_per_inference_gross", "mean_w", "idle_w", "sample_rate_hz",
                 "samples"}  # fmt: skip
NOT_APPLICABLE = {
    "ops",  # profile --ops only (like --eval's accuracy), with the board's peak among the device facts
    "device.peak",
    "windows.idle",
    "windows.idle_after",
    *(f"energy.{f.name}" for f in dataclasses.fields(Energy) if f.name not in SENSOR_ENERGY | {"extra", "missing"}),
    "id",
    "group",
    "samples_subsampled",
    "histogram",
    "memory.peak_reset_problem",
    "memory.tensor_arena.reason",
    "conditions.sampler.reason",
    *(
        f"energy.{name}"
        for name in (
            "sensor",
            "label",
            "scope",
            "total",
            "mj_per_inference",
            "mj_per_inference_above_idle",
            "mj_per_inference_gross",
            "mean_w",
            "idle_w",
            "sample_rate_hz",
            "samples",
        )
    ),
}


def _missing(part: Part, path: str = "") -> set[str]:
    found = {f"{path}{name}" for name in part.missing}
    for f in dataclasses.fields(part):
        value = getattr(part, f.name)
        if isinstance(value, Part):
            found |= _missing(value, f"{path}{f.name}.")
    return found


def test_the_record_round_trips_from_the_agent_through_the_store_to_every_view(models: Path, isolated: Path) -> None:
    # A board marked emulated in the config (as a user marks a qemu board): its caveat must reach every view too.
    (isolated / "edgeprof.toml").write_text(
        f'[targets.emu]\ntransport = "local"\nemulated = true\npython = "{sys.executable}"\n'
    )
    store = isolated / "results.db"
    result = edgeprof.profile(models / "int8.tflite", "emu", eval_data=models / "digits.npz", store=store, **QUICK)
    with open_store(store) as db:
        stored = db.profile(result.id)["record"]
    typed = ProfileRecord.load(stored)
    # Agent -> store: every field of the record, every part typed, and nothing lost or changed on the way back.
    assert typed.record_version == RECORD_VERSION
    assert _missing(typed) == NOT_APPLICABLE, _missing(typed) ^ NOT_APPLICABLE
    assert typed.to_dict() == stored
    sent = json.loads(json.dumps(result.to_dict()))
    sent.pop("id")
    assert ProfileRecord.load(sent) == typed
    assert typed.pid() == result.pid and typed.accuracy is not None and typed.memory.tensor_arena.available
    caveat = "EMULATED board (target emu is configured as emulated): timings check correctness, not speed"
    assert typed.caveats() == [caveat]
    lat = typed.latency_ms
    figures = [_table.ms(lat.get(k)) for k in ("min", "median", "mean", "p90", "p95", "p99", "max", "std")]
    # Store -> every view: profile's summary and results show print every figure and the caveat ...
    shown = run_cli("results", "show", str(result.id))
    assert shown.returncode == 0, shown.stderr
    for text in (result.summary(), shown.stdout):
        (row,) = [line for line in text.splitlines() if line.split()[:1] == [figures[0]]]
        assert row.split() == figures
        assert caveat in text and "accuracy on the board" in text and "tensor arena" in text
    # ... the report's runs table, compare and check show the same figures with the same caveat.
    with open_store(store) as db:
        page = build_report(db).html()
    runs_table = page[page.index("<table id=runs>") : page.index("</table>", page.index("<table id=runs>"))]
    for figure in (figures[1], figures[3], figures[5]):  # median, p90, p99
        assert f"<td>{figure}</td>" in runs_table
    assert "EMULATED board" in runs_table
    compared = run_cli("results", "compare", str(result.id), str(result.id))
    assert compared.returncode == 0, compared.stderr
    assert figures[1] in compared.stdout and figures[3] in compared.stdout and caveat in compared.stdout
    budget = isolated / "budget.toml"
    budget.write_text("[limits]\np90_ms = 1000\n")
    checked = run_cli("check", "--budget", str(budget), "--from-store", "--json")
    assert checked.returncode == 0, checked.stderr
    (p90,) = json.loads(checked.stdout)["checks"]
    assert p90["value"] == lat.p90 and caveat in p90["reason"]


def test_defaults_and_the_protocol_version_are_written_once() -> None:
    options = ProfileOptions()
    for name in (f.name for f in dataclasses.fields(options)):
        assert getattr(options, name) == {**DEFAULTS, **HOST_DEFAULTS}[name], name
    cli = {p.name: p.default for p in profile_command.params if isinstance(p, click.Option)}
    for name in ("runs", "warmup_runs", "warmup_seconds", "min_seconds", "max_seconds", "delegate", "pause_ms",
                 "seed", "energy", "idle_seconds"):  # fmt: skip
        assert cli[name] == DEFAULTS[name], name
    assert session.PROTOCOL_VERSION is PROTOCOL_VERSION
