"""``edgeprof report``: real compressions and real runs on local, one self-contained HTML page, rendered by Chromium.

The browser test needs Debian's chromium and chromium-driver (scripts/services/chromium.sh installs them).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import sqlite3
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeprof
from edgeprof.budget import Budget
from edgeprof.compare import NO_CHANGE, compare, samples_of
from edgeprof.report import build_report
from edgeprof.report.collect import ModelFacts, ReportData
from edgeprof.report.plots import TOP_LAYERS, pareto_front, size_per_layer, wilson_interval
from edgeprof.store import open_store
from tests.conftest import run_cli

# Every sample kept (a tiny model makes ~100k in 0.3 s): the derived stores below recompute figures from them.
QUICK = {"runs": 300, "min_seconds": 0.3, "warmup_seconds": 0.1, "threads": 1, "max_samples": 1_000_000}


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
    data = models / "digits.npz"
    return {
        "store": store,
        "out": out,
        "report": report,
        "pngs": pngs,
        "json": json.loads(done.stdout),
        "data": data,
        **ids,
    }


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
    # Throughput from the same statistic as the efficiency: the median (never the mean beside a median).
    assert merit["throughput_ips"] == pytest.approx(1000 / small["median_ms"])
    assert merit["baseline_throughput_ips"] == pytest.approx(1000 / base["median_ms"])
    # ... with the verdict of `edgeprof results compare` on those two runs: is the change beyond noise?
    verdict = compare(base["record"], small["record"], resamples=1000)
    assert merit["latency_verdict"] == verdict.verdict and merit["latency_significant"] == verdict.significant
    assert merit["efficiency_interval"] == pytest.approx([-verdict.ci_high, -verdict.ci_low])
    # Both accuracies were measured on the same test set, and the merit says which.
    assert merit["test_samples"] == len(np.load(demo_store["data"])["y_test"])
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


VIEWPORTS = {"laptop": (1366, 768, False), "full-hd": (1920, 1080, False), "phone": (390, 844, True)}


def test_the_report_renders_its_plots_in_chromium(demo_store: dict[str, Any], tmp_path: Path) -> None:
    """At the sizes people read it: a 1366x768 laptop, a 1920x1080 screen and a 390-px-wide phone.

    Screenshots go to tmp_path, or to $EDGEPROF_TEST_SCREENSHOTS to look at them."""
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
    shots = Path(os.environ.get("EDGEPROF_TEST_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    expected = {p["title"]: p for p in demo_store["json"]["plots"]}
    pngs = {p.stem: _png_size(p.read_bytes()) for p in demo_store["pngs"].glob("*.png")}
    for name, (width, height, phone) in VIEWPORTS.items():
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
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / ('profile-' + name)}",
        ):
            options.add_argument(arg)
        if phone:
            metrics = {"width": width, "height": height, "pixelRatio": 1.0}
            options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
        else:
            options.add_argument(f"--window-size={width},{height}")
        browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            browser.get(demo_store["report"].as_uri())
            viewport = browser.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
            images = browser.execute_script(
                "return Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth,"
                " height: i.naturalHeight, shown: i.getBoundingClientRect().width, alt: i.alt,"
                " box: i.parentElement.getBoundingClientRect().width}))"
            )
            tables = browser.execute_script(
                "return Array.from(document.querySelectorAll('table')).map(t => [t.id, t.rows.length,"
                " t.parentElement.getBoundingClientRect().width])"
            )
            browser.save_screenshot(str(shots / f"report-{name}.png"))
        finally:
            browser.quit()
        # The page itself never scrolls sideways: wide tables and plots scroll inside their own box.
        assert viewport[1] <= viewport[0], (name, viewport)
        assert sorted(i["alt"] for i in images) == sorted(expected)
        for image in images:  # decoded by the browser at their true size, and laid out on the page
            assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
            assert (image["width"], image["height"]) == pngs[expected[image["alt"]]["name"]]
            assert image["box"] <= viewport[0]
            # Legible: at most shrunk to 70 % on a laptop; on a phone kept at 720 px and scrolled, not shrunk to
            # a third where its 8-point labels could not be read.
            assert image["shown"] >= min(image["width"], 0.7 * image["width"] if not phone else 720) - 1, (name, image)
        assert {t[0]: t[1] for t in tables} == {"runs": 3, "merit": 2, "models": 3}
        assert all(t[2] <= viewport[0] for t in tables), (name, tables)


# -- an honest report: colours and words from the verdict and the budget, one statistic a row, no zoom onto noise --


def _latency(samples: np.ndarray, like: dict[str, Any]) -> dict[str, Any]:
    p50, p90, p95, p99 = np.percentile(samples, [50, 90, 95, 99])
    stats = {
        "count": int(samples.size),
        "min": float(samples.min()),
        "mean": float(samples.mean()),
        "median": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(samples.max()),
        "std": float(samples.std(ddof=1)),
    }
    return {**like, **stats}


def _derived_store(
    demo_store: dict[str, Any],
    folder: Path,
    transform: Any,
    *,
    accuracy_drop_pp: float | None = None,
) -> Path:
    """A copy of the real store in which the int8 model's newest run is the baseline's real run with its samples
    transformed (e.g. 6 % faster, within run-to-run noise), and optionally its accuracy ``accuracy_drop_pp`` below
    the baseline's: the figures are known, so the report's words and colours can be checked against them."""
    path = folder / "derived.db"
    source, target = sqlite3.connect(demo_store["store"]), sqlite3.connect(path)
    source.backup(target)
    source.close()
    target.close()
    with open_store(path) as db:
        base = db.profile(demo_store["baseline"])["record"]
        small = db.profile(demo_store["int8"])["record"]
        assert not base.get("samples_subsampled"), "the baseline must keep every sample"
        samples = transform(samples_of(base))
        record = {
            **base,
            "model": small["model"],
            "samples_ms": samples.tolist(),
            "samples_subsampled": False,
            "histogram": None,
            "latency_ms": _latency(samples, base["latency_ms"]),
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        db.add_profile(record)
        if accuracy_drop_pp is not None:
            manifests = {c["model_sha256"]: c["record"] for c in db.compressions()}
            base_accuracy = manifests[base["model"]["sha256"]]["tflite"]["metrics"]["accuracy"]
            manifest = json.loads(json.dumps(manifests[small["model"]["sha256"]]))
            manifest["tflite"]["metrics"]["accuracy"] = base_accuracy - accuracy_drop_pp / 100
            db.add_compression(manifest, small["model"])
    return path


def _cell(html: str, figure: str) -> tuple[str, str]:
    """(class, text) of the figures-of-merit cell holding ``figure``."""
    match = re.search(rf"<td class='([^']*)' data-figure={figure}>(.*?)</td>", html)
    if match is None:
        match = re.search(rf"<td() data-figure={figure}>(.*?)</td>", html)
    assert match is not None, figure
    return match.group(1), re.sub(r"<[^>]+>", " ", match.group(2))


@pytest.mark.parametrize(
    ("factor", "verdict", "colour"),
    [(0.94, NO_CHANGE, ""), (0.5, "2.00x faster", "good"), (1.5, "1.50x slower", "bad")],
    ids=["6% faster is noise", "2x faster", "1.5x slower"],
)
def test_latency_colour_and_words_come_from_the_verdict(
    demo_store: dict[str, Any], tmp_path: Path, factor: float, verdict: str, colour: str
) -> None:
    path = _derived_store(demo_store, tmp_path, lambda x: x * factor)
    with open_store(path) as db:
        report = build_report(db)
    (merit,) = report.data.merits
    assert merit.latency_verdict == verdict
    assert merit.efficiency_improvement == pytest.approx(1 - factor, abs=1e-3)
    cls, text = _cell(report.html(), "efficiency_improvement")
    assert cls == colour, text  # +6 % is shown, but neither green nor called an improvement
    assert f"{100 * (1 - factor):+.1f} %" in text and verdict in text


def test_accuracy_colour_comes_only_from_the_budget(demo_store: dict[str, Any], tmp_path: Path) -> None:
    path = _derived_store(demo_store, tmp_path, lambda x: x, accuracy_drop_pp=0.5)
    with open_store(path) as db:
        plain = build_report(db)
        strict = build_report(db, budget=Budget.from_dict({"limits": {"accuracy_drop_pp": 0.2}}))
        loose = build_report(db, budget=Budget.from_dict({"limits": {"accuracy_drop_pp": 1.0}}))
    assert plain.data.merits[0].accuracy_diff_pp == pytest.approx(-0.5)
    cls, text = _cell(plain.html(), "accuracy_diff_pp")
    assert cls == "" and "-0.50 pp" in text  # no fixed threshold decides that half a point is fine
    assert _cell(strict.html(), "accuracy_diff_pp")[0] == "bad"
    assert _cell(loose.html(), "accuracy_diff_pp")[0] == "good"
    html = strict.html()
    assert "<h2>Budget</h2>" in html and "accuracy drop" in html and "FAIL" in html
    assert strict.to_dict()["budget"]["passed"] is False and loose.to_dict()["budget"]["passed"] is True


def test_every_latency_figure_of_a_row_comes_from_the_median(demo_store: dict[str, Any], tmp_path: Path) -> None:
    def faster_with_stalls(x: np.ndarray) -> np.ndarray:
        y = x * 0.8  # the median is 20 % lower ...
        y[np.argsort(y)[-len(y) // 25 :]] *= 80  # ... and the slowest 4 % stall, so the mean is above the baseline's
        return y  # (stalling the slowest leaves the median where it was: every x[::25] could move it by a rank)

    path = _derived_store(demo_store, tmp_path, faster_with_stalls)
    with open_store(path) as db:
        report = build_report(db)
        base = db.profile(demo_store["baseline"])
    (merit,) = report.data.merits
    assert merit.efficiency_improvement == pytest.approx(0.2, abs=0.01) and merit.latency_verdict == "1.25x faster"
    assert merit.throughput_ips == pytest.approx(1000 / merit.median_ms)
    assert merit.baseline_throughput_ips == pytest.approx(1000 / base["median_ms"])
    assert merit.throughput_ips > merit.baseline_throughput_ips  # faster means more inferences per second
    _, text = _cell(report.html(), "throughput_ips")
    shown, baseline = (int(v.replace(",", "")) for v in re.findall(r"[\d,]+", text)[:2])
    assert shown > baseline


def test_plots_show_uncertainty_and_do_not_zoom_onto_noise(demo_store: dict[str, Any], tmp_path: Path) -> None:
    from matplotlib.container import ErrorbarContainer

    path = _derived_store(demo_store, tmp_path, lambda x: x * 0.99)  # 1 % apart: well inside the noise
    with open_store(path) as db:
        report = build_report(db)
    plots = {p.name: p for p in report.plots}
    (ax,) = plots["accuracy_vs_p90"].figure.axes
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bars.has_xerr and bars.has_yerr
    p90s = [r["p90_ms"] for r in report.data.runs]
    low, high = ax.get_xlim()
    assert low == 0 and high >= max(p90s), (low, high)  # the two points sit at 99 % of each other, not at the edges
    accuracies = [f.accuracy for f in report.data.models.values() if f.accuracy is not None]
    samples = next(f.test_samples for f in report.data.models.values() if f.test_samples)
    widest = max(hi - lo for lo, hi in (wilson_interval(a, samples) for a in accuracies))
    bottom, top = ax.get_ylim()
    assert top - bottom >= 2 * 100 * widest
    for lo, hi in (wilson_interval(a, samples) for a in accuracies):
        assert bottom <= 100 * lo and 100 * hi <= top
    (latency_ax,) = plots["latency"].figure.axes
    assert latency_ax.get_xlim()[0] == 0


def _facts(sha: str, name: str, layers: list[dict[str, Any]], *, baseline: bool) -> ModelFacts:
    total = sum(layer["weight_bytes"] for layer in layers)
    return ModelFacts(
        sha256=sha,
        name=name,
        size_bytes=total,
        gzip_bytes=total // 2,
        accuracy=0.9,
        test_samples=1000,
        recipe=None if baseline else "quantize int8",
        source_sha256="source",
        is_baseline=baseline,
        inspection={"layers": layers},
    )


def test_the_size_per_layer_plot_reads_at_100_layers() -> None:
    rng = np.random.default_rng(0)
    floats = [int(b) for b in rng.integers(200, 200_000, 100)]
    layers = {
        "f32": [
            {"op": "CONV_2D", "output_shape": [1, 8, 8, 16], "weight_bytes": b, "weight_gzip_bytes": b * 9 // 10}
            for b in floats
        ],
        "int8": [
            {"op": "CONV_2D", "output_shape": [1, 8, 8, 16], "weight_bytes": b // 4, "weight_gzip_bytes": b // 5}
            for b in floats
        ],
    }
    models = {
        "f32": _facts("f32", "net.tflite", layers["f32"], baseline=True),
        "int8": _facts("int8", "net.tflite", layers["int8"], baseline=False),
    }
    (plot,) = size_per_layer(ReportData("test", [], models, []))
    (ax,) = plot.figure.axes
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == TOP_LAYERS + 1 and ticks[-1] == f"other {100 - TOP_LAYERS} layers (summed)"
    largest = sorted(range(100), key=lambda i: floats[i], reverse=True)[:TOP_LAYERS]
    assert [int(t.split(":")[0]) for t in ticks[:-1]] == sorted(largest)  # the largest layers, in execution order
    # No byte goes missing: each model's bars add up to its weights.
    widths: dict[str, float] = {}
    for container in ax.containers:
        widths[container.get_label()] = sum(p.get_width() for p in container.patches)
    assert widths["net.tflite (float32 baseline): bytes"] == pytest.approx(sum(floats) / 1024)
    assert widths["net.tflite (quantize int8): bytes"] == pytest.approx(sum(b // 4 for b in floats) / 1024)
    # Rows tall enough for their 8-point labels.
    height_in = plot.figure.get_size_inches()[1]
    assert height_in / len(ticks) >= 0.2 and min(t.get_fontsize() for t in ax.get_yticklabels()) >= 7


def test_the_size_per_layer_plot_of_a_real_mobilenet(real_models: Path) -> None:
    from edgeprof.store.sql import _inspection_of

    model = real_models / "visual_wake_words" / "visual_wake_words.tflite"
    from edgeprof.modelfile import open_tflite

    info, _ = open_tflite(model)
    inspection = _inspection_of(info.to_dict())
    assert inspection is not None
    weighted = [layer for layer in inspection["layers"] if layer.get("weight_bytes")]
    assert len(weighted) > TOP_LAYERS  # MobileNetV1: 14 convolutions, 13 depthwise, the classifier
    facts = ModelFacts(
        info.sha256, "vww.tflite", info.size_bytes, info.gzip_bytes, None, None, None, None, True, inspection
    )
    (plot,) = size_per_layer(ReportData("test", [], {info.sha256: facts}, []))
    (ax,) = plot.figure.axes
    assert len(ax.get_yticklabels()) == TOP_LAYERS + 1
    total = sum(sum(p.get_width() for p in c.patches) for c in ax.containers if c.get_label().endswith("bytes"))
    assert total == pytest.approx(sum(layer["weight_bytes"] for layer in weighted) / 1024)
