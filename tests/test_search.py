"""Real small searches on the digits CNN (grid, TPE, NSGA-II; tests/helpers/search_runs.py runs them once): each
objective is the stored measurement, trials are ordinary runs for results/compare/check, constraints and
--max-drop keep trials off the front, the front is compare's verdict, export and the report's section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgeprof.compare import compare
from edgeprof.modelfile import sha256_bytes
from edgeprof.store import open_store
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def studies(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEPROF_CACHE_DIR": str(out / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.search_runs", str(models), str(out)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _runs(studies: Path) -> dict[str, Any]:
    return json.loads((studies / "runs.json").read_text())


def _result(studies: Path, name: str) -> dict[str, Any]:
    return _runs(studies)[name]["result"]


def _complete(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in result["trials"] if t["state"] == "COMPLETE" and t["same_as"] is None]


def _cli(studies: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"EDGEPROF_STORE": str(studies / "results.db")}, cwd=studies)


def test_grid_runs_each_recipe_of_the_space_once(studies: Path) -> None:
    grid = _result(studies, "grid")
    assert grid["settings"]["sampler"] == "grid"
    recipes = sorted(t["recipe"] for t in grid["trials"])
    assert recipes == ["quantize dynamic", "quantize float16", "quantize int8"]  # --trials 10: the grid holds 3
    assert grid["counts"] == {"complete": 3}


def test_tpe_and_nsga2_ran_their_trials(studies: Path) -> None:
    for name, trials in (("tpe", 3), ("nsga2", 3)):
        result = _result(studies, name)
        assert result["settings"]["sampler"] == name
        assert set(result["counts"]) <= {"complete", "repeated"}
        assert len(_complete(result)) == trials  # --trials counts recipes measured, not those drawn again
        assert len({t["recipe"] for t in _complete(result)}) == trials
        for t in result["trials"]:
            if t["same_as"] is not None:  # a recipe drawn again takes the first one's measurements, not a rerun
                first = next(o for o in result["trials"] if o["number"] == t["same_as"])
                assert t["recipe"] == first["recipe"] and t["values"] == first["values"]
    # NSGA-II is asked every field, those of a step left out too; a trial shows only what shaped its recipe
    for t in _complete(_result(studies, "nsga2")):
        assert ("prune.sparsity" in t["params"]) == t["params"]["prune.use"] == t["recipe"].startswith("prune")
    # and a study this short is told that TPE did as well or better at its size in bench-search
    advice = [line for line in _runs(studies)["nsga2"]["said"] if line.startswith("nsga2: 3 trials make")]
    assert advice and "--sampler tpe" in advice[0]
    assert not any(line.startswith("tpe:") or "nsga2:" in line for line in _runs(studies)["tpe"]["said"])


def test_every_objective_is_the_stored_measurement(studies: Path) -> None:
    with open_store(studies / "results.db") as store:
        for name in ("grid", "tpe", "nsga2"):
            result = _result(studies, name)
            baseline = store.compression(result["settings"]["baseline"]["compression"])
            for t in _complete(result):
                row = store.compression(t["compression"])
                assert row["record"]["search"] == {"study": name, "trial": t["number"]}
                drop = 100 * (baseline["record"]["tflite"]["metrics"]["accuracy"]
                              - row["record"]["tflite"]["metrics"]["accuracy"])  # fmt: skip
                assert t["values"]["accuracy_drop"] == pytest.approx(drop, abs=1e-9)
                board = t["figures"]["boards"]["local"]
                runs = store.group(board["trial_group"])["runs"]
                base_runs = store.group(board["baseline_group"])["runs"]
                assert len(runs) == len(base_runs) == 2  # --repeat 2, interleaved in one batch
                assert {r["model_sha256"] for r in runs} == {row["model_sha256"]}
                medians = sorted(r["median_ms"] for r in runs)
                assert t["values"]["median_ms"] == pytest.approx(sum(medians) / 2)
                if "gzip_kib" in t["values"]:
                    assert t["values"]["gzip_kib"] == pytest.approx(row["record"]["tflite"]["gzip_bytes"] / 1024)
                verdict = compare([r["record"] for r in base_runs], [r["record"] for r in runs])
                assert board["speed"]["verdict"] == verdict.verdict and board["speed"]["test"].startswith("paired")


def test_trials_are_runs_that_results_compare_and_check_work_on(studies: Path) -> None:
    trial = _complete(_result(studies, "tpe"))[0]
    board = trial["figures"]["boards"]["local"]
    listed = _cli(studies, "results", "list", "--compressions")
    assert listed.returncode == 0, listed.stderr
    assert f"trial-{trial['number']}/model.tflite" in listed.stdout
    compared = _cli(studies, "results", "compare", f"g:{board['baseline_group']}", f"g:{board['trial_group']}")
    assert compared.returncode == 0, compared.stderr
    assert board["speed"]["verdict"] in compared.stdout
    with open_store(studies / "results.db") as store:
        before = len(store.profiles())
    budget = studies / "check.toml"
    budget.write_text("[limits]\ngzip_kib = 1000\np90_ms = 1000\n")
    checked = _cli(studies, "check", "--budget", str(budget), trial["model_path"], "--target", "local", "--json")
    assert checked.returncode == 0, checked.stderr
    rows = {c["metric"]: c for c in json.loads(checked.stdout)["checks"]}
    with open_store(studies / "results.db") as store:
        assert len(store.profiles()) == before  # the runs the search stored: nothing profiled again
        # the newest group of this very file (another study may have made the same file from the same recipe)
        assert store.profile(rows["p90_ms"]["profile_id"])["model_sha256"] == trial["figures"]["sha256"]


def test_constraints_and_max_drop_keep_trials_off_the_front(studies: Path) -> None:
    grid = _result(studies, "grid")
    by_recipe = {t["recipe"]: t for t in grid["trials"]}
    assert not by_recipe["quantize float16"]["feasible"]
    assert any("gzip size on local" in b and "over" in b for b in by_recipe["quantize float16"]["broken"])
    assert by_recipe["quantize int8"]["feasible"]
    assert all(t["feasible"] for t in grid["trials"] if t["number"] in grid["front"])
    best = grid["best_within_max_drop"]
    feasible = [t for t in _complete(grid) if t["feasible"]]
    assert best["trial"] == min(feasible, key=lambda t: t["values"]["median_ms"])["number"]
    nsga2 = _result(studies, "nsga2")
    over = [t for t in _complete(nsga2) if t["values"]["accuracy_drop"] > 1.0]
    assert over, "the 80 % pruned trials lose more than 1 pp after one epoch"
    for t in over:
        assert not t["feasible"] and t["number"] not in nsga2["front"]
        assert any(b.startswith("accuracy drop ") and b.endswith("> 1 pp") for b in t["broken"])


def _order(store: Any, a: dict[str, Any], b: dict[str, Any], key: str) -> int:
    """-1: a better than b, 1: worse, 0: the measurements cannot tell (latency: compare's verdict on the groups)."""
    if key != "median_ms":
        va, vb = a["values"][key], b["values"][key]
        return 0 if abs(va - vb) < 1e-9 else (-1 if va < vb else 1)
    runs_a, runs_b = (store.group(t["figures"]["boards"]["local"]["trial_group"])["runs"] for t in (a, b))
    verdict = compare([r["record"] for r in runs_b], [r["record"] for r in runs_a])
    return 0 if not verdict.significant else (-1 if verdict.change < 0 else 1)


def test_the_front_is_compares_verdict_on_the_trials_runs(studies: Path) -> None:
    """Two trials differ in latency on the front only where compare says so; the front is exactly the feasible
    trials no other beats beyond the noise."""
    with open_store(studies / "results.db") as store:
        for name in ("grid", "tpe", "nsga2"):
            result = _result(studies, name)
            trials = [t for t in _complete(result) if t["feasible"]]
            kept = []
            for t in trials:
                orders = [[_order(store, o, t, key) for key in result["objectives"]] for o in trials if o is not t]
                if not any(all(x <= 0 for x in found) and any(x < 0 for x in found) for found in orders):
                    kept.append(t["number"])
            assert sorted(result["front"]) == sorted(kept), name


def test_show_list_and_json(studies: Path) -> None:
    shown = _cli(studies, "search", "show", "tpe", "--lambda", "10")
    assert shown.returncode == 0, shown.stderr
    assert "study tpe" in shown.stdout and "λ-weighted optimum" in shown.stdout
    assert "float32" in shown.stdout and "front" in shown.stdout
    as_json = json.loads(_cli(studies, "search", "show", "nsga2", "--json").stdout)
    assert as_json["study"] == "nsga2" and as_json["objectives"] == ["accuracy_drop", "median_ms", "gzip_kib"]
    listed = _cli(studies, "search", "list")
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == ["grid", "tpe", "nsga2"]
    missing = _cli(studies, "search", "show", "nope")
    assert missing.returncode == 2 and "no study 'nope'" in missing.stderr and "grid, tpe, nsga2" in missing.stderr


def test_export_a_trial_or_the_lambda_optimum(studies: Path, tmp_path: Path) -> None:
    grid = _result(studies, "grid")
    trial = _complete(grid)[0]
    done = _cli(studies, "search", "export", "grid", "--trial", str(trial["number"]), "-o", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    assert sha256_bytes((tmp_path / "a" / "model.tflite").read_bytes()) == trial["figures"]["sha256"]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["search"] == {"study": "grid", "trial": trial["number"]}
    done = _cli(studies, "search", "export", "grid", "--lambda", "1000", "-o", str(tmp_path / "b"), "--json")
    assert done.returncode == 0, done.stderr
    feasible = [t for t in _complete(grid) if t["feasible"]]
    fastest = min(feasible, key=lambda t: (t["ratio"], t["values"]["accuracy_drop"]))
    assert json.loads(done.stdout)["trial"] == fastest["number"]
    for args, words in (
        (["--trial", "99"], "study grid has no trial 99"),
        ([], "export needs one of --trial N or --lambda L"),
        (["--trial", "0", "--lambda", "1"], "export needs one of --trial N or --lambda L"),
    ):
        bad = _cli(studies, "search", "export", "grid", *args, "-o", str(tmp_path / "c"))
        assert bad.returncode == 2 and words in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_report_has_a_section_per_study(studies: Path) -> None:
    page = studies / "report.html"
    done = _cli(studies, "report", "--out", str(page), "--json")
    assert done.returncode == 0, done.stderr
    searches = {s["study"]: s for s in json.loads(done.stdout)["searches"]}
    assert sorted(searches) == ["grid", "nsga2", "tpe"]
    assert searches["grid"]["plots"] == ["search_grid_median_ms", "search_grid_gzip_kib"]
    assert searches["tpe"]["front"] == _result(studies, "tpe")["front"]
    text = page.read_text()
    assert "<h2>Searches</h2>" in text and "Study nsga2" in text
    assert text.count("id='fig-search_") == 5  # one plot per efficiency objective of each study
