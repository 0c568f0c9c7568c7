"""``edgeprof check``: budgets against a model file and against stored runs; exit 0 pass, 1 breach, 2 error."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import edgeprof
from edgeprof.budget import Budget, BudgetError
from edgeprof.modelfile import open_tflite
from edgeprof.profile import DEFAULT_REPEAT
from edgeprof.store import open_store
from tests.conftest import ROOT, run_cli

QUICK = ["--runs", "50"]
PROFILE = {"runs": 100, "min_seconds": 0.2, "warmup_seconds": 0.1, "threads": 1}


@pytest.fixture(scope="module")
def compressed(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An int8 model compressed (for real) from the test CNN, its manifest and one profile run in a store."""
    out = tmp_path_factory.mktemp("budget")
    store = out / "results.db"
    done = run_cli("compress", str(models / "cnn.keras"), "-o", str(out / "int8"), "--data",
                   str(models / "digits.npz"), "--quantize", "int8", "--store", str(store))  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = out / "int8" / "model.tflite"
    run = edgeprof.profile(model, "local", store=store, **PROFILE)
    manifest = json.loads((out / "int8" / "manifest.json").read_text())
    return {"store": store, "model": model, "run": run, "manifest": manifest, "out": out}


def _budget(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budget.toml"
    path.write_text(text)
    return path


def _check(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    done = run_cli("check", *args)
    data = json.loads(done.stdout) if "--json" in args and done.stdout.strip() else None
    return done, data


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: "), done.stderr
    return lines[0]


def test_a_model_within_budget_passes(compressed: dict[str, Any], tmp_path: Path) -> None:
    budget = _budget(
        tmp_path, "[limits]\np90_ms = 1000\npeak_memory_mib = 4096\ngzip_kib = 1024\naccuracy_drop_pp = 50\n"
    )
    done, data = _check(
        "--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert data is not None and data["passed"] is True and data["breaches"] == 0
    checks = {c["metric"]: c for c in data["checks"]}
    assert set(checks) == {"p90_ms", "peak_memory_mib", "gzip_kib", "accuracy_drop_pp"}
    run = compressed["run"]
    # The figures are those of the stored run, the file, and the manifest.
    assert checks["p90_ms"]["value"] == pytest.approx(run.latency_ms["p90"])
    assert checks["p90_ms"]["profile_id"] == run.id
    assert checks["peak_memory_mib"]["value"] == pytest.approx(run.peak_rss_kb / 1024)
    info, _ = open_tflite(compressed["model"])
    assert checks["gzip_kib"]["value"] == pytest.approx(info.gzip_bytes / 1024)
    m = compressed["manifest"]
    drop = 100 * (m["source"]["metrics"]["accuracy"] - m["tflite"]["metrics"]["accuracy"])
    assert checks["accuracy_drop_pp"]["value"] == pytest.approx(drop)
    assert all(c["status"] == "pass" and c["target"] == "local" for c in data["checks"])
    text, _ = _check("--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]))
    assert text.returncode == 0 and "PASS: every limit is met" in text.stdout


def test_a_breach_fails_with_exit_1_and_names_it(compressed: dict[str, Any], tmp_path: Path) -> None:
    p90 = compressed["run"].latency_ms["p90"]
    budget = _budget(tmp_path, f"[limits]\np90_ms = 1000\ngzip_kib = 1024\n\n[targets.local]\np90_ms = {p90 / 2}\n")
    done, data = _check(
        "--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]), "--json"
    )
    assert done.returncode == 1, done.stderr
    assert data is not None and data["passed"] is False and data["breaches"] == 1
    (breach,) = [c for c in data["checks"] if c["status"] == "FAIL"]
    assert breach["metric"] == "p90_ms" and breach["limit"] == pytest.approx(p90 / 2)
    assert breach["value"] == pytest.approx(p90)
    text, _ = _check("--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]))
    assert text.returncode == 1
    assert "FAIL: 1 of 2 checks over budget" in text.stdout
    assert re.search(r"p90 latency\s+\S+ ms\s+<= \S+ ms\s+FAIL", text.stdout)


def test_an_unmeasured_figure_is_unknown_and_fails_only_when_strict(compressed: dict[str, Any], tmp_path: Path) -> None:
    budget = _budget(tmp_path, "[limits]\nenergy_mj = 1.0\n")
    args = ["--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]), "--json"]
    done, data = _check(*args)
    assert done.returncode == 0
    assert data is not None
    (energy,) = data["checks"]
    assert energy["status"] == "unknown" and energy["value"] is None and "no power sensor" in energy["reason"]
    strict, strict_data = _check(*args, "--strict")
    assert strict.returncode == 1 and strict_data is not None and strict_data["passed"] is False


def test_a_model_without_a_stored_run_is_profiled_first(models: Path, tmp_path: Path) -> None:
    store = tmp_path / "fresh.db"
    budget = _budget(tmp_path, "[limits]\np90_ms = 1000\naccuracy_drop_pp = 1\n")
    done = run_cli("check", "--budget", str(budget), str(models / "float.tflite"), "--store", str(store), *QUICK)
    assert done.returncode == 0, done.stderr
    # one group of DEFAULT_REPEAT fresh processes: a gate needs a bound, and one process gives none
    assert f"profiling float.tflite on local ({DEFAULT_REPEAT} process(es), each a fresh agent)" in done.stderr
    assert "no compression manifest" in done.stdout  # accuracy is unknown for a model edgeprof did not compress
    assert f"95% upper bound over {DEFAULT_REPEAT} runs" in done.stdout
    with open_store(store) as db:
        assert len(db.profiles()) == DEFAULT_REPEAT and len(db.groups()) == 1
    again = run_cli("check", "--budget", str(budget), str(models / "float.tflite"), "--store", str(store))
    assert again.returncode == 0 and "profiling" not in again.stderr  # the stored run is used
    measured = run_cli(
        "check", "--budget", str(budget), str(models / "float.tflite"), "--store", str(store), "--measure", *QUICK
    )
    assert measured.returncode == 0 and "profiling float.tflite on local" in measured.stderr
    with open_store(store) as db:
        assert len(db.profiles()) == 2 * DEFAULT_REPEAT


def test_from_store_checks_the_newest_run_of_every_model(
    compressed: dict[str, Any], models: Path, tmp_path: Path
) -> None:
    store = tmp_path / "two.db"
    with open_store(store) as db:
        for name in ("float.tflite", "int8.tflite"):
            edgeprof.profile(models / name, "local", store=db, **PROFILE)
        newest = edgeprof.profile(models / "float.tflite", "local", store=db, **PROFILE)
    budget = _budget(tmp_path, "[limits]\np90_ms = 1000\ngzip_kib = 1\n")
    done, data = _check("--budget", str(budget), "--from-store", "--store", str(store), "--json")
    assert data is not None
    rows = {(Path(c["model"]).name, c["metric"]): c for c in data["checks"]}  # labels: "models0/float.tflite"
    assert set(rows) == {(m, k) for m in ("float.tflite", "int8.tflite") for k in ("p90_ms", "gzip_kib")}
    assert rows[("float.tflite", "p90_ms")]["profile_id"] == newest.id
    # The float model's gzip size is far above 1 KiB: a breach.
    assert rows[("float.tflite", "gzip_kib")]["status"] == "FAIL" and done.returncode == 1
    _only, only_data = _check(
        "--budget", str(budget), "--from-store", "--store", str(store), "--model", "int8.tflite", "--json"
    )
    assert only_data is not None and {Path(c["model"]).name for c in only_data["checks"]} == {"int8.tflite"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\np90 = 2\n", "unknown limit 'p90'"),
        ("[limits]\np90_ms = 'fast'\n", "is not a number"),
        ("[limit]\np90_ms = 2\n", "unknown section(s) limit"),
        ("[limits\np90_ms = 2\n", "is not valid TOML"),
        ("", "sets no limit"),
    ],
)
def test_a_bad_budget_is_one_clear_line(models: Path, tmp_path: Path, text: str, message: str) -> None:
    budget = _budget(tmp_path, text)
    line = _one_error_line(run_cli("check", "--budget", str(budget), str(models / "float.tflite")))
    assert message in line


def test_bad_invocations_are_one_clear_line(models: Path, tmp_path: Path) -> None:
    budget = _budget(tmp_path, "[limits]\np90_ms = 2\n")
    assert "does not exist" in _one_error_line(
        run_cli("check", "--budget", str(tmp_path / "none.toml"), "--from-store")
    )
    assert "MODEL or --from-store" in _one_error_line(run_cli("check", "--budget", str(budget)))
    both = run_cli("check", "--budget", str(budget), str(models / "float.tflite"), "--from-store")
    assert "not both" in _one_error_line(both)
    not_model = tmp_path / "x.tflite"
    not_model.write_text("nope")
    assert "not a TFLite model" in _one_error_line(run_cli("check", "--budget", str(budget), str(not_model)))


def test_target_overrides_most_specific_wins() -> None:
    budget = Budget.from_dict(
        {"limits": {"p90_ms": 5, "gzip_kib": 64}, "targets": {"rpi-*": {"p90_ms": 10}, "rpi-4": {"p90_ms": 20}}}
    )
    assert budget.limits_for("local") == {"p90_ms": 5, "gzip_kib": 64}
    assert budget.limits_for("rpi-3") == {"p90_ms": 10, "gzip_kib": 64}
    assert budget.limits_for("rpi-4") == {"p90_ms": 20, "gzip_kib": 64}
    assert budget.named_targets() == ["rpi-4"]
    with pytest.raises(BudgetError):
        Budget.from_dict({"limits": {"p90_ms": -1}})


def test_the_example_budget_and_workflow_are_usable() -> None:
    budget = Budget.from_file(ROOT / "examples" / "ci" / "budget.toml")
    assert budget.limits_for("local")["p90_ms"] == 1.0 and budget.limits_for("rpi-5")["peak_memory_mib"] == 128
    import yaml

    steps = yaml.safe_load((ROOT / "examples" / "ci" / "model-budget.yml").read_text())["jobs"]["budget"]["steps"]
    commands = re.findall(r"\bedgeprof (\w+)", "\n".join(step.get("run", "") for step in steps))
    assert {"compress", "check", "report"} <= set(commands)
    for command in set(commands):
        assert run_cli(command, "--help").returncode == 0, command


def test_a_failing_row_says_by_how_much_and_the_label_tells_files_apart(
    compressed: dict[str, Any], tmp_path: Path
) -> None:
    budget = _budget(tmp_path, "[limits]\ngzip_kib = 1\n")
    done = run_cli("check", "--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]))
    assert done.returncode == 1
    (row,) = [line for line in done.stdout.splitlines() if "gzip size" in line]
    assert re.search(r"FAIL\s+\d+\.\d KiB over$", row), row  # the size is shown; it is not "unknown"
    assert "size unknown" not in done.stdout
    assert row.startswith("int8/model.tflite (quantize int8)"), row  # folder and recipe: not just "model.tflite"


def test_pass_with_unknown_limits_says_what_was_not_measured(compressed: dict[str, Any], tmp_path: Path) -> None:
    budget = _budget(tmp_path, "[limits]\np90_ms = 1000\nenergy_mj = 1.0\n")
    done = run_cli("check", "--budget", str(budget), str(compressed["model"]), "--store", str(compressed["store"]))
    assert done.returncode == 0
    assert "every limit is met" not in done.stdout
    assert "PASS: 1 of 2 limits met; 1 unknown (not measured" in done.stdout and "--strict" in done.stdout


def test_accuracy_comes_from_the_manifest_beside_the_model(
    compressed: dict[str, Any], tmp_path: Path, models: Path
) -> None:
    budget = _budget(tmp_path, "[limits]\naccuracy_drop_pp = 50\n")
    fresh = tmp_path / "fresh.db"  # a store that never saw the compression: a CI job with a clean workspace
    done, data = _check("--budget", str(budget), str(compressed["model"]), "--store", str(fresh), "--json")
    assert done.returncode == 0 and data is not None
    (acc,) = data["checks"]
    m = compressed["manifest"]
    assert acc["status"] == "pass"
    assert acc["value"] == pytest.approx(
        100 * (m["source"]["metrics"]["accuracy"] - m["tflite"]["metrics"]["accuracy"])
    )
    assert str(compressed["model"].with_name("manifest.json")) in acc["reason"]
    # negative controls: the file alone, and beside a manifest that describes another file, have no accuracy
    alone = tmp_path / "alone" / "model.tflite"
    alone.parent.mkdir()
    alone.write_bytes(compressed["model"].read_bytes())
    other = tmp_path / "other" / "model.tflite"
    other.parent.mkdir()
    other.write_bytes((models / "int8.tflite").read_bytes())
    (other.parent / "manifest.json").write_text(json.dumps(m))
    for path in (alone, other):
        _, data = _check("--budget", str(budget), str(path), "--store", str(fresh), "--json")
        assert data is not None and data["checks"][0]["status"] == "unknown", path


def test_replicates_gate_on_the_upper_confidence_bound(compressed: dict[str, Any], tmp_path: Path) -> None:
    from scipy.stats import t

    store = tmp_path / "replicates.db"
    runs = [edgeprof.profile(compressed["model"], "local", store=store, **PROFILE) for _ in range(3)]
    p90s = [r.latency_ms["p90"] for r in runs]
    mean = sum(p90s) / 3
    sd = (sum((x - mean) ** 2 for x in p90s) / 2) ** 0.5
    bound = mean + t.ppf(0.95, 2) * sd / 3**0.5
    limit = (mean + bound) / 2  # within budget on average, but not with 95 % confidence
    budget = _budget(tmp_path, f"[limits]\np90_ms = {limit}\n")
    done, data = _check("--budget", str(budget), str(compressed["model"]), "--store", str(store), "--replicates",
                        "3", "--json")  # fmt: skip
    assert data is not None, done.stderr
    (p90,) = data["checks"]
    assert sorted(p90["profile_ids"]) == sorted(r.id for r in runs)  # the stored runs: nothing profiled again
    assert p90["value"] == pytest.approx(bound) and p90["mean"] == pytest.approx(mean)
    assert p90["status"] == "FAIL" and done.returncode == 1
    more = run_cli("check", "--budget", str(budget), str(compressed["model"]), "--store", str(store),
                   "--replicates", "4", "--runs", "50")  # fmt: skip
    assert "profiling model.tflite on local (1 more process(es) for 4, each a fresh agent)" in more.stderr
    assert "95% upper bound over 4 runs" in more.stdout
