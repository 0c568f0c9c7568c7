"""``edgeprof report``: real compressions and real runs on local, one self-contained HTML page, rendered by Chromium.

The browser test needs Debian's chromium and chromium-driver (scripts/services/chromium.sh installs them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest

import edgeprof
from edgeprof.compare import compare
from edgeprof.report.plots import pareto_front
from edgeprof.store import open_store
from tests.conftest import run_cli

QUICK = {"runs": 300, "min_seconds": 0.3, "warmup_seconds": 0.1, "threads": 1}


@pytest.fixture(scope="module")
def demo_store(models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A float32 baseline and an int8 model compressed from one Keras source, both profiled on local."""
    out = tmp_path_factory.mktemp("report")
    store = out / "results.db"
    for key, flags in (("baseline", []), ("int8", ["--quantize", "int8"])):  # the float32 export is the baseline
        done = run_cli("compress", str(models / "cnn.keras"), "-o", str(out / key), "--data",
                       str(models / "digits.npz"), *flags, "--store", str(store))  # fmt: skip
        assert done.returncode == 0, done.stderr
    ids = {}
    for key in ("baseline", "int8"):
        ids[key] = edgeprof.profile(out / key / "model.tflite", "local", store=store, **QUICK).id
    report = out / "report.html"
    pngs = out / "png"
    done = run_cli("report", "--store", str(store), "--out", str(report), "--png", str(pngs), "--json")
    assert done.returncode == 0, done.stderr
    return {"store": store, "out": out, "report": report, "pngs": pngs, "json": json.loads(done.stdout), **ids}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figures_of_merit_against_the_float32_baseline(demo_store: dict[str, Any]) -> None:
    (merit,) = demo_store["json"]["figures_of_merit"]
    with open_store(demo_store["store"]) as db:
        base, small = db.profile(demo_store["baseline"]), db.profile(demo_store["int8"])
        manifests = {c["model_sha256"]: c["record"] for c in db.compressions()}
    base_manifest, small_manifest = manifests[base["model_sha256"]], manifests[small["model_sha256"]]
    assert merit["model_sha256"] == small["model_sha256"]
    assert merit["recipe"] == "quantize int8" and merit["target"] == "local"
    assert merit["baseline_model"] == "model.tflite" and merit["baseline_profile_id"] == demo_store["baseline"]
    # Sizes: the baseline's file over the compressed file (int8 weights: about 4x smaller).
    assert merit["compression_ratio"] == pytest.approx(
        base["record"]["model"]["size_bytes"] / small["record"]["model"]["size_bytes"]
    )
    assert 3 < merit["compression_ratio"] < 4.2
    assert merit["gzip_compression_ratio"] == pytest.approx(
        base_manifest["tflite"]["gzip_bytes"] / small_manifest["tflite"]["gzip_bytes"]
    )
    # Accuracy difference against the float32 TFLite baseline, both evaluated by the agent on the same test set.
    acc_base = base_manifest["tflite"]["metrics"]["accuracy"]
    acc_small = small_manifest["tflite"]["metrics"]["accuracy"]
    assert merit["baseline_accuracy_from"] == "float32 TFLite"
    assert merit["accuracy_diff_pp"] == pytest.approx(100 * (acc_small - acc_base))
    # Efficiency and throughput from the stored runs.
    assert merit["efficiency_improvement"] == pytest.approx(
        (base["median_ms"] - small["median_ms"]) / base["median_ms"]
    )
    assert merit["throughput_ips"] == pytest.approx(1000 / small["mean_ms"])
    # ... with the verdict of `edgeprof results compare` on those two runs: is the change beyond noise?
    assert merit["latency_verdict"] == compare(base["record"], small["record"], resamples=1000).verdict
    assert merit["space_efficiency"] == pytest.approx(small_manifest["tflite"]["gzip_bytes"] / 1024 / (100 * acc_small))


