"""How much does the agent's measuring cost, with a power sensor that spawns a process? Ratios measured in one run.

On MobileNetV2 (float32, built here with weights=None: nothing is downloaded; alpha 0.35 at 96x96 and alpha 1.0 at
224x224 by default), for each thread count, R rounds; each round runs, in a rotating order:

  bare        a bare loop in this process: a fresh LiteRT interpreter, warm-up, then perf_counter/invoke/perf_counter
  quiet       the agent's own profile code (edgeprof_agent.measure.profile) in this process, on a Raspberry Pi 5 as
              tests/helpers/fake_boards.py lays it out: the power sensor is read by spawning `vcgencmd
              pmic_read_adc` at its default 10 Hz and the thermal watcher spawns `vcgencmd get_throttled` every
              second, both in the agent's sibling process (sidecar.py), as users run it
  in-process  the same, with the sampler and the watcher as threads in the timed process (sampling: in-process,
              the design before the sibling; informative: what the sibling saves)
  litert      `litert-benchmark --num_runs N --num_threads T` (LiteRT's CompiledModel API, another process; it
              rounds to 0.01 ms and reports no p99; informative)
  process     the agent as a separate process over the protocol (`edgeprof.profile(..., target="local")`, energy
              off; process-to-process spread is 5-12 % here, so informative)

Per round we take each variant's median and p99; a ratio is the median over rounds of the per-round ratios, with
its range. Bars (issue 15): quiet/bare within 3 % for the median AND the p99.

Quick check that it runs: ./scripts/bench-agent --models 035-96 --threads 1 --rounds 1 --seconds 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"035-96": (0.35, 96), "100-224": (1.0, 224)}
BUILD = r"""
import os, sys
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
import tensorflow as tf, tf_keras as keras
alpha, size, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(size, size, 3))
open(out, "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""
BARS = {"median": 0.03, "p99": 0.03}


def build_model(cache: Path, name: str) -> Path:
    alpha, size = MODELS[name]
    path = cache / f"mobilenetv2-{name}-float.tflite"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"building MobileNetV2 alpha {alpha} {size}x{size} float32 into {path} ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD, str(alpha), str(size), str(path)], check=True)
    return path


def raspberry_pi_5(folder: Path) -> dict[str, str]:
    """The Pi 5's board files and a vcgencmd on PATH, as the tests use them; the environment that selects them."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers import fake_boards

    fake_boards.raspberry_pi_5(folder / "root")
    fake_boards.fake_vcgencmd(folder / "bin", folder / "throttled")
    return {"EDGEPROF_SYSFS_ROOT": str(folder / "root"), "PATH": f"{folder / 'bin'}:{os.environ.get('PATH', '')}"}


def agent_run(model: Path, threads: int, seconds: float, env: dict[str, str], sampling: str) -> tuple[dict, dict]:
    from edgeprof_agent import measure

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the sibling inherits this environment: it finds the same board
    try:
        result = measure.profile(
            {
                "model": str(model),
                "threads": threads,
                "runs": 100,
                "min_seconds": seconds,
                "warmup_seconds": 0.5,
                "idle_seconds": 0,
                "sampling": sampling,
            },
            lambda *a, **k: None,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    lat = result["latency_ms"]
    return {"median": lat["median"], "p99": lat["p99"]}, result


def bare_run(model: Path, threads: int, seconds: float) -> dict[str, float]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).uniform(-1, 1, detail["shape"]).astype(np.float32))
    invoke, clock = interpreter.invoke, time.perf_counter
    end = clock() + 0.5
    while clock() < end:
        invoke()
    samples = []
    start = clock()
    while len(samples) < 100 or clock() - start < seconds:
        t0 = clock()
        invoke()
        samples.append((clock() - t0) * 1000.0)
    p50, p99 = np.percentile(samples, [50, 99])
    return {"median": float(p50), "p99": float(p99)}


def litert_run(model: Path, threads: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        subprocess.run(
            [
                str(Path(sys.executable).with_name("litert-benchmark")),
                "--model",
                str(model),
                "--num_runs",
                str(runs),
                "--num_threads",
                str(threads),
                "--warmup_runs",
                "50",
                "--result_json",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        latency = json.loads(out.read_text())["latency"]
        return {"median": float(latency["median_ms"]), "p99": None}  # it reports p5 and p95, no p99


def process_run(model: Path, threads: int, seconds: float) -> dict[str, float]:
    import edgeprof

    result = edgeprof.profile(
        model, "local", threads=threads, runs=100, min_seconds=seconds, warmup_seconds=0.5, energy="off", store=None
    )
    return {"median": result.latency_ms["median"], "p99": result.latency_ms["p99"]}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} [{min(values):.4f}..{max(values):.4f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="035-96,100-224", help="MobileNetV2 alpha-size: 035-96,100-224 [both]")
    parser.add_argument("--threads", default="1,2", help="thread counts to run, e.g. 1,2 [1,2]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per variant and round [2]")
    parser.add_argument("--skip", default="", help="informative variants to leave out: litert,process,in-process")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/edgeprof/bench"), help="where models are kept")
    args = parser.parse_args()
    models = [build_model(Path(args.cache), name) for name in args.models.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]
    board = raspberry_pi_5(Path(tempfile.mkdtemp(prefix="edgeprof-bench-pi5-")))
    variants = [v for v in ("bare", "quiet", "in-process", "litert", "process") if v not in args.skip.split(",")]
    print(
        f"{os.cpu_count()} CPUs, {args.rounds} rounds x {args.seconds:g} s per variant; a Raspberry Pi 5 power sensor "
        "read by spawning vcgencmd at 10 Hz and the throttle watch (vcgencmd, 1 Hz); other load on the machine shows "
        "as spread in the ranges below",
        flush=True,
    )
    failed = False
    rows = []
    for model in models:
        for threads in threads_list:
            figures: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
            sampler_info = []
            for r in range(args.rounds):
                order = variants[r % len(variants) :] + variants[: r % len(variants)]  # rotate: no variant always first
                for variant in order:
                    if variant in ("quiet", "in-process"):
                        sampling = "sibling" if variant == "quiet" else "in-process"
                        found, result = agent_run(model, threads, args.seconds, board, sampling)
                        assert result["energy"]["available"], result["energy"]
                        assert result["conditions"]["sampler"]["where"] == sampling, result["conditions"]
                        if variant == "quiet":
                            sampler_info.append(result["conditions"]["sampler"])
                    elif variant == "bare":
                        found = bare_run(model, threads, args.seconds)
                    elif variant == "litert":
                        bare_ms = figures["bare"][-1]["median"] if figures.get("bare") else 1.0
                        found = litert_run(model, threads, max(100, int(args.seconds * 1000 / max(bare_ms, 0.01))))
                    else:
                        found = process_run(model, threads, args.seconds)
                    figures[variant].append(found)
            ratios = {}
            for variant in variants:
                if variant == "bare":
                    continue
                for stat in ("median", "p99"):
                    if any(v[stat] is None for v in figures[variant]):
                        continue
                    ratios[f"{variant}/bare {stat}"] = [
                        v[stat] / b[stat] for v, b in zip(figures[variant], figures["bare"], strict=True)
                    ]
            verdicts = {
                stat: abs(statistics.median(ratios[f"quiet/bare {stat}"]) - 1) <= bar for stat, bar in BARS.items()
            }
            failed |= not all(verdicts.values())
            rows.append((model.stem, threads, ratios))
            print(f"\n{model.stem}, {threads} thread(s): median | p99 ms per variant [min..max over rounds]")
            for name, found_list in figures.items():
                medians, p99s = [f["median"] for f in found_list], [f["p99"] for f in found_list]
                print(f"  {name:10s} {spread(medians)} | {spread(p99s) if None not in p99s else 'n/a'}")
            for name, values in ratios.items():
                bar = ""
                if name.startswith("quiet/"):
                    stat = name.split()[-1]
                    bar = f"   bar: within {BARS[stat]:.0%}  {'PASS' if verdicts[stat] else 'FAIL'}"
                print(f"  {name:22s} {spread(values)}{bar}")
            energy = [s["energy"] for s in sampler_info if s.get("energy")]
            if energy:
                print(
                    f"  sibling sampler: {energy[0]['sensor']} at {statistics.median(e['rate_hz'] for e in energy):.1f}"
                    f" Hz, {statistics.median(e['samples'] for e in energy):.0f} readings a round; thermal polls "
                    f"{statistics.median(s['thermal']['polls'] for s in sampler_info):.0f} a round; sibling CPU "
                    f"{statistics.median(s.get('cpu_s') or 0 for s in sampler_info):.3f} s a round"
                )
    print("\nsummary (median ratio over rounds)")
    names = list(rows[0][2]) if rows else []
    print(f"  {'model':28s} {'threads':>7s} " + " ".join(f"{n:>22s}" for n in names))
    for stem, threads, ratios in rows:
        print(f"  {stem:28s} {threads:7d} " + " ".join(f"{statistics.median(ratios[n]):22.4f}" for n in names))
    verdict = "all met" if not failed else "NOT all met (see FAIL above)"
    print(f"bars (quiet/bare median and p99 within 3 %): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
