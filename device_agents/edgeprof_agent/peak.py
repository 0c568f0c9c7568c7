"""What this board's CPU does at best with this runtime, delegate and thread count: the roofs of a roofline.

A short microbenchmark on the board, through the same runtime, delegate and threads as the profile: large
convolutions (a 1x1 one, which is a GEMM, and a 3x3 one) in float32 and in int8, and a large element-wise ADD. The
fastest convolution of each type gives the peak MAC/s a model of that type can be set against ("this model reaches
45 % of what this board's CPU does with LiteRT"); the ADD, which does almost no arithmetic on 48 MiB, gives the
bytes per second the runtime moves (the memory roof). These are the runtime's best on well-shaped work, not the
silicon's datasheet figures.

Python 3.8, numpy and the board's LiteRT runtime.
"""

import os
import time

import numpy as np

from . import graph as graph_mod
from . import peak_models, runtimes
from .protocol import AgentError

MIN_RUNS = 3
MIN_SECONDS = 0.15
METHOD = (
    "median of at least %d runs and %.1f s of a 1x1 and a 3x3 convolution (float32 and int8) and of an element-wise "
    "ADD of two 16 MiB float32 tensors, through the profile's runtime, delegate and threads" % (MIN_RUNS, MIN_SECONDS)
)


def _inputs(interpreter, rng):
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(d) for d in detail["shape"])
        if dtype.kind == "f":
            value = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        else:
            value = rng.randint(-128, 128, size=shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def measure(runtime, opts, folder, deadline):
    """The ``peak`` record: each benchmark's median and rate, and the peak per data type. ``deadline`` bounds it."""
    rng = np.random.RandomState(0)
    runs = []
    stopped = False
    for name, dtype, macs, moved, data in peak_models.MODELS:
        if time.perf_counter() >= deadline:
            stopped = True
            break
        path = os.path.join(folder, "peak-%s-%s.tflite" % (name, dtype))
        with open(path, "wb") as handle:
            handle.write(peak_models.model(data))
        entry = {"name": name, "dtype": dtype, "macs": macs, "bytes": moved}
        try:
            interpreter, _info = runtimes.make_interpreter(
                runtime,
                path,
                threads=opts["threads"],
                delegate=opts["delegate"],
                delegate_options=opts["delegate_options"],
            )
            _inputs(interpreter, rng)
            interpreter.invoke()
        except (AgentError, ValueError, RuntimeError) as exc:
            entry["error"] = getattr(exc, "message", None) or runtimes._first_line(str(exc))
            runs.append(entry)
            continue
        finally:
            os.unlink(path)
        g = graph_mod.read(interpreter)
        entry["delegated"] = (bool(g.delegates) and len(g.covered) > 0) if g is not None else None
        samples = []
        started = time.perf_counter()
        clock = time.perf_counter
        invoke = interpreter.invoke
        while True:
            t0 = clock()
            invoke()
            t1 = clock()
            samples.append(t1 - t0)
            if len(samples) >= MIN_RUNS and (t1 - started >= MIN_SECONDS or t1 >= deadline):
                break
        median = float(np.median(samples))
        entry["runs"] = len(samples)
        entry["median_ms"] = median * 1000.0
        if macs:
            entry["gmacs_per_s"] = macs / median / 1e9
        if moved:
            entry["gbytes_per_s"] = moved / median / 1e9
        runs.append(entry)
        del interpreter
    peaks = {}
    for entry in runs:
        if entry.get("gmacs_per_s") is None:
            continue
        best = peaks.get(entry["dtype"])
        if best is None or entry["gmacs_per_s"] > best["gmacs_per_s"]:
            peaks[entry["dtype"]] = {
                "gmacs_per_s": entry["gmacs_per_s"],
                "from": entry["name"],
                "delegated": entry.get("delegated"),
            }
    bandwidth = next((e for e in runs if e.get("gbytes_per_s") is not None), None)
    return {
        "method": METHOD,
        "runtime": runtime.describe(),
        "delegate": opts["delegate"] or "xnnpack",
        "threads": opts["threads"],
        "runs": runs,
        "gmacs_per_s": dict((k, v["gmacs_per_s"]) for k, v in peaks.items()),
        "peak_from": dict((k, v["from"]) for k, v in peaks.items()),
        "gbytes_per_s": bandwidth["gbytes_per_s"] if bandwidth else None,
        "complete": not stopped and all("error" not in e for e in runs),
    }
