"""How much does the agent's measuring cost? Ratios measured in one run (see scripts/bench-agent).

On MobileNetV2 alpha 0.35 at 96x96 (float32 and int8, built here with weights=None: nothing is downloaded), for
each thread count, R rounds; each round runs, in a rotating order:

  agent      the agent's own profile code (edgeprof_agent.measure.profile), in this process, energy off
  bare       a bare loop in this process: a fresh LiteRT interpreter, warm-up, then perf_counter/invoke/perf_counter
  sampler    the agent again with a power sensor: an INA226 laid out as the kernel's hwmon (tmpfs files), read by
             the energy sampler thread at its default 100 Hz
  litert     `litert-benchmark --num_runs N --num_threads T` (LiteRT's CompiledModel API, another process; it
             rounds to 0.01 ms)
  process    the agent as users run it: `edgeprof.profile(..., target="local")`, a separate agent process over the
             protocol (process-to-process spread is 5-12 % here, so this ratio is informative, not a bar)

Per round we take each variant's median latency; a ratio is the median over rounds of the per-round ratios, with
its range. Bars (from issue 4): agent within 3 % of bare; the energy sampler costs under 2 % (sampler / agent).
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

BUILD = r"""
import os, sys
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
import numpy as np, tensorflow as tf, tf_keras as keras
out = sys.argv[1]
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
open(os.path.join(out, "mobilenetv2-035-96-float.tflite"), "wb").write(float_model)
converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
rng = np.random.default_rng(0)
converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)] for _ in range(32))
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
open(os.path.join(out, "mobilenetv2-035-96-int8.tflite"), "wb").write(converter.convert())
"""


def build_models(cache: Path) -> list[Path]:
    paths = [cache / "mobilenetv2-035-96-float.tflite", cache / "mobilenetv2-035-96-int8.tflite"]
    if not all(p.exists() for p in paths):
        cache.mkdir(parents=True, exist_ok=True)
        print(f"building MobileNetV2 alpha 0.35 96x96 (float32, int8) into {cache} ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD, str(cache)], check=True, stderr=subprocess.DEVNULL)
    return paths


def fake_ina226(root: Path) -> None:
    dev = root / "sys/class/hwmon/hwmon0"
    dev.mkdir(parents=True)
    for name, value in (("name", "ina226"), ("in1_input", "5104"), ("curr1_input", "637"), ("power1_input", "3250000")):
        (dev / name).write_text(value + "\n")


def agent_median(model: Path, threads: int, seconds: float, sysfs_root: str | None) -> tuple[float, dict]:
    from edgeprof_agent import measure

    if sysfs_root:
        os.environ["EDGEPROF_SYSFS_ROOT"] = sysfs_root
    try:
        result = measure.profile(
            {
                "model": str(model),
                "threads": threads,
                "runs": 50,
                "min_seconds": seconds,
                "warmup_seconds": 0.5,
                "idle_seconds": 0,
                "energy": "auto" if sysfs_root else "off",
            },
            lambda *a, **k: None,
        )
    finally:
        os.environ.pop("EDGEPROF_SYSFS_ROOT", None)
    return result["latency_ms"]["median"], result


def bare_median(model: Path, threads: int, seconds: float) -> float:
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
    while len(samples) < 50 or clock() - start < seconds:
        t0 = clock()
        invoke()
        samples.append((clock() - t0) * 1000.0)
    return statistics.median(samples)


def litert_median(model: Path, threads: int, runs: int) -> float:
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
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def process_median(model: Path, threads: int, seconds: float) -> float:
    import edgeprof

    result = edgeprof.profile(
        model, "local", threads=threads, runs=50, min_seconds=seconds, warmup_seconds=0.5, energy="off", store=None
    )
    return result.latency_ms["median"]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} [{min(values):.4f}..{max(values):.4f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="thread counts to run, e.g. 1,2 [1,2]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per variant and round [2]")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/edgeprof/bench"), help="where models are kept")
    args = parser.parse_args()
    models = build_models(Path(args.cache))
    threads_list = [int(t) for t in args.threads.split(",")]
    sysfs = tempfile.mkdtemp(prefix="edgeprof-bench-sysfs-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    fake_ina226(Path(sysfs))
    print(
        f"{os.cpu_count()} CPUs, {args.rounds} rounds x {args.seconds:g} s per variant; other load on the machine "
        "shows as spread in the ranges below",
        flush=True,
    )
    failed = False
    rows = []
    for model in models:
        for threads in threads_list:
            medians: dict[str, list[float]] = {k: [] for k in ("agent", "bare", "sampler", "litert", "process")}
            rates = []
            variants = list(medians)
            for r in range(args.rounds):
                order = variants[r % len(variants) :] + variants[: r % len(variants)]  # rotate: no variant always first
                for variant in order:
                    if variant == "agent":
                        medians[variant].append(agent_median(model, threads, args.seconds, None)[0])
                    elif variant == "sampler":
                        value, result = agent_median(model, threads, args.seconds, sysfs)
                        assert result["energy"]["available"], result["energy"]
                        rates.append(result["energy"]["sample_rate_hz"])
                        medians[variant].append(value)
                    elif variant == "bare":
                        medians[variant].append(bare_median(model, threads, args.seconds))
                    elif variant == "litert":
                        runs = max(
                            50, int(args.seconds * 1000 / max(medians["bare"][-1] if medians["bare"] else 1, 0.01))
                        )
                        medians[variant].append(litert_median(model, threads, runs))
                    else:
                        medians[variant].append(process_median(model, threads, args.seconds))
            ratio = {
                "agent/bare": [a / b for a, b in zip(medians["agent"], medians["bare"], strict=True)],
                "sampler/agent": [s / a for s, a in zip(medians["sampler"], medians["agent"], strict=True)],
                "agent/litert-benchmark": [a / b for a, b in zip(medians["agent"], medians["litert"], strict=True)],
                "process/bare": [p / b for p, b in zip(medians["process"], medians["bare"], strict=True)],
            }
            agent_ok = abs(statistics.median(ratio["agent/bare"]) - 1) <= 0.03
            sampler_ok = statistics.median(ratio["sampler/agent"]) - 1 < 0.02
            failed |= not (agent_ok and sampler_ok)
            rows.append((model.stem, threads, medians, ratio, agent_ok, sampler_ok, statistics.median(rates)))
            print(f"\n{model.stem}, {threads} thread(s): median ms per variant [min..max over rounds]")
            for name, values in medians.items():
                print(f"  {name:8s} {spread(values)}")
            print(
                f"  agent/bare              {spread(ratio['agent/bare'])}   bar: within 3 %  "
                f"{'PASS' if agent_ok else 'FAIL'}"
            )
            print(
                f"  sampler/agent           {spread(ratio['sampler/agent'])}   bar: under 2 % cost  "
                f"{'PASS' if sampler_ok else 'FAIL'}  (sampler ran at {statistics.median(rates):.0f} Hz)"
            )
            print(f"  agent/litert-benchmark  {spread(ratio['agent/litert-benchmark'])}   (it rounds to 0.01 ms)")
            print(f"  process/bare            {spread(ratio['process/bare'])}   (separate processes: informative)")
    print("\nsummary (median ratio over rounds)")
    names = ("agent/bare", "sampler/agent", "agent/litert-benchmark", "process/bare")
    print(f"  {'model':30s} {'threads':>7s} " + " ".join(f"{n:>22s}" for n in names))
    for stem, threads, _m, ratio, *_rest in rows:
        print(f"  {stem:30s} {threads:7d} " + " ".join(f"{statistics.median(ratio[n]):22.4f}" for n in names))
    print("bars: " + ("all met" if not failed else "NOT all met (see FAIL above)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
