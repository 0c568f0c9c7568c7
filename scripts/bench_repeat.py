"""What replication costs and what it buys: ``profile --repeat N`` measured in one run.

1. overhead   the host's cost of one more agent process on ``local``: the wall time of ``repeat=N`` against
              ``repeat=1`` on a tiny model with almost no measuring (warm-up 0 s, measuring 0 s), per extra process,
              minus what the agents spent measuring. Bar (issue 15): < 0.5 s.
2. spread     the spread of the run medians over K processes (default 10) with the default options, for MobileNetV2
              alpha 0.35 96x96 float32 and the demo's compressed digits CNN (``edgeprof demo``), and how the 95 %
              upper bound of the mean tightens with N (Student's t over N processes): the evidence for the
              default N (``edgeprof.profile.DEFAULT_REPEAT``).
3. band       the noise band ``compare`` derives from ``--repeat N`` groups (default 5), interleaved on one board:
              the same model twice must be "no significant change"; a model about 5 % slower, made by a real
              change (MobileNetV2 alpha 0.35 96x96 with a classifier for 1200 classes instead of 1000: its
              fully-connected layer grows from 1.28 to 1.54 M MACs; +6 % measured here with a bare invoke() loop),
              must be detected.

Every figure comes from real agents on ``local`` (LiteRT, XNNPACK, one thread). A shared, loaded machine widens the
spread and the band: run it on a quiet one for figures to publish. Models are built once into ``--cache``.

Quick check that it runs: ./scripts/bench-repeat --quick
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = r"""
import os, sys
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
import tensorflow as tf, tf_keras as keras
alpha, size, classes, out = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(size, size, 3), classes=classes)
open(out, "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""
OVERHEAD_BAR_S = 0.5


def mobilenet(cache: Path, classes: int = 1000) -> Path:
    path = cache / f"mobilenetv2-035-96-{classes}-float.tflite"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"building MobileNetV2 alpha 0.35 96x96 float32, {classes} classes, into {path} ...", flush=True)
        subprocess.run([sys.executable, "-c", BUILD, "0.35", "96", str(classes), str(path)], check=True)
    return path


def demo_model(cache: Path) -> Path:
    path = cache / "demo" / "compressed" / "model.tflite"
    if not path.exists():
        print(f"running edgeprof demo into {cache / 'demo'} for its compressed model ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "edgeprof", "demo", "--out", str(cache / "demo"), "--runs", "50", "--store",
             str(cache / "demo.db")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def overhead(model: Path, extra: int, store: Path) -> dict[str, float]:
    """Seconds from holding the board (its lock: other jobs on this machine may hold ``local`` first) to the end."""
    import edgeprof

    quick = {"runs": 5, "min_seconds": 0.0, "warmup_seconds": 0.0, "warmup_runs": 1, "idle_seconds": 0.0}
    edgeprof.profile(model, store=store, **quick)  # the board's work directory, agent and model in place

    def cpu() -> float:  # this process and its finished children (the local agents and their samplers)
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def timed(repeat: int) -> tuple[float, float, object]:
        connected: list[float] = []

        def on_event(event: dict) -> None:
            if event.get("source") == "host" and event.get("phase") == "connect" and not connected:
                connected.append(time.monotonic())

        before = cpu()
        result = edgeprof.profile(model, repeat=repeat, store=store, on_event=on_event, **quick)
        return time.monotonic() - connected[0], cpu() - before, result

    def measuring(result: object) -> float:
        m = result.measurement  # type: ignore[attr-defined]
        return (m["init_ms"] + m["first_inference_ms"]) / 1000 + m["warmup"]["seconds"] + m["measured_seconds"]

    single_s, single_cpu, one = timed(1)
    group_s, group_cpu, group = timed(1 + extra)
    per_extra = (group_s - single_s) / extra
    measured = (sum(measuring(r) for r in group.runs) - measuring(one)) / extra  # type: ignore[attr-defined]
    return {
        "single_s": single_s,
        "group_s": group_s,
        "per_extra_s": per_extra,
        "measuring_s": measured,
        "cpu_per_extra_s": (group_cpu - single_cpu) / extra,
    }


def t95(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.95, df))


