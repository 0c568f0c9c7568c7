"""The demo a newcomer runs first: its promises hold, its summary matches what was measured and stored, and the
obvious next step (compressing its model on its saved data split) is compared with its baseline on the same test set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeprof.data import load_data
from edgeprof.modelfile import open_tflite
from edgeprof.store import open_store
from edgeprof.store.lineage import describe_baseline
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("demo")
    store = folder / "results.db"
    done = run_cli("demo", "--out", str(folder / "demo"), "--runs", "200", "--repeat", "2", "--store", str(store))
    assert done.returncode == 0, done.stderr
    return {"out": folder / "demo", "store": store, "done": done}


@pytest.mark.slow
def test_demo_end_to_end(demo: dict[str, Any]) -> None:
    out, done = demo["out"], demo["done"]
    summary = json.loads((out / "summary.json").read_text())
    base, small = summary["baseline"], summary["compressed"]
    # The promise: at least 8x smaller gzipped, at most 1 percentage point less accurate.
    assert base["gzip_bytes"] / small["gzip_bytes"] >= 8
    assert base["accuracy"] - small["accuracy"] <= 0.01
    # The figures are those of the files on disk ...
    for entry in (base, small):
        info, _ = open_tflite(entry["model"])
        assert (info.size_bytes, info.gzip_bytes, info.sha256) == (
            entry["size_bytes"],
            entry["gzip_bytes"],
            entry["sha256"],
        )
    # ... and of the runs in the store: a group of fresh agent processes per model, its figures their medians.
    with open_store(demo["store"]) as db:
        for entry in (base, small):
            runs = db.group(entry["group_id"])["runs"]
            assert [r["id"] for r in runs] == entry["profile_ids"] and len(runs) == entry["processes"] == 2
            assert {r["model_sha256"] for r in runs} == {entry["sha256"]}
            assert float(np.median([r["median_ms"] for r in runs])) == pytest.approx(entry["p50_ms"])
            assert float(np.median([r["p90_ms"] for r in runs])) == pytest.approx(entry["p90_ms"])
            assert max(r["peak_rss_kb"] for r in runs) == entry["peak_rss_kb"]
        compressions = {row["id"]: row for row in db.compressions()}
        assert compressions[small["compression_id"]]["accuracy_tflite"] == pytest.approx(small["accuracy"])
    # The table the user sees carries the same figures.
    assert f"{small['gzip_ratio']:.1f}x" in done.stdout
    assert "p90 ms" in done.stdout
    # Faster or not is `results compare`'s verdict on the two stored groups (interleaved: paired by round), which the
    # demo names.
    groups = f"g:{base['group_id']} g:{small['group_id']}"
    compared = run_cli("results", "compare", *groups.split(), "--store", str(demo["store"]), "--json")
    assert compared.returncode == 0, compared.stderr
    verdict = json.loads(compared.stdout)["verdict"]
    assert summary["latency"]["verdict"] == verdict
    assert f"latency {verdict} (paired t over 2 rounds: edgeprof results compare {groups})" in done.stdout


@pytest.mark.slow
def test_the_readme_shows_the_demo_as_it_prints(demo: dict[str, Any]) -> None:
    """The README's copy of the demo's output has the lines the demo prints, the figures aside (they are measured)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = readme[readme.index("```\nmodel       accuracy") + 4 :]
    shown = shown[: shown.index("```")].strip().splitlines()
    printed = demo["done"].stdout.splitlines()
    start = next(i for i, line in enumerate(printed) if line.startswith("model "))
    printed = printed[start : start + len(shown)]

    def shape(line: str) -> str:  # figures become '#', so that only the words and the layout are compared
        return re.sub(r"\s+", " ", re.sub(r"[-+]?\d[\d,.]*", "#", line)).strip()

    assert [shape(line) for line in shown] == [shape(line) for line in printed]


@pytest.mark.slow
def test_the_demo_saves_its_split_and_the_next_step_pairs_with_its_baseline(demo: dict[str, Any]) -> None:
    out, store = demo["out"], demo["store"]
    # The split it trained and evaluated on is saved, and both manifests record its test set.
    saved = load_data(out / "digits.npz")
    with np.load(out / "digits.npz") as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
    manifests = {m: json.loads((out / m / "manifest.json").read_text()) for m in ("baseline", "compressed")}
    for manifest in manifests.values():
        assert manifest["data"]["test_sha256"] == saved.test_fingerprint()
        assert manifest["data"]["test"] == len(saved.y_test)
    assert f"--data {out / 'digits.npz'}" in demo["done"].stdout  # the demo names the next step
    base_accuracy = manifests["baseline"]["tflite"]["metrics"]["accuracy"]

    # The next step on the saved split: its source accuracy is the demo's, and the report pairs it with the demo's
    # float32 baseline. On builtin:digits (another split, which holds digits the demo trained on) it does not.
    for name, data, recipe in (
        ("same", str(out / "digits.npz"), ["--quantize", "dynamic"]),
        ("other", "builtin:digits", ["--quantize", "float16"]),
    ):
        done = run_cli("compress", str(out / "digits_cnn.keras"), "-o", str(out / name), "--data", data, *recipe,
                       "--store", str(store), "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
    same = json.loads((out / "same" / "manifest.json").read_text())
    other = json.loads((out / "other" / "manifest.json").read_text())
    assert same["data"]["test_sha256"] == manifests["baseline"]["data"]["test_sha256"]
    assert other["data"]["test_sha256"] != same["data"]["test_sha256"]
    assert same["source"]["metrics"]["accuracy"] == pytest.approx(
        manifests["compressed"]["source"]["metrics"]["accuracy"]
    )

    report = run_cli("report", "--store", str(store), "--out", str(out / "report.html"), "--json")
    assert report.returncode == 0, report.stderr
    merits = {m["model_sha256"]: m for m in json.loads(report.stdout)["figures_of_merit"]}
    paired = merits[same["tflite"]["sha256"]]
    assert paired["baseline_accuracy_from"] == "float32 TFLite" and "test set" not in paired["note"]
    assert paired["accuracy_diff_pp"] == pytest.approx(100 * (same["tflite"]["metrics"]["accuracy"] - base_accuracy))
    unpaired = merits[other["tflite"]["sha256"]]
    assert unpaired["baseline_accuracy_from"] == "Keras source"
    assert unpaired["accuracy_diff_pp"] == pytest.approx(100 * other["metrics_delta"]["accuracy"])
    assert "evaluated on another test set" in unpaired["note"] and "builtin:digits" in unpaired["note"]
    assert "another test set" in (out / "report.html").read_text()

    # `results show --compression` says the same.
    with open_store(store) as db:
        rows = {row["model_sha256"]: row for row in db.compressions()}
        assert "against the float32 baseline, compression run #" in describe_baseline(
            rows[same["tflite"]["sha256"]], list(rows.values())
        )
    other_id = str(rows[other["tflite"]["sha256"]]["id"])
    shown = run_cli("results", "show", other_id, "--compression", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert "against the Keras source" in shown.stdout and "another test set" in shown.stdout
