"""The ``profile`` and ``predict`` operations: one model, one request, one result object.

``profile`` order of events, each step's reason in brackets:
  sibling sampler started (a small process forks cheaply; it finds the power sensor and takes the thermal snapshot
  before) -> CPU pinning (the sibling moves off the pinned CPUs) -> idle power measured (before the model adds load)
  -> RSS baseline, peak reset -> load + allocate (timed; peak RSS of the load) -> delegation read from the graph
  -> arena plan -> inputs set once -> peak reset -> first inference (timed alone, it pays lazy setup) -> warm-up
  -> threads' CPU times -> measured loop (the sibling samples on its own; nothing else runs in this process)
  -> threads' CPU times -> timer overhead -> the sibling stops and hands over its readings and the thermal
  snapshot after -> statistics and stability checks -> with ``ops``, the board's peak and every operator's latency
  (peak.py, operators.py: after the figures above, which the sub-models must not colour).

The result's ``conditions`` hold what the run depended on beyond its options (``sampler``: whether a sampler ran,
where, its rate and readings; ``threads``: requested, used, created) and ``stability`` the checks of stability.py.
"""

import os
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np

from . import arena, energy, latency, memory, operators, peak, runtimes, sidecar, stability, stats, threads
from . import inputs as inputs_mod
from .defaults import DEFAULTS
from .protocol import BAD_INPUT, BAD_REQUEST, AgentError
from .record import RECORD_VERSION, ProfileRecord

FIX_OPTIONS = "correct the option (edgeprof profile --help lists each with its range)"

_NUMBERS = {
    # name: (type, minimum, inclusive)
    "warmup_runs": (int, 0, True),
    "warmup_seconds": (float, 0.0, True),
    "runs": (int, 1, True),
    "min_seconds": (float, 0.0, True),
    "max_seconds": (float, 0.0, False),
    "pause_ms": (float, 0.0, True),
    "seed": (int, 0, True),
    "max_samples": (int, 1, True),
    "idle_seconds": (float, 0.0, True),
    "thermal_interval_s": (float, 0.0, True),
    "ops_rounds": (int, 1, True),
    "idle_after_seconds": (float, 0.0, True),
}


def _options(args):
    unknown = sorted(set(args) - set(DEFAULTS) - {"model"})
    if unknown:
        raise AgentError(BAD_REQUEST, "unknown profile options: %s" % ", ".join(unknown), "upgrade the host or agent")
    if "model" not in args:
        raise AgentError(BAD_REQUEST, "profile needs 'model'", "send the model's path on the board")
    merged = dict(DEFAULTS)
    merged.update(dict((k, v) for k, v in args.items() if v is not None))
    for name, (kind, low, inclusive) in _NUMBERS.items():
        try:
            value = kind(merged[name])
        except (TypeError, ValueError):
            raise AgentError(BAD_REQUEST, "%s must be a number, not %r" % (name, merged[name]), FIX_OPTIONS)
        if value < low or (value == low and not inclusive):
            raise AgentError(
                BAD_REQUEST,
                "%s must be %s %s, not %s" % (name, ">=" if inclusive else ">", low, value),
                FIX_OPTIONS,
            )
        merged[name] = value
    for name in ("threads", "energy_rate_hz"):
        if merged[name] is not None:
            try:
                merged[name] = (int if name == "threads" else float)(merged[name])
            except (TypeError, ValueError):
                raise AgentError(BAD_REQUEST, "%s must be a number, not %r" % (name, merged[name]), FIX_OPTIONS)
            if merged[name] <= 0:
                raise AgentError(BAD_REQUEST, "%s must be positive" % name, FIX_OPTIONS)
    if merged["duty_cycle"] is not None:
        try:
            merged["duty_cycle"] = float(merged["duty_cycle"])
        except (TypeError, ValueError):
            raise AgentError(BAD_REQUEST, "duty_cycle must be a number, not %r" % merged["duty_cycle"], FIX_OPTIONS)
        if not 0.0 < merged["duty_cycle"] <= 1.0:
            raise AgentError(BAD_REQUEST, "duty_cycle must be in (0, 1], not %s" % merged["duty_cycle"], FIX_OPTIONS)
        if merged["pause_ms"]:
            raise AgentError(BAD_REQUEST, "give pause_ms or duty_cycle, not both", FIX_OPTIONS)
    merged["meter"] = bool(merged["meter"])
    merged["hold"] = bool(merged["hold"])
    if merged["sampling"] not in (sidecar.SIBLING, sidecar.IN_PROCESS):
        raise AgentError(
            BAD_REQUEST,
            "sampling must be %r or %r, not %r" % (sidecar.SIBLING, sidecar.IN_PROCESS, merged["sampling"]),
            FIX_OPTIONS,
        )
    if str(merged["energy"]).lower() not in ("auto", "off") + energy.NAMES:
        raise AgentError(
            BAD_REQUEST,
            "unknown energy sensor %r" % merged["energy"],
            "choose auto, off or one of: %s" % ", ".join(energy.NAMES),
        )
    return merged


