"""Entry point: ``python3 edgeprof-agent.pyz`` serves JSON-line requests on stdin until EOF or ``bye``."""

import sys
import time
import traceback

from . import AGENT_VERSION, PROTOCOL_VERSION, energy, facts, runtimes, thermal
from .protocol import INTERNAL, RUNTIME_MISSING, AgentError, Channel


def hello(args, emit):
    """Who the agent is and what this board offers: runtimes (probed), delegates, sensors, device facts.

    ``{"probe": false}`` skips probing the runtimes (``runtimes`` and ``delegates`` are then null): a profile
    process needs only the versions and the device facts, and ``profile`` reports the runtime it used; probing
    costs a few hundred ms a process, which ``--repeat`` would pay N times.
    """
    probe = args.get("probe", True) is not False
    found, missing = runtimes.available() if probe else (None, None)
    snap = thermal.snapshot()
    snap.pop("_throttled_value", None)
    throttle_why = snap.pop("_throttled_why", None)
    return {
        "agent_version": AGENT_VERSION,
        "protocol": PROTOCOL_VERSION,
        "runtimes": found,
        "runtimes_missing": missing,
        "delegates": runtimes.delegates(found) if probe else None,
        "sensors": {
            "energy": energy.sensors_found(args),
            "thermal": {
                "zones": snap["zones"],
                "cooling": snap["cooling"],
                "rpi_throttled": snap["rpi_throttled"] or throttle_why,
            },
        },
        "device": facts.device_facts(),
    }


def clock(args, emit):
    """The board's monotonic clock, for the host to align a power meter's readings with the agent's windows (the
    host stamps the request and the answer on its own clock: offset and round trip, NTP-style)."""
    return {"monotonic": time.monotonic(), "clock": "CLOCK_MONOTONIC"}


def _measure():
    """The measuring code needs numpy; hello does not, so a board without numpy still says what it lacks."""
    try:
        from . import measure
    except ImportError as exc:
        if "numpy" not in str(exc):
            raise
        raise AgentError(
            RUNTIME_MISSING,
            "numpy is not installed for %s (%s)" % (sys.executable, exc),
            "pip install numpy on the board ('numpy<2' beside tflite-runtime)",
        )
    return measure


def profile(args, emit):
    return _measure().profile(args, emit)


def predict(args, emit):
    return _measure().predict(args, emit)


OPERATIONS = {"hello": hello, "profile": profile, "predict": predict, "clock": clock}


def serve(channel):
    for request, problem in channel.requests():
        if problem is not None:
            channel.fail(None, problem)
            continue
        request_id = request.get("id")
        op = request["op"]
        if op == "bye":
            channel.answer(request_id, {})
            return 0
        handler = OPERATIONS.get(op)
        if handler is None:
            channel.fail(request_id, AgentError("bad_request", "unknown op %r" % op, "upgrade the agent"))
            continue

        def emit(name, _id=request_id, **fields):
            channel.event(_id, name, **fields)

        # Open-ended phases ask, at their ticks, whether the host has signalled them to end.
        emit.signalled = lambda name, phase=None, _id=request_id: channel.signalled(_id, name, phase)

        try:
            channel.answer(request_id, handler(request.get("args") or {}, emit))
        except AgentError as exc:
            channel.fail(request_id, exc)
        except Exception as exc:  # noqa: BLE001 - the host must get an answer, never a silent death
            traceback.print_exc(file=sys.stderr)
            channel.fail(
                request_id,
                AgentError(INTERNAL, "%s: %s" % (type(exc).__name__, exc), "report this with the agent's stderr"),
            )
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--version", "version"):
        sys.stdout.write("edgeprof-agent %s (protocol %d)\n" % (AGENT_VERSION, PROTOCOL_VERSION))
        return 0
    return serve(Channel())


if __name__ == "__main__":
    sys.exit(main())
