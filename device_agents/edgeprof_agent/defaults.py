"""The profile defaults, written once: the agent's ``profile`` op, the host's ``ProfileOptions`` and the CLI's
options all read them from here (the host imports this module from the agent package in its wheel).

They follow TFLite's benchmark_model: at least one warm-up run and 0.5 s, then at least 50 runs and 1 s, at most
150 s.
"""

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
    "max_samples": 10000,  # raw samples returned; beyond this an even subset plus an exact histogram
    "energy": "auto",
    "energy_command": None,
    "energy_rate_hz": None,  # None: 100 Hz for sysfs sensors, 10 Hz for command-based ones
    "idle_seconds": 1.0,
    "thermal_interval_s": 1.0,
    "sampling": "sibling",  # where the power sampler and thermal watcher run: "sibling" or "in-process"
    "ops": False,  # per-operator latency and the board's peak after the profile (operators.py, peak.py)
    "ops_rounds": 50,  # at least this many rounds of every operator (and min_seconds), within max_seconds
    "duty_cycle": None,  # share of the time the model runs (pauses in proportion to each run); None: back to back
    # A power meter on the host (edgeprof.meters) sends these three: hold idle even without a sensor here, record
    # the windows on CLOCK_MONOTONIC, run the measured loop (and an idle after it, up to idle_after_seconds) until
    # the host signals that its meter has read enough.
    "meter": False,
    "hold": False,
    "idle_after_seconds": 0.0,
}

#: Options of the host alone (never sent to the agent), kept here so that every default is written once.
HOST_DEFAULTS = {
    "use_meter": True,  # read the target's power meter on the host ([targets.NAME.meter]) when it has one
    "energy_precision": 0.05,  # with a meter: run until energy per inference is known to this relative 95 % interval
}