def spread(name: str, model: Path, processes: int, store: Path) -> list[float]:
    import edgeprof

    print(f"\n{name}: {processes} processes with the default options (1 thread) ...", flush=True)
    group = edgeprof.profile(model, repeat=processes, threads=1, store=store)
    medians = group.run_medians_ms
    mean = statistics.mean(medians)
    sd = statistics.stdev(medians)
    print(f"  run medians (ms): {', '.join(f'{m:.4g}' for m in medians)}")
    print(
        f"  median of medians {statistics.median(medians):.4g} ms; max/min {max(medians) / min(medians) - 1:.1%}, "
        f"CV {sd / mean:.1%}"
    )
    print("  N   95% upper bound of the mean, above the mean (t(0.95, N-1) x CV / sqrt N)")
    for n in range(2, processes + 1):
        print(f"  {n:<3d} {t95(n - 1) * sd / mean / n**0.5:6.1%}")
    return medians


def band(label: str, a: Path, b: Path, repeat: int, store: Path, expect_change: bool) -> bool:
    import edgeprof
    from edgeprof.compare import NO_CHANGE, compare

    print(f"\n{label}: {a.name} vs {b.name}, {repeat} processes each, interleaved ...", flush=True)
    groups = edgeprof.profile_models([a, b], repeat=repeat, threads=1, store=store)
    result = compare([r.to_dict() for r in groups[0].runs], [r.to_dict() for r in groups[1].runs])
    print("  " + result.summary().replace("\n", "\n  "))
    ok = result.verdict != NO_CHANGE if expect_change else result.verdict == NO_CHANGE
    print(
        f"  noise band {result.min_change:.1%}; change {result.change:+.1%}: "
        + ("detected" if result.significant else NO_CHANGE)
        + f" -> {'PASS' if ok else 'FAIL'} (must be {'detected' if expect_change else NO_CHANGE})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=10, help="processes for the spread of medians [10]")
    parser.add_argument("--repeat", type=int, default=5, help="processes per group for the noise band [5]")
    parser.add_argument("--extra", type=int, default=5, help="extra processes for the overhead [5]")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edgeprof-bench-models")
    parser.add_argument("--quick", action="store_true", help="a check that it runs: 3 processes, groups of 3")
    args = parser.parse_args()
    if args.quick:
        args.processes, args.repeat, args.extra = 3, 3, 2
    sys.path.insert(0, str(ROOT / "tests"))
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "results.db"
        small = mobilenet(args.cache)
        larger = mobilenet(args.cache, 1200)
        demo = demo_model(args.cache)
        cost = overhead(demo, args.extra, store)
        host = cost["per_extra_s"] - cost["measuring_s"]
        cheap = host < OVERHEAD_BAR_S
        print(
            f"overhead on local: 1 process {cost['single_s']:.3f} s, {1 + args.extra} processes "
            f"{cost['group_s']:.3f} s: {cost['per_extra_s']:.3f} s per extra process, of which "
            f"{cost['measuring_s']:.3f} s measuring -> host overhead {host:.3f} s "
            f"(bar < {OVERHEAD_BAR_S} s: {'PASS' if cheap else 'FAIL'}); CPU time per extra process (host, agent and "
            f"its sampler; what a quiet machine's wall time would be close to): {cost['cpu_per_extra_s']:.3f} s"
        )
        spread("MobileNetV2 alpha 0.35 96x96 float32", small, args.processes, store)
        spread("the demo's compressed digits CNN (int8)", demo, args.processes, store)
        same = band("the same model twice", small, small, args.repeat, store, expect_change=False)
        slower = band("a model ~5 % slower (1200 classes instead of 1000)", small, larger, args.repeat, store, True)
    print(f"\nnoise band: same model {'PASS' if same else 'FAIL'}, 5 % slower {'PASS' if slower else 'FAIL'}")
    print("(a shared, loaded machine widens the spread and the band: publish figures from a quiet one)")
    return 0 if same and slower and cheap else 1


if __name__ == "__main__":
    sys.exit(main())
