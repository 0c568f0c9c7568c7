"""The ``profile`` and ``predict`` operations.

Latency follows TFLite's benchmark_model: a warm-up of at least N runs and at least S seconds, then measured runs
of at least N and at least S seconds, capped by a maximum duration. Each run is one ``invoke()`` between two
``perf_counter`` reads and nothing else; inputs are set once before the loop, as benchmark_model does.
"""

import os
import time

import numpy as np

from . import inputs as inputs_mod
from . import memory, runtimes, stats
from .protocol import BAD_INPUT, BAD_REQUEST, AgentError

DEFAULTS = {
    "runtime": None,
    "threads": None,
    "delegate": "xnnpack",
    "delegate_options": None,
    "warmup_runs": 1,
    "warmup_seconds": 0.5,
    "runs": 50,
    "min_seconds": 1.0,
    "max_seconds": 150.0,
    "pause_ms": 0.0,
    "cpus": None,
    "inputs": None,
    "seed": 0,
    "max_samples": 10000,
}


def _options(args):
    unknown = sorted(set(args) - set(DEFAULTS) - {"model"})
    if unknown:
        raise AgentError(BAD_REQUEST, "unknown profile options: %s" % ", ".join(unknown), "upgrade the host or agent")
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in args.items() if v is not None})
    if "model" not in args:
        raise AgentError(BAD_REQUEST, "profile needs 'model'")
    if int(merged["runs"]) < 1:
        raise AgentError(BAD_REQUEST, "runs must be at least 1")
    return merged


def _timed_loop(invoke, min_runs, min_seconds, max_seconds, pause_s):
    clock = time.perf_counter
    samples = []
    started = clock()
    while True:
        t0 = clock()
        invoke()
        t1 = clock()
        samples.append((t1 - t0) * 1000.0)
        elapsed = t1 - started
        if (len(samples) >= min_runs and elapsed >= min_seconds) or elapsed >= max_seconds:
            return samples, elapsed
        if pause_s:
            time.sleep(pause_s)


def profile(args, emit):
    opts = _options(args)
    model = args["model"]
    if opts["cpus"]:
        try:
            os.sched_setaffinity(0, [int(c) for c in opts["cpus"]])
        except (AttributeError, OSError, ValueError) as exc:
            raise AgentError(BAD_REQUEST, "cannot pin to CPUs %s: %s" % (opts["cpus"], exc), "check --cpus")
    runtime = runtimes.load(opts["runtime"])

    peak_reset = memory.reset_peak()
    rss_before = memory.rss_kb()
    emit("phase", phase="load")
    t0 = time.perf_counter()
    interpreter = runtimes.make_interpreter(
        runtime, model, threads=opts["threads"], delegate=opts["delegate"], delegate_options=opts["delegate_options"]
    )
    init_ms = (time.perf_counter() - t0) * 1000.0
    rss_loaded = memory.rss_kb()

    details = interpreter.get_input_details()
    if opts["inputs"]:
        arrays = inputs_mod.load_arrays(opts["inputs"], interpreter)
        tensors = [a[:1] for a in arrays]
    else:
        tensors = inputs_mod.random_inputs(interpreter, seed=int(opts["seed"]))
    for detail, tensor in zip(details, tensors):
        try:
            interpreter.set_tensor(detail["index"], tensor)
        except ValueError as exc:
            raise AgentError(BAD_INPUT, "cannot set input %r: %s" % (detail["name"], exc), "check the data's shape")

    invoke = interpreter.invoke
    t0 = time.perf_counter()
    invoke()
    first_ms = (time.perf_counter() - t0) * 1000.0

    emit("phase", phase="warmup")
    warm, warm_s = _timed_loop(
        invoke,
        int(opts["warmup_runs"]),
        float(opts["warmup_seconds"]),
        max(float(opts["warmup_seconds"]), 0.0) + float(opts["max_seconds"]),
        0.0,
    )
    emit("phase", phase="measure")
    samples, measured_s = _timed_loop(
        invoke,
        int(opts["runs"]),
        float(opts["min_seconds"]),
        float(opts["max_seconds"]),
        float(opts["pause_ms"]) / 1000.0,
    )
    peak = memory.peak_rss_kb()
    rss_after = memory.rss_kb()

    result = {
        "model_path": model,
        "runtime": runtime.describe(),
        "delegate": opts["delegate"] or "xnnpack",
        "threads": opts["threads"],
        "options": {
            k: opts[k]
            for k in ("warmup_runs", "warmup_seconds", "runs", "min_seconds", "max_seconds", "pause_ms", "cpus", "seed")
        },
        "inputs": "data" if opts["inputs"] else "random",
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "warmup": {"runs": len(warm), "seconds": warm_s, "mean_ms": float(np.mean(warm))},
        "latency_ms": stats.summarize(samples),
        "measured_seconds": measured_s,
        "memory": {
            "peak_rss_kb": peak,
            "peak_reset_before_load": peak_reset,
            "rss_before_load_kb": rss_before,
            "rss_after_load_kb": rss_loaded,
            "rss_after_runs_kb": rss_after,
            "model_rss_delta_kb": (rss_loaded - rss_before) if rss_loaded and rss_before else None,
            "board": memory.meminfo(),
        },
    }
    limit = max(1, int(opts["max_samples"]))
    if len(samples) <= limit:
        result["samples_ms"] = [stats.round_ms(s) for s in samples]
    else:
        # Very fast models give millions of runs: keep an evenly strided subset (it preserves drift over time)
        # and an exact histogram of all of them; the statistics above are always computed from every run.
        stride = len(samples) / float(limit)
        result["samples_ms"] = [stats.round_ms(samples[int(i * stride)]) for i in range(limit)]
        result["samples_subsampled"] = True
        result["histogram"] = stats.histogram(samples)
    return result


def predict(args, emit):
    """Run the model over every sample of a data file and save the outputs (dequantised) as .npy."""
    for key in ("model", "inputs", "output"):
        if key not in args:
            raise AgentError(BAD_REQUEST, "predict needs %r" % key)
    runtime = runtimes.load(args.get("runtime"))
    interpreter = runtimes.make_interpreter(
        runtime, args["model"], threads=args.get("threads"), delegate=args.get("delegate") or "xnnpack"
    )
    arrays = inputs_mod.load_arrays(args["inputs"], interpreter)
    in_details = interpreter.get_input_details()
    out_details = interpreter.get_output_details()
    count = arrays[0].shape[0]
    outputs = [[] for _ in out_details]
    emit("phase", phase="predict", count=int(count))
    for i in range(count):
        for detail, array in zip(in_details, arrays):
            interpreter.set_tensor(detail["index"], array[i : i + 1])
        interpreter.invoke()
        for j, detail in enumerate(out_details):
            outputs[j].append(inputs_mod.dequantize_like(detail, interpreter.get_tensor(detail["index"]))[0])
    stacked = [np.stack(o) for o in outputs]
    np.save(
        args["output"],
        stacked[0] if len(stacked) == 1 else np.concatenate([s.reshape(count, -1) for s in stacked], axis=1),
    )
    return {
        "count": int(count),
        "output": args["output"],
        "runtime": runtime.describe(),
        "output_shapes": [list(s.shape) for s in stacked],
    }
