"""A metered run in every view: results show, compare (energy compared with its interval), check (an energy budget
judged by the one-sided 95 % upper bound) and the report's energy plot. One real metered profile; the other runs
are its record with the energy changed, so each verdict is known in advance."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import edgeprof
from edgeprof import views
from edgeprof.budget import Budget, check_store
from edgeprof.compare import compare
from edgeprof.energy import figure_of
from edgeprof.report import build_report
from edgeprof.store import open_store
from tests.conftest import run_cli
from tests.helpers.fake_meter import FakeMeter, meter_config


@pytest.fixture(scope="module")
def metered(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store holding one real metered run (#1) and two edited copies: #2 at 3x its energy, #3 at the same."""
    out = tmp_path_factory.mktemp("metered")
    store_path = out / "results.db"
    with FakeMeter("shelly", rate=10, watch=str(out / "board")) as meter:
        config = meter_config(out / "edgeprof.toml", meter, workdir=out / "board", rate_hz=10)
        meter.wait_readings()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("EDGEPROF_CONFIG", str(config))
            result = edgeprof.profile(
                models / "float.tflite", "bench", threads=1, runs=50, min_seconds=0.5, warmup_seconds=0.2,
                max_seconds=8.0, energy_precision=0.25, store=str(store_path),
            )  # fmt: skip
    record = result.to_dict()
    assert record["energy"]["available"], record["energy"]
    store = open_store(str(store_path))
    for factor in (3.0, 1.0):
        copied = copy.deepcopy(record)
        for key in ("mj_per_inference", "mj_per_inference_above_idle"):
            copied["energy"][key] *= factor
        store.add_profile(copied)
    store.close()
    return {"store": str(store_path), "record": record, "config": str(config), "summary": result.summary()}


def _records(store: str, *ids: int) -> list[dict[str, Any]]:
    db = open_store(store)
    return [{**db.profile(i)["record"], "id": i} for i in ids]


def test_results_show_prints_the_figure_its_interval_and_the_meter(metered: dict[str, Any]) -> None:
    done = run_cli("results", "show", "1", "--store", metered["store"])
    assert done.returncode == 0, done.stderr
    assert "mJ/inference above idle (95 %)" in done.stdout and "± " in done.stdout
    assert "meter: shelly plug at 127.0.0.1:" in done.stdout and "clocks aligned to ±" in done.stdout


def test_every_view_shows_the_same_energy_from_the_typed_record(metered: dict[str, Any]) -> None:
    """The meter's figure lives in the typed record: it round-trips through the store unchanged, and profile,
    results show, the report, compare and check all print it (and its interval) from there, in the same words."""
    stored = _records(metered["store"], 1)[0]
    typed = views.load(stored)
    assert typed.to_dict() == stored and typed.energy is not None and typed.energy.origin() == "meter"
    assert typed.energy.meter.kind == "shelly" and typed.energy.alignment.error_s is not None
    assert typed.energy.u95() == stored["energy"]["mj_per_inference_u95"] and typed.energy.idle_w is not None
    lines = views.energy_lines(typed)
    assert lines[0].startswith("energy: ") and "(95 %)" in lines[0] and lines[1].startswith("  meter: shelly plug")
    shown = run_cli("results", "show", "1", "--store", metered["store"])
    for text in (metered["summary"], shown.stdout):
        assert all(line in text.splitlines() for line in lines), text
    cell = views.energy_cell(typed)  # "1.234 ± 0.05": the report's cell, compare's and check's figure
    assert " ± " in cell
    page = build_report(open_store(metered["store"])).html()
    runs_table = page[page.index("<table id=runs>") : page.index("</table>", page.index("<table id=runs>"))]
    assert f">{cell}</td>" in runs_table
    compared = run_cli("results", "compare", "1", "3", "--store", metered["store"])
    assert f"energy {cell} mJ -> {cell} mJ per inference (above idle)" in compared.stdout, compared.stdout
    budget = Path(metered["store"]).with_name("energy.toml")
    budget.write_text("[limits]\nenergy_mj = 1000\n")
    checked = run_cli("check", "--budget", str(budget), "--from-store", "--store", metered["store"], "--json")
    reasons = [c["reason"] for c in json.loads(checked.stdout)["checks"] if c["profile_id"] == 3]  # #3: as #1
    assert reasons == [f"95% upper bound of {cell} mJ (above idle, meter)"], reasons


def test_compare_judges_energy_by_the_interval_of_the_difference(metered: dict[str, Any]) -> None:
    one, tripled, same = _records(metered["store"], 1, 2, 3)
    change = compare(one, tripled).energy
    assert change is not None and change["significant"] and change["verdict"].startswith("3.00x the energy")
    unchanged = compare(one, same).energy
    assert unchanged["significant"] is False and unchanged["verdict"] == "no significant change in energy per inference"
    assert unchanged["difference_u95"] == pytest.approx(2**0.5 * one["energy"]["mj_per_inference_u95"])
    text = run_cli("results", "compare", "1", "2", "--store", metered["store"]).stdout
    assert "energy " in text and "3.00x the energy" in text and "(above idle)" in text


def test_an_energy_budget_is_met_only_by_the_upper_bound(metered: dict[str, Any]) -> None:
    figure = figure_of(metered["record"])
    assert figure is not None and figure.u95 is not None
    upper = figure.upper()
    assert figure.mj < upper < figure.mj + figure.u95
    store = open_store(metered["store"])
    between = Budget.from_dict({"limits": {"energy_mj": (figure.mj + upper) / 2}})
    report = check_store(between, store, model="float.tflite")
    energy = next(c for c in report.checks if c.metric == "energy_mj" and c.profile_id == 3)  # #3: same energy
    assert energy.status == "FAIL" and "95% upper bound of" in energy.reason and energy.mean == figure.mj
    roomy = Budget.from_dict({"limits": {"energy_mj": upper * 1.01}})
    assert [c.status for c in check_store(roomy, store).checks if c.profile_id == 3] == ["pass"]


def test_the_report_plots_metered_energy_with_its_interval(metered: dict[str, Any], tmp_path: Path) -> None:
    report = build_report(open_store(metered["store"]))
    plots = {p.name: p for p in report.plots}
    assert "energy" in plots, list(plots)
    assert "a power meter on the host (above idle)" in plots["energy"].caption
    assert "95 % interval" in plots["energy"].caption
    assert json.loads(json.dumps(report.to_dict()))  # the report's JSON carries the runs as stored
