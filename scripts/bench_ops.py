"""Per-operator latency on MobileNetV2 (``profile --ops``): does it add up, where does the time go, and what does it
cost? Ratios measured within one run.

On the standard 1000-class MobileNetV2 α0.35 at 96x96 and α1.0 at 224x224 (built here with weights=None by
tests/helpers/mobilenet.py: nothing is downloaded), float32 and full int8, 1 thread, on ``local`` through the agent:

  1. per model: the whole model's median (the profile's, and in the operator rounds), the sum of its operators plus one
     invoke against it (warm, and cold: right after the other sub-models ran), the ranking's stability between odd
     and even rounds, and the top-5 operators with their share, MACs, GMAC/s and fraction of the board's peak;
  2. int8 against float32 at each size, by operator type and for the operators that changed most (lined up by layer,
     ``edgeprof.ops.compare_ops``): what explains why int8 gains much less at α0.35 than at α1.0;
  3. the cost of ``--ops`` against a plain profile on the 65-operator α0.35 float32 model (wall time of
     ``edgeprof.profile``, interleaved repeats), with the time its parts took;
  4. the peak figures the microbenchmark measured and each model's achieved fraction of them.

The machine these run on is usually shared: ratios within one run are meaningful, absolute times are not, and the
final figures need a quiet machine. Quick check that it runs: ./scripts/bench-ops --rounds 10 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.mobilenet import BENCH, bench_files  # noqa: E402


def build(cache: Path) -> dict[str, Path]:
    files = bench_files(cache)
    if not all(p.exists() for p in files.values()):
        print(f"building MobileNetV2 α0.35 96x96 and α1.0 224x224, float32 and int8, into {cache} ...", flush=True)
        subprocess.run([sys.executable, "-m", "tests.helpers.mobilenet", "--bench", str(cache)], check=True, cwd=ROOT)
    return files


def profile(path: Path, args: argparse.Namespace, ops: bool) -> Any:
    import edgeprof

    return edgeprof.profile(
        path,
        "local",
        store=None,
        threads=1,
        energy="off",
        idle_seconds=0.0,
        min_seconds=args.seconds,
        ops=ops,
        ops_rounds=args.rounds,
    )


def layer(row: dict[str, Any]) -> str:
    from edgeprof.ops import layer_name

    return layer_name(row.get("name") or "")


def describe(name: str, result: Any) -> None:
    from edgeprof import _table

    ops = result.measurement["ops"]
    whole, costs, peak = ops["whole_ms"], ops["costs"], ops["peak"]
    rank = ops["rank_stability"]
    print(f"\n== {name}: {ops['operators']} operators, {ops['rounds']} rounds, inputs: {ops['inputs']}")
    print(
        f"   whole model: profile median {_table.ms(result.latency_ms['median'])} ms; in the operator rounds "
        f"{_table.ms(whole['median'])} ms (cold {_table.ms(whole['cold'])} ms)"
    )
    print(
        f"   sum of operators + one invoke: {_table.ms(ops['sum_ms'])} ms = {ops['sum_ratio']:.3f}x the whole model "
        f"in the same rounds (cold: {ops['cold_sum_ratio']:.3f}x); delegate node cost {ops['node_ms'] * 1000:.2f} us"
    )
    print(f"   ranking: Spearman {rank['spearman']} between odd and even rounds; top 5 {rank['top5_first_half']} "
          f"and {rank['top5_second_half']}")  # fmt: skip
    fraction = costs.get("peak_fraction")
    main = costs.get("main_type")
    print(
        f"   {costs['macs'] / 1e6:.1f} M MACs at {costs['gmacs_per_s']:.1f} GMAC/s = "
        f"{_table.pct(fraction)} of the {main} peak ({peak['gmacs_per_s'].get(main, 0):.1f} GMAC/s)"
    )
    timed = sorted((r for r in ops["ops"] if r.get("status") == "timed"), key=lambda r: -r["ms"]["median"])
    rows = [
        [r["index"], r["op"], layer(r), _table.ms(r["ms"]["median"]), _table.pct(r.get("share")),
         f"{(r.get('macs') or 0) / 1e6:.2f} M", f"{r['gmacs_per_s']:.1f}" if r.get("gmacs_per_s") else "-",
         _table.pct(r.get("peak_fraction"), 0)]
        for r in timed[:5]
    ]  # fmt: skip
    headers = ["op", "operator", "layer", "ms", "share", "MACs", "GMAC/s", "of peak"]
    table = _table.table(headers, rows, align="rlllrrrr")
    print("   " + table.replace("\n", "\n   "))


def by_type(result: Any) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for row in result.measurement["ops"]["ops"]:
        if row.get("status") in ("timed", "below_resolution"):
            sums[row["op"]] += row["ms"]["median"]
    return sums


def int8_against_float(size: str, f32: Any, int8: Any) -> None:
    from edgeprof import _table
    from edgeprof.ops import compare_ops

    a, b = by_type(f32), by_type(int8)
    total_a, total_b = sum(a.values()), sum(b.values())
    print(f"\n== int8 against float32, {size}: whole model {_table.ms(f32.latency_ms['median'])} -> "
          f"{_table.ms(int8.latency_ms['median'])} ms ({f32.latency_ms['median'] / int8.latency_ms['median']:.2f}x); "
          f"operators {_table.ms(total_a)} -> {_table.ms(total_b)} ms")  # fmt: skip
    rows = []
    for op in sorted(set(a) | set(b), key=lambda k: -max(a.get(k, 0), b.get(k, 0))):
        fa, fb = a.get(op, 0.0), b.get(op, 0.0)
        rows.append([op, _table.ms(fa), _table.ms(fb), f"{fa / fb:.2f}x" if fa and fb else "-",
                     _table.pct(fa / total_a), _table.pct(fb / total_b)])  # fmt: skip
    table = _table.table(["operator type", "f32 ms", "int8 ms", "speed-up", "f32 share", "int8 share"], rows)
    print("   " + table.replace("\n", "\n   "))
    compared = compare_ops(
        {**f32.to_dict(), "label": f"{size} float32", "id": None},
        {**int8.to_dict(), "label": f"{size} int8", "id": None},
    )
    losers = sorted(
        (r for r in compared.rows if r.a_ms is not None and r.b_ms is not None),
        key=lambda r: r.b_ms - r.a_ms,
        reverse=True,
    )[:5]
    print("   the operators int8 made slowest against float32 (ms added):")
    for r in losers:
        print(f"     {r.op} {r.layer}: {_table.ms(r.a_ms)} -> {_table.ms(r.b_ms)} ms ({r.verdict})")


def cost_of_ops(path: Path, args: argparse.Namespace) -> None:
    walls: dict[str, list[float]] = {"plain": [], "ops": []}
    parts: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        for kind in ("plain", "ops"):
            started = time.perf_counter()
            result = profile(path, args, ops=kind == "ops")
            walls[kind].append(time.perf_counter() - started)
            if kind == "ops":
                ops = result.measurement["ops"]
                parts.append((ops["seconds_total"] - ops["seconds"], ops["seconds"]))
    plain, with_ops = statistics.median(walls["plain"]), statistics.median(walls["ops"])
    peak_s = statistics.median(p[0] for p in parts)
    ops_s = statistics.median(p[1] for p in parts)
    print(f"\n== cost of --ops on {path.name} ({args.repeats} interleaved repeats, medians of wall time)")
    print(
        f"   plain profile {plain:.2f} s, with --ops {with_ops:.2f} s: {with_ops / plain:.2f}x, "
        f"+{with_ops - plain:.2f} s (peak microbenchmark {peak_s:.2f} s, operators {ops_s:.2f} s: cutting, loading "
        "and the rounds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/edgeprof-bench-ops"), help="where models are built")
    parser.add_argument("--rounds", type=int, default=50, help="--ops-rounds [50]")
    parser.add_argument("--seconds", type=float, default=1.0, help="--min-seconds [1]")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the --ops cost measurement [3]")
    args = parser.parse_args()
    files = build(args.cache)
    print("The machine may be loaded by other work: ratios within this run are meaningful, absolute times are not;")
    print("final figures need a quiet machine. 1 thread, XNNPACK, local target.")
    results = {}
    for name, path in files.items():
        results[name] = profile(path, args, ops=True)
        describe(name, results[name])
    for size in BENCH:
        int8_against_float(size, results[f"{size}-f32"], results[f"{size}-int8"])
    peak = results["035-96-f32"].measurement["ops"]["peak"]
    print("\n== peak measured on this board (1 thread, XNNPACK)")
    for run in peak["runs"]:
        rate = (
            f"{run['gmacs_per_s']:.1f} GMAC/s" if run.get("gmacs_per_s") else f"{run.get('gbytes_per_s', 0):.1f} GB/s"
        )
        print(f"   {run['name']:8s} {run['dtype']:8s} {run.get('median_ms', 0):.4f} ms  {rate}")
    for name, result in results.items():
        costs = result.measurement["ops"]["costs"]
        print(f"   {name}: {costs['gmacs_per_s']:.1f} GMAC/s, {100 * (costs.get('peak_fraction') or 0):.1f} % of peak")
    cost_of_ops(files["035-96-f32"], args)


if __name__ == "__main__":
    main()