def _set_inputs(interpreter, opts):
    """Set the model's inputs once, as benchmark_model does; returns the arrays set (the operator profile reuses
    them)."""
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
    return tensors


def _operators(runtime, model, interpreter, graph, tensors, opts, timer, emit):
    """The board's peak, then the latency of every operator: together bounded by max_seconds. A failure costs the
    per-operator figures, with the reason, never the profile."""
    started = time.perf_counter()
    deadline = started + opts["max_seconds"]
    try:
        emit("phase", phase="peak")
        folder = tempfile.mkdtemp(prefix="edgeprof-peak-", dir=operators._scratch_dir(model))
        try:
            peak_result = peak.measure(runtime, opts, folder, min(deadline, started + 0.15 * opts["max_seconds"]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        found = operators.profile(runtime, model, interpreter, graph, tensors, opts, timer, emit, deadline)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        return {
            "available": False,
            "reason": "the per-operator run failed (%s: %s); the agent's stderr has the details"
            % (type(exc).__name__, exc),
        }
    found["peak"] = peak_result
    found["seconds_total"] = time.perf_counter() - started
    return found


def _monotonic(perf):
    """A perf_counter value on CLOCK_MONOTONIC (the same clock on Linux; mapped through one paired reading if not)."""
    return perf + (time.monotonic() - time.perf_counter())


def _signalled(emit, phase):
    """A ``hold()`` for the timed loop: has the host signalled ``stop`` for this phase? (None: no channel.)"""
    ask = getattr(emit, "signalled", None)
    return (lambda: ask("stop", phase)) if ask is not None else (lambda: False)


def _idle_after(opts, emit):
    """Sleep after the measured loop, in ticks, until the host's meter has read enough (or the cap): the idle power
    after the run, so that the host can see a baseline that drifted."""
    cap = opts["idle_after_seconds"]
    emit("phase", phase="idle_after", seconds=cap)
    held = _signalled(emit, "idle_after") if opts["hold"] else None
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= cap or (held is not None and held()):
            return [start, time.monotonic()]
        time.sleep(min(0.5, cap - elapsed))
        emit("progress", phase="idle_after", seconds=round(time.monotonic() - start, 3))


def profile(args, emit):
    opts = _options(args)
    model = args["model"]
    windows = {"clock": "CLOCK_MONOTONIC"}  # what the host maps a meter's readings onto
    quiet = sidecar.start(opts)  # before the model loads: a small process forks cheaply
    try:
        affinity = latency.pin(opts["cpus"])
        quiet.avoid(affinity if opts["cpus"] else None)
        runtime = runtimes.load(opts["runtime"])
        if quiet.has_sensor or (opts["meter"] and quiet.idle_seconds > 0):
            emit("phase", phase="idle", seconds=quiet.idle_seconds)
            idle_start = time.monotonic()
            if quiet.has_sensor:
                quiet.measure_idle()
            else:
                time.sleep(quiet.idle_seconds)
            windows["idle"] = [idle_start, time.monotonic()]

        emit("phase", phase="load")
        baseline_threads = threads.snapshot()
        rss_before = memory.rss_kb()
        reset_load, reset_load_why = memory.reset_peak()
        interpreter, load = runtimes.make_interpreter(
            runtime,
            model,
            threads=opts["threads"],
            delegate=opts["delegate"],
            delegate_options=opts["delegate_options"],
        )
        peak_load = memory.peak_rss_kb()
        rss_loaded = memory.rss_kb()
        delegation, graph = runtimes.delegation_report(interpreter, opts["delegate"], load.get("stderr"))
        arena_info = arena.estimate(interpreter, graph)
        input_tensors = _set_inputs(interpreter, opts)

        reset_run, reset_run_why = memory.reset_peak()
        invoke = interpreter.invoke
        t0 = time.perf_counter()
        invoke()
        first_ms = (time.perf_counter() - t0) * 1000.0

        emit("phase", phase="warmup")
        (warm_runs, warm_ms), w0, w1 = latency.timed_loop(
            invoke,
            opts["warmup_runs"],
            opts["warmup_seconds"],
            opts["warmup_seconds"] + opts["max_seconds"],
            keep=False,
        )
        windows["warmup"] = [_monotonic(w0), _monotonic(w1)]
        emit("phase", phase="measure")
        cpu_before = threads.snapshot()
        quiet.run_started()
        samples, m0, m1 = latency.timed_loop(
            invoke,
            opts["runs"],
            opts["min_seconds"],
            opts["max_seconds"],
            opts["pause_ms"] / 1000.0,
            tick=lambda runs, seconds: emit("progress", phase="measure", runs=runs, seconds=round(seconds, 3)),
            duty=opts["duty_cycle"],
            hold=_signalled(emit, "measure") if opts["hold"] else None,
        )
        windows["measure"] = [_monotonic(m0), _monotonic(m1)]
        quiet.run_stopped()
        cpu_after = threads.snapshot()
        measured_s = m1 - m0
        peak_run = memory.peak_rss_kb()
        rss_after = memory.rss_kb()
        timer = latency.timer_overhead()
        threads_used = threads.used(
            opts["threads"], baseline_threads, cpu_before, cpu_after, measured_s, quiet.thread_ids()
        )
        energy_result, thermal_report, sampler = quiet.finish(len(samples), measured_s)
        if opts["meter"] and opts["idle_after_seconds"] > 0:
            windows["idle_after"] = _idle_after(opts, emit)
    finally:
        quiet.close()

    peaks = [p for p in (peak_load, peak_run) if p is not None]
    summary = stats.summarize(samples)
    memory_record = {
        "peak_rss_kb": max(peaks) if peaks else None,
        "peak_rss_load_kb": peak_load,
        "peak_rss_inference_kb": peak_run,
        "peak_reset_before_load": reset_load,
        "peak_reset_before_inference": reset_run,
        "rss_before_load_kb": rss_before,
        "rss_after_load_kb": rss_loaded,
        "rss_after_runs_kb": rss_after,
        "model_rss_delta_kb": (rss_loaded - rss_before) if rss_loaded and rss_before else None,
        "rss_allocate_delta_kb": load.get("rss_allocate_delta_kb"),
        "tensor_arena": arena_info,
        "board": memory.meminfo(),
    }
    if not reset_load or not reset_run:
        memory_record["peak_reset_problem"] = reset_load_why or reset_run_why
    limit = opts["max_samples"]
    kept = {}
    if len(samples) <= limit:
        kept["samples_ms"] = [stats.round_ms(s) for s in samples]
    else:
        # Very fast models give millions of runs: keep an evenly strided subset (it preserves drift over time)
        # and an exact histogram of all of them; the statistics above are always computed from every run.
        stride = len(samples) / float(limit)
        kept["samples_ms"] = [stats.round_ms(samples[int(i * stride)]) for i in range(limit)]
        kept["samples_subsampled"] = True
        kept["histogram"] = stats.histogram(samples)
    asked = {}
    if opts["ops"]:  # after the figures above and their memory peaks: the sub-models must not colour them
        asked["ops"] = _operators(runtime, model, interpreter, graph, input_tensors, opts, timer, emit)
    record = ProfileRecord.build(
        record_version=RECORD_VERSION,
        model_path=model,
        runtime=runtime.describe(),
        delegate=opts["delegate"] or "xnnpack",
        delegate_options=opts["delegate_options"],
        delegation=delegation,
        threads=opts["threads"],
        cpu_affinity=affinity,
        options=dict((k, opts[k]) for k in _RECORDED_OPTIONS),
        inputs="data" if opts["inputs"] else "random",
        init_ms=load["load_ms"] + load["allocate_ms"],
        load_ms=load["load_ms"],
        allocate_ms=load["allocate_ms"],
        first_inference_ms=first_ms,
        warmup={"runs": warm_runs, "seconds": w1 - w0, "mean_ms": warm_ms / warm_runs if warm_runs else None},
        latency_ms=summary,
        measured_seconds=measured_s,
        duty=_duty(samples, measured_s, opts),
        windows=windows,
        memory=memory_record,
        energy=energy_result,
        thermal=thermal_report,
        throttled=thermal_report["throttled"],
        conditions={"sampler": sampler, "threads": threads_used, "process": {"pid": os.getpid()}},
        stability=stability.check(
            samples, summary, timer, threads_used, sampler, len(affinity) if affinity else os.cpu_count()
        ),
        **kept,
        **asked,
    )
    return record.to_dict()


_RECORDED_OPTIONS = (
    "warmup_runs",
    "warmup_seconds",
    "runs",
    "min_seconds",
    "max_seconds",
    "pause_ms",
    "cpus",
    "seed",
    "energy",
    "energy_rate_hz",
    "idle_seconds",
    "thermal_interval_s",
    "sampling",
    "ops",
    "ops_rounds",
    "duty_cycle",
)


def _duty(samples, window_s, opts):
    """The share of the measured window the model ran: asked for (duty_cycle, or implied by pause_ms) and achieved."""
    busy_s = sum(samples) / 1000.0
    return {
        "requested": opts["duty_cycle"],
        "pause_ms": opts["pause_ms"] or None,
        "achieved": busy_s / window_s if window_s > 0 else None,
    }


def predict(args, emit):
    """Run the model over every sample of a data file and save the outputs (dequantised) as .npy.

    The host uses it for on-board accuracy: the same interpreter settings as ``profile`` (runtime, threads,
    delegate), so the accuracy belongs to the configuration that was timed.
    """
    for key in ("model", "inputs", "output"):
        if key not in args:
            raise AgentError(BAD_REQUEST, "predict needs %r" % key, "send model, inputs and output paths")
    runtime = runtimes.load(args.get("runtime"))
    interpreter, load = runtimes.make_interpreter(
        runtime,
        args["model"],
        threads=args.get("threads"),
        delegate=args.get("delegate") or "xnnpack",
        delegate_options=args.get("delegate_options"),
    )
    delegation, _graph = runtimes.delegation_report(interpreter, args.get("delegate"), load.get("stderr"))
    arrays = inputs_mod.load_arrays(args["inputs"], interpreter)
    in_details = interpreter.get_input_details()
    out_details = interpreter.get_output_details()
    count = arrays[0].shape[0]
    outputs = [[] for _ in out_details]
    emit("phase", phase="predict", count=int(count))
    t0 = time.perf_counter()
    for i in range(count):
        for detail, array in zip(in_details, arrays):
            interpreter.set_tensor(detail["index"], array[i : i + 1])
        interpreter.invoke()
        for j, detail in enumerate(out_details):
            outputs[j].append(inputs_mod.dequantize_like(detail, interpreter.get_tensor(detail["index"]))[0])
    seconds = time.perf_counter() - t0
    stacked = [np.stack(o) for o in outputs]
    np.save(
        args["output"],
        stacked[0] if len(stacked) == 1 else np.concatenate([s.reshape(count, -1) for s in stacked], axis=1),
    )
    return {
        "count": int(count),
        "output": args["output"],
        "runtime": runtime.describe(),
        "delegation": delegation,
        "threads": args.get("threads"),
        "seconds": seconds,
        "output_shapes": [list(s.shape) for s in stacked],
    }
