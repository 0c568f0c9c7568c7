"""Fleet and overhead figures, measured in one run on the test bed (see scripts/bench-fleet).

1. Fleet: one small model (the digits CNN, ≈ 70 KB) profiled with the default measurement settings (≥ 50 runs,
   ≥ 0.5 s warm-up, ≥ 1 s measured) on 1 board, then on N boards at once through edgeprof.profile_fleet, the code
   behind `edgeprof profile --target 'board-*'`. Rounds alternate 1 and N; every board already holds the agent and
   the model (a first, cold round uploads them and is reported apart). Bar: N boards within 1.3x of 1 board.
   The boards are network namespaces on this host (loopback sshd processes without root), so they share its CPU
   cores: the N agents start (import numpy and LiteRT) on 2 cores at once, which real boards, each with its own
   CPU, would not. So the rounds run twice: first as they are (a pessimistic figure, printed for reference), then
   with each board held to its own share of the host (cores / N CPUs, a CFS quota on the board's processes), so
   that N boards behave like N small machines. The bar applies to the second: it is the fleet machinery's cost.
2. Overhead: one profile of a cached model on a loopback board (sshd on 127.0.0.1), wall time of
   edgeprof.profile() minus the time the agent spent warming up and measuring, broken down by phase from the
   progress events. Bar: under 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("edgeprof_testbed", ROOT / "scripts" / "testbed" / "testbed.py")
testbed = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["edgeprof_testbed"] = testbed
_spec.loader.exec_module(testbed)  # type: ignore[union-attr]

SMALL_MODEL = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf, tf_keras as keras
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.Flatten(), keras.layers.Dense(10)])
open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""


def system_cpu_seconds() -> float:
    """CPU time the whole machine spent busy since boot (user + system + ..., not idle or iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def fleet_rounds(edgeprof, model: Path, names: list[str], rounds: int) -> dict:
    """Rounds alternating 1 board and all boards: wall times, CPU used, and when each phase began."""
    walls: dict[int, list[float]] = {1: [], len(names): []}
    cpu: dict[int, list[tuple[float, float]]] = {1: [], len(names): []}
    phases: dict[int, list[dict[str, float]]] = {1: [], len(names): []}
    for _ in range(rounds):
        for chosen in ([names[0]], names):
            busy, mine, started = system_cpu_seconds(), time.process_time(), time.monotonic()
            seen: dict[str, dict[str, float]] = {}

            def progress(name: str, event: dict, seen: dict = seen, started: float = started) -> None:
                key = str(event.get("phase") or event.get("event"))
                seen.setdefault(name, {}).setdefault(key, time.monotonic() - started)

            fleet = edgeprof.profile_fleet(model, chosen, on_event=progress)
            phases[len(chosen)].extend(seen.values())
            walls[len(chosen)].append(time.monotonic() - started)
            cpu[len(chosen)].append((system_cpu_seconds() - busy, time.process_time() - mine))
            assert fleet.ok, [o.error for o in fleet.failures]
    return {"walls": walls, "cpu": cpu, "phases": phases}


def report_fleet(figures: dict, boards: int, condition: str, *, bar: bool = False) -> None:
    walls, cpu, phases = figures["walls"], figures["cpu"], figures["phases"]
    ratio = statistics.median(m / o for o, m in zip(walls[1], walls[boards], strict=True))
    cores = os.cpu_count() or 1
    print(f"\n1. fleet, {condition}: wall time of one profile (defaults: >= 50 runs, 0.5 s warm-up, 1 s measured)")
    for count in (1, boards):
        system = statistics.median(c[0] for c in cpu[count])
        host = statistics.median(c[1] for c in cpu[count])
        median_wall = statistics.median(walls[count])
        print(f"   {count} board{'s' if count > 1 else ' '}: {spread(walls[count])}; CPU used meanwhile: {system:.2f} "
              f"CPU-s by the whole machine ({100 * system / (cores * median_wall):.0f} % of its "
              f"{cores} cores), {host:.2f} CPU-s by edgeprof on the host")  # fmt: skip
    verdict = ("   bar: <= 1.30x   " + ("PASS" if ratio <= 1.3 else "FAIL")) if bar else "   (for reference)"
    print(f"   ratio {boards}/1: {ratio:.2f}x (median of per-round ratios){verdict}")
    print(f"   when each phase began (s after the start; median over rounds and boards), 1 | {boards} boards:")
    steps = [("connect", "connecting"), ("agent", "agent starting"), ("load", "hello answered, model loading"),
             ("measure", "measuring"), ("done", "result stored")]  # fmt: skip
    for key, label in steps:
        first = statistics.median(p[key] for p in phases[1] if key in p)
        last = statistics.median(p[key] for p in phases[boards] if key in p)
        print(f"     {label:32} {first:5.2f} | {last:5.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--boards", type=int, default=8)
    parser.add_argument("--model", type=Path, default=None, help="a .tflite [a small digits CNN built here]")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgeprof-bench-fleet-"))
    os.environ.update(
        EDGEPROF_CONFIG=str(work / "edgeprof.toml"),
        EDGEPROF_STORE=str(work / "results.db"),
        EDGEPROF_CACHE_DIR=str(work / "cache"),
    )
    model = args.model
    if model is None:
        model = work / "digits-cnn.tflite"
        subprocess.run([sys.executable, "-c", textwrap.dedent(SMALL_MODEL), str(model)], check=True,
                       stderr=subprocess.DEVNULL)  # fmt: skip
    import edgeprof

    fleet_bed = testbed.TestBed(work / "fleet")
    loop_bed = testbed.TestBed(work / "loopback", mode="loopback")
    try:
        boards = [fleet_bed.add_board(f"board-{i + 1}") for i in range(args.boards)]
        loopback = loop_bed.add_board("loopback")
        config = fleet_bed.write_config(work / "edgeprof.toml", boards=boards)
        extra = loop_bed.write_config(work / "loopback.toml", boards=[loopback])
        with open(config, "a") as handle:
            handle.write("\n" + extra.read_text().split("\n", 2)[2])
        names = [b.name for b in boards]
        print(f"test bed: {args.boards} {fleet_bed.mode} boards + 1 loopback board, model {model.name} "
              f"({model.stat().st_size / 1024:.1f} KiB), {os.cpu_count()} host CPUs")  # fmt: skip

        started = time.monotonic()
        cold = edgeprof.profile_fleet(model, [*names, "loopback"])
        assert cold.ok, [o.error for o in cold.failures]
        print(f"cold round (uploads agent + model to {len(names) + 1} boards): {time.monotonic() - started:.2f} s")

        shared = fleet_rounds(edgeprof, model, names, args.rounds)
        report_fleet(shared, args.boards, "boards sharing this host's CPU cores")
        share = (os.cpu_count() or 1) / args.boards
        try:
            for board in boards:
                fleet_bed.cpu_quota(board, share)
        except (OSError, RuntimeError) as exc:
            print(f"\n1. fleet with a CPU share per board: not measured ({exc}); the bar cannot be checked here")
        else:
            own = fleet_rounds(edgeprof, model, names, args.rounds)
            report_fleet(own, args.boards, f"each board its own {share:.2f} CPU (a CFS quota), as real boards have",
                         bar=True)  # fmt: skip

        overheads, parts = [], []
        for _ in range(args.rounds + 1):
            marks: dict[str, float] = {}
            t0 = time.monotonic()

            def mark(event: dict, t0: float = t0, marks: dict = marks) -> None:
                key = event.get("phase") or event.get("event")
                marks.setdefault(str(key), time.monotonic() - t0)

            result = edgeprof.profile(model, "loopback", on_event=mark)
            wall = time.monotonic() - t0
            m = result.measurement
            measured = m["warmup"]["seconds"] + m["measured_seconds"]
            overheads.append(wall - measured)
            parts.append(
                {
                    "lock, connect, check files": marks.get("agent", 0.0),
                    "agent start + hello": marks["load"] - marks["agent"],
                    "model load to warm-up": marks["warmup"] - marks["load"],
                    "after measuring (stats, bye, store)": wall - marks["measure"] - m["measured_seconds"],
                }
            )
        overheads, parts = overheads[1:], parts[1:]  # the first call imports the store's modules: not steady state
        median = statistics.median(overheads)
        print("\n2. host-side overhead of one profile of a cached model on a loopback board")
        print("   (wall time of edgeprof.profile() - warm-up - measured time)")
        print(f"   {spread(overheads)}   bar: < 1 s   {'PASS' if median < 1.0 else 'FAIL'}")
        for key in parts[0]:
            print(f"     {key:38} median {statistics.median(p[key] for p in parts):.3f} s")
    finally:
        fleet_bed.down()
        loop_bed.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
