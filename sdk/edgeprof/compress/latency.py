"""The latency verdict of a compression: the exported model against its float32 baseline, measured on a target.

A latency claim is only as good as its measurement, so ``compress`` profiles both files with the device agent on
``local`` (or the board named with ``--target``), in interleaved rounds (baseline, compressed, baseline, ...; each
run a fresh agent process), and asks :func:`edgeprof.compare.compare` with the runs of each side pooled: the noise
band is then the spread between processes, measured, not assumed. The manifest gets both medians, the speed-up and
the verdict, e.g. "1.62x faster" or "no significant change".

For XNNPACK-sparse pruning a third file is measured: the same weights stored dense. Whether XNNPACK ran its sparse
kernels shows only as time, because LiteRT's XNNPACK delegate decides by itself: it hints sparse inference to
XNNPACK whenever a delegated subgraph reads weights through DENSIFY, and XNNPACK then rewrites the eligible part of
the graph to NCHW with sparse 1×1 kernels, or not (no flag in LiteRT's Python API changes this).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..errors import EdgeprofError

ROUNDS = 3
# Short runs: a verdict costs seconds per compression, and pooling three processes a side measures their spread.
OPTIONS = {"runs": 50, "warmup_seconds": 0.2, "min_seconds": 0.5, "max_seconds": 20.0, "energy": "off"}
X86 = ("x86_64", "amd64", "i386", "i686", "x86")
X86_REASON = (
    "XNNPACK keeps its dense kernels on x86 CPUs with AVX, where it expects them to be faster "
    "(xnn_is_chw_compatible_config); its sparse inference runs on Arm and on x86 without AVX"
)


def measure(models: dict[str, bytes], target: str = "local", *, rounds: int = ROUNDS, threads: int | None = None):
    """Profile every model ``rounds`` times, interleaved; name -> the runs' records (``ProfileResult.to_dict()``)."""
    from ..profile import profile

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory(prefix="edgeprof-latency-") as folder:
        paths = {}
        for name, tflite in models.items():
            paths[name] = Path(folder) / f"{name}.tflite"
            paths[name].write_bytes(tflite)
        for _ in range(rounds):
            for name, path in paths.items():
                result = profile(path, target, store=None, threads=threads, **OPTIONS)
                runs[name].append(result.to_dict())
    return runs


def verdict(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """``after`` against ``before`` (A is the reference), as the manifest keeps it."""
    from ..compare import compare

    found = compare(before, after)
    speedup = found.a.median_ms / found.b.median_ms if found.b.median_ms else None
    if found.significant and speedup is not None:
        text = f"{speedup:.2f}x faster" if speedup > 1 else f"{1 / speedup:.2f}x slower"
    else:
        text = f"no significant change ({speedup:.2f}x)" if speedup else "no significant change"
    return {
        "before_median_ms": found.a.median_ms,
        "after_median_ms": found.b.median_ms,
        "before_run_medians_ms": found.a.run_medians_ms,
        "after_run_medians_ms": found.b.run_medians_ms,
        "speedup": speedup,
        "significant": found.significant,
        "verdict": found.verdict,
        "change": found.change,
        "ci": [found.ci_low, found.ci_high],
        "p_value": found.p_value,
        "band": found.min_change,
        "band_from": found.band_from,
        "notes": [note for note in found.notes if "even subset" not in note],
        "text": text,
    }


def _conditions(record: dict[str, Any]) -> dict[str, Any]:
    runtime = record.get("runtime") or {}
    return {
        "runtime": " ".join(str(runtime.get(k)) for k in ("name", "version") if runtime.get(k)),
        "delegate": record.get("delegate"),
        "threads": record.get("threads"),
        "machine": (record.get("device") or {}).get("machine"),
        "board": (record.get("device") or {}).get("board"),
    }


def latency_report(
    baseline: bytes,
    compressed: bytes,
    *,
    target: str = "local",
    dense_twin: bytes | None = None,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """The manifest's ``latency`` section; ``dense_twin`` adds the XNNPACK sparse-path verdict."""
    models = {"baseline": baseline, "compressed": compressed}
    if dense_twin is not None:
        models["dense"] = dense_twin
    try:
        runs = measure(models, target, rounds=rounds)
    except EdgeprofError as exc:
        return {"measured": False, "target": target, "reason": f"{exc.problem}; {exc.fix}"}
    found = verdict(runs["baseline"], runs["compressed"])
    report = {
        "measured": True,
        "target": target,
        "rounds": rounds,
        "method": f"{rounds} interleaved rounds, one agent process per run, runs of a side pooled by compare",
        "conditions": _conditions(runs["compressed"][0]),
        **found,
    }
    if dense_twin is not None:
        report["xnnpack_sparse"] = sparse_verdict(runs, compressed)
    return report


def stored_sparse(tflite: bytes) -> int:
    """How many weight tensors the file stores sparse (expanded by a DENSIFY operator at load)."""
    from ..tflite import parse

    return sum(1 for op in parse(tflite).main.operators if op.opcode.name == "DENSIFY")


def sparse_verdict(runs: dict[str, list[dict[str, Any]]], sparse: bytes) -> dict[str, Any]:
    """Did XNNPACK take its sparse path? The sparse file against the same weights stored dense, on the target."""
    found = verdict(runs["dense"], runs["compressed"])
    record = runs["compressed"][0]
    machine = str((record.get("device") or {}).get("machine") or "").lower()
    delegation = record.get("delegation") or {}
    left = [op for op in delegation.get("undelegated_ops") or [] if op == "DENSIFY"]
    result: dict[str, Any] = {
        "sparse_tensors": stored_sparse(sparse),
        "against_dense": found,
        "machine": machine or None,
    }
    if left:
        result.update(taken=False, reason="XNNPACK did not take the DENSIFY operators, so it never saw sparse weights")
    elif found["significant"] and (found["speedup"] or 0) > 1:
        result.update(taken=True, reason=None)
    elif machine in X86:
        result.update(taken=False, reason=X86_REASON)
    else:
        result.update(
            taken=False,
            reason="no significant change against the same weights stored dense: XNNPACK kept its dense kernels "
            "(a layer outside its sparse subgraph rules, or fewer than 2/3 zeros in its 1×1 convolutions)",
        )
    result["text"] = (
        f"XNNPACK sparse path taken: {found['text']} than the same weights stored dense"
        if result["taken"]
        else f"XNNPACK sparse path not taken ({found['text']} against the dense weights): {result['reason']}"
    )
    return result