def test_the_html_is_one_self_contained_file(demo_store: dict[str, Any]) -> None:
    html = demo_store["report"].read_text()
    # Nothing to fetch: every src is inline data, no stylesheet, script or font from anywhere.
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in html and "@import" not in html and "url(" not in html
    names = {p["name"] for p in demo_store["json"]["plots"]}
    assert {"latency", "accuracy_vs_p90", "accuracy_vs_size"} <= names
    assert any(n.startswith("size_per_layer_") for n in names)
    # The inlined images are the plots --png wrote, byte for byte.
    inlined = sorted(base64.b64decode(s.split(",", 1)[1]) for s in sources)
    written = sorted(p.read_bytes() for p in demo_store["pngs"].glob("*.png"))
    assert inlined == written and len(written) == len(names)
    for png in written:
        width, height = _png_size(png)
        assert width > 300 and height > 200
    # Both runs are in the runs table, and energy says why it is missing instead of showing a number.
    for key in ("baseline", "int8"):
        assert f"<td>#{demo_store[key]}</td>" in html
    assert "No run measured energy per inference" in html and "no power sensor" in html


def test_report_text_and_filters(demo_store: dict[str, Any], tmp_path: Path) -> None:
    done = run_cli("report", "--store", str(demo_store["store"]), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert "quantize int8" in done.stdout and "x" in done.stdout and f"wrote {tmp_path / 'r.html'}" in done.stdout
    with open_store(demo_store["store"]) as db:
        sha = db.profile(demo_store["int8"])["model_sha256"]
    only = run_cli(
        "report",
        "--store",
        str(demo_store["store"]),
        "--out",
        str(tmp_path / "one.html"),
        "--model",
        sha[:12],
        "--json",
    )
    assert [r["id"] for r in json.loads(only.stdout)["runs"]] == [demo_store["int8"]]


def test_an_empty_store_gives_a_page_that_says_so(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    done = run_cli("report", "--store", str(tmp_path / "empty.db"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "0 model/target pairs" in html and "No compressed model in the store" in html


def test_pareto_front_by_hand() -> None:
    # (cost, accuracy): (2, .85) is beaten by (1, .90), cheaper and more accurate; (4, .94) by (3, .95).
    points = [(1.0, 0.90), (2.0, 0.85), (3.0, 0.95), (4.0, 0.94), (5.0, 0.99)]
    assert pareto_front(points) == [0, 2, 4]
    assert pareto_front([(1.0, 0.9), (1.0, 0.8)]) == [0]


def test_the_report_renders_its_plots_in_chromium(demo_store: dict[str, Any], tmp_path: Path) -> None:
    chromium = os.environ.get("EDGEPROF_TEST_CHROMIUM") or "/usr/bin/chromium"
    driver_path = os.environ.get("EDGEPROF_TEST_CHROMEDRIVER") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver_path).exists()):
        pytest.skip(
            os.environ.get("EDGEPROF_TEST_CHROMIUM_SKIP")
            or "chromium and chromium-driver are not installed (scripts/services/chromium.sh installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install .[dev])")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1300,2400",
    ):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        browser.get(demo_store["report"].as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth,"
            " height: i.naturalHeight, shown: i.getBoundingClientRect().width, alt: i.alt}))"
        )
        tables = browser.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => [t.id, t.rows.length])"
        )
        browser.save_screenshot(str(tmp_path / "report.png"))
    finally:
        browser.quit()
    expected = {p["title"]: p for p in demo_store["json"]["plots"]}
    assert sorted(i["alt"] for i in images) == sorted(expected)
    pngs = {p.stem: _png_size(p.read_bytes()) for p in demo_store["pngs"].glob("*.png")}
    for image in images:  # decoded by the browser at their true size, and laid out on the page
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert (image["width"], image["height"]) == pngs[expected[image["alt"]]["name"]]
        assert image["shown"] > 200
    assert dict(tables) == {"runs": 3, "merit": 2, "models": 3}
