"""Does a slow plug give honest energy per inference? Coverage of the 95 % interval and the run length it needs.

Real profiles (the agent, LiteRT, the host's meter code) on a local-transport target plugged into
scripts/testbed/fake_meter.py: a Shelly Gen2 plug whose power follows the agent's own CPU time (idle 3 W, +2 W per
busy CPU, Gaussian noise per reading, 0.1 W steps), so each run's true energy per inference above idle is known
(the plug's 200 Hz log of the board's CPU time over the agent's own window).

coverage   for a 1 Hz and a 10 Hz plug, at duty cycles 100 % and 10 %, N runs each (default 40) of a ~5 ms model
           (MobileNetV2 alpha 1.0 224x224 float32): the share of runs whose 95 % interval holds the truth (bar:
           >= 95 %), with the median interval width and run length, and per window (idle, loop, idle after) the rms
           of (mean reading - true mean power) / its stated standard error: about 1 when that error is honest.
length     at 1 Hz, ±5 % asked, for the ~5 ms model and a ~50 ms one (the same network at 672x672), at duty cycles
           100 % and 10 %: how long the loop ran, how long the whole profile took, and the interval reached.
length-sim the same question on a simulated plug and a board whose power is steady while the model runs (this
           VM's power, i.e. its CPU share, wanders with other load, which real boards' does not): the loop length
           at which the median interval is ±5 %.

Usage: ./scripts/bench-meters [--runs 40] [--parts coverage,length] [--rates 1,10] [--duties 1.0,0.1]
       [--noise 0.05] [--workers 2] [--json out.json]
Quick check that it runs: ./scripts/bench-meters --runs 2 --rates 10 --duties 1.0 --parts coverage
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.fake_meter import FakeMeter, meter_config  # noqa: E402

_BUILD = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf, tf_keras as keras
for name, size in (("mobilenet-224", 224), ("mobilenet-672", 672)):
    path = os.path.join(sys.argv[1], name + ".tflite")
    if os.path.exists(path):
        continue
    model = keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(size, size, 3))
    open(path, "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""


def build_models(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _BUILD, str(folder)], check=True, stdout=subprocess.DEVNULL)
    return {"5ms": folder / "mobilenet-224.tflite", "50ms": folder / "mobilenet-672.tflite"}


def one_run(model: Path, rate: float, duty: float, precision: float, max_seconds: float, noise: float, seed: int,
            work: Path) -> dict:  # fmt: skip
    """One real metered profile in its own process (its own store and cache), checked against the truth."""
    board = work / f"board-{seed}"
    with FakeMeter("shelly", rate=rate, idle=3.0, active=5.0, noise=noise, resolution=0.1, watch=str(board),
                   seed=seed) as meter:  # fmt: skip
        config = meter_config(work / f"edgeprof-{seed}.toml", meter, workdir=board, rate_hz=rate)
        meter.wait_readings()
        env = {**os.environ, "EDGEPROF_CONFIG": str(config), "EDGEPROF_CACHE_DIR": str(work / f"cache-{seed}"),
               "EDGEPROF_STORE": str(work / f"results-{seed}.db"), "PYTHONPATH": str(ROOT)}  # fmt: skip
        args = ["--runs", "10", "--min-seconds", "0.5", "--warmup-seconds", "0.5", "--threads", "1",
                "--max-seconds", str(max_seconds), "--energy-precision", str(precision * 100), "--json"]  # fmt: skip
        if duty < 1.0:
            args += ["--duty-cycle", str(duty)]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "edgeprof", "profile", str(model), "-t", "bench", *args],
                              capture_output=True, text=True, env=env, timeout=3 * max_seconds + 300)  # fmt: skip
        seconds = time.monotonic() - started
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1:], "seconds": seconds}
        record = json.loads(done.stdout)
        energy = record["energy"]
        out = {"seconds": seconds, "measured_seconds": record["measured_seconds"], "duty": record["duty"]["achieved"],
               "latency_ms": record["latency_ms"]["median"], "available": energy["available"]}  # fmt: skip
        if not energy["available"]:
            out["reason"] = energy.get("reason")
            return out
        truth = meter.energy_per_inference_mj(record)
        # the watched processes' CPU share in each quarter of the idle windows: what the truth takes as resting draw
        rates = {name: [round(r, 4) for r in found] for name, found in meter.resting_rates(record["windows"]).items()}
        out.update(
            mj=energy["mj_per_inference"],
            u95=energy["mj_per_inference_u95"],
            truth=truth,
            relative_u95=energy["relative_u95"],
            covered=abs(energy["mj_per_inference"] - truth) <= energy["mj_per_inference_u95"],
            error=(energy["mj_per_inference"] - truth) / truth if truth else None,
            idle_after_s=(energy["windows"].get("idle_after") or {}).get("seconds"),
            idle_s=energy["windows"]["idle"]["seconds"],
            stopped=energy.get("stopped"),
            precision_reached=energy["precision_reached"],
            truth_cpu_share=rates,
            windows=window_check(meter, energy),
        )
        return out


def window_check(meter: FakeMeter, energy: dict) -> dict:
    """Each window's mean reading and its standard error beside the trace's true mean power over the same span: a
    miss then shows which window was off (the baseline or the loop) and by how many standard errors."""
    found = {}
    for name, stats in energy["windows"].items():
        if stats.get("mean_w") is None:
            continue
        true = meter.truth(stats["start"], stats["end"])
        true_w = meter.idle + (meter.active - meter.idle) * true["cpu_s"] / true["seconds"]
        se = stats.get("se_w")
        found[name] = {"readings": stats["readings"], "mean_w": stats["mean_w"], "se_w": se, "true_w": true_w,
                       "z": (stats["mean_w"] - true_w) / se if se else None}  # fmt: skip
    return found


def coverage(args: argparse.Namespace, models: dict[str, Path], work: Path) -> list[dict]:
    rows = []
    for rate in args.rates:
        for duty in args.duties:
            jobs = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
                for i in range(args.runs):
                    seed = int(rate * 1000 + duty * 100) * 1000 + i
                    jobs.append(pool.submit(one_run, models["5ms"], rate, duty, args.precision, args.max_seconds,
                                            args.noise, seed, work))  # fmt: skip
                runs = [j.result() for j in jobs]
            judged = [r for r in runs if r.get("available")]
            covered = sum(1 for r in judged if r["covered"])
            row = {
                "rate_hz": rate,
                "duty": duty,
                "runs": len(runs),
                "with_figure": len(judged),
                "covered": covered,
                "coverage": covered / len(judged) if judged else None,
                "median_relative_u95": statistics.median(r["relative_u95"] for r in judged) if judged else None,
                "median_abs_error": statistics.median(abs(r["error"]) for r in judged) if judged else None,
                "median_profile_s": statistics.median(r["seconds"] for r in runs),
                "median_loop_s": statistics.median(r["measured_seconds"] for r in runs if "measured_seconds" in r),
                "achieved_duty": statistics.median(r["duty"] for r in runs if "duty" in r),
                "unavailable": [r.get("reason") or r.get("error") for r in runs if not r.get("available")],
                "window_z_rms": window_z_rms(judged),
                "detail": runs,
            }
            rows.append(row)
            print(
                f"coverage  {rate:>4g} Hz  duty {duty:>4.0%} (achieved {row['achieved_duty']:.0%}): "
                f"{covered}/{len(judged)} intervals hold the truth ({(row['coverage'] or 0):.0%}); "
                f"median ±{(row['median_relative_u95'] or 0):.1%} wide, median |error| "
                f"{(row['median_abs_error'] or 0):.1%}; loop {row['median_loop_s']:.1f} s, profile "
                f"{row['median_profile_s']:.0f} s"
                + (f"; {len(row['unavailable'])} without a figure" if row["unavailable"] else "")
                + "; window z rms "
                + ", ".join(f"{name} {z:.2f}" for name, z in row["window_z_rms"].items()),
                flush=True,
            )
    return rows


def window_z_rms(runs: list[dict]) -> dict[str, float]:
    """Per window, the rms of (mean reading - true mean) / stated standard error: about 1 or less when the stated
    uncertainty is honest (Student's t with few readings: a little above 1), well above 1 when it is too narrow."""
    found: dict[str, list[float]] = {}
    for run in runs:
        for name, check in (run.get("windows") or {}).items():
            if check.get("z") is not None:
                found.setdefault(name, []).append(check["z"])
    return {name: (sum(z * z for z in zs) / len(zs)) ** 0.5 for name, zs in found.items()}


def length(args: argparse.Namespace, models: dict[str, Path], work: Path) -> list[dict]:
    rows = []
    for name in ("5ms", "50ms"):
        for duty in args.duties:
            run = one_run(models[name], 1.0, duty, 0.05, args.length_max_seconds, args.noise, 900 + len(rows), work)
            run.update(model=name, duty_asked=duty)
            rows.append(run)
            reached = run.get("precision_reached")
            if run.get("available"):
                figure = f"±{run['relative_u95']:.1%} " + ("reached" if reached else "(±5 % not reached in time)")
            else:
                figure = f"no figure: {run.get('reason') or run.get('error')}"
            print(
                f"length    1 Hz  {name} model ({run.get('latency_ms', 0):.1f} ms)  duty {duty:>4.0%}: loop "
                f"{run.get('measured_seconds', 0):.0f} s, idle {run.get('idle_s', 0):.0f} s + "
                f"{run.get('idle_after_s') or 0:.0f} s after, whole profile {run['seconds']:.0f} s; {figure}",
                flush=True,
            )
    return rows


def length_simulated(args: argparse.Namespace) -> list[dict]:
    """The loop length ±5 % needs at 1 Hz on a board whose power is steady while the model runs (white noise of
    ``--noise`` W per reading, 0.1 W steps, +2 W per busy core): the estimator on a simulated plug
    (tests/test_meter_estimate.py's), median of 50 trials per length. At a fixed duty cycle the power the model adds
    does not depend on its latency; at a fixed frame rate (10 fps here) a 50 ms model keeps the board 10x busier
    than a 5 ms one."""
    import numpy as np

    from edgeprof.meters.estimate import estimate
    from tests.test_meter_estimate import simulate

    rows = []
    cases = [
        ("5ms", "100 %", 1.0),
        ("50ms", "100 %", 1.0),
        ("5ms", "10 fps (5 %)", 0.05),
        ("50ms", "10 fps (50 %)", 0.5),
    ]
    for name, duty_text, duty in cases:
        above = 2.0 * duty
        found = None
        for loop_s in (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 600, 900, 1200):
            rng = np.random.default_rng(17)
            widths = []
            for _ in range(50):
                log, windows = simulate(rng, rate=1.0, idle_w=3.0, above_w=above, noise=args.noise, step=0.1,
                                        idle_s=12.5, run_s=loop_s, after_s=max(12.5, loop_s))  # fmt: skip
                got = estimate(log, windows, rate_hz=1.0, resolution_w=0.1, guard_s=0.001, inferences=1000,
                               window_s=loop_s)  # fmt: skip
                widths.append(got.relative_u95 if got.available else float("inf"))
            if float(np.median(widths)) <= 0.05:
                found = loop_s
                break
        rows.append({"model": name, "duty": duty_text, "above_idle_w": above, "loop_s": found})
        said = f"{found} s of loop (+ as long idle after)" if found else "more than 1200 s"
        print(f"length    1 Hz  simulated steady board, {name} model at {duty_text}: +{above:.2f} W; ±5 % needs {said}",
              flush=True)  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--parts", default="coverage,length,length-sim")
    parser.add_argument("--rates", default="1,10")
    parser.add_argument("--duties", default="1.0,0.1")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--precision", type=float, default=0.20, help="asked precision in the coverage runs")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="cap of the loop in the coverage runs")
    parser.add_argument("--length-max-seconds", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=3, help="profiles at once (each on its own plug)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.duties = [float(d) for d in args.duties.split(",")]
    parts = args.parts.split(",")
    work = Path(tempfile.mkdtemp(prefix="edgeprof-bench-meters-"))
    models = (
        {}
        if parts == ["length-sim"]
        else build_models(Path(os.environ.get("EDGEPROF_BENCH_MODELS", Path.home() / ".cache" / "edgeprof-bench")))
    )
    print(f"models: {', '.join(f'{k} {v.name}' for k, v in models.items())}; work in {work}", flush=True)
    found: dict[str, list[dict]] = {}
    if "coverage" in parts:
        found["coverage"] = coverage(args, models, work)
    if "length" in parts:
        found["length"] = length(args, models, work)
    if "length-sim" in parts:
        found["length_simulated"] = length_simulated(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **found}, indent=2, default=str))
    bad = [r for r in found.get("coverage", []) if r["coverage"] is not None and r["coverage"] < 0.95]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
