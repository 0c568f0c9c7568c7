"""Entry point: ``python3 edgeprof-agent.pyz`` serves JSON-line requests on stdin until EOF or ``bye``."""

import sys
import traceback

from . import AGENT_VERSION, PROTOCOL_VERSION, facts, measure, runtimes
from .protocol import INTERNAL, AgentError, Channel


def hello(args, emit):
    found, missing = runtimes.available()
    return {
        "agent_version": AGENT_VERSION,
        "protocol": PROTOCOL_VERSION,
        "runtimes": found,
        "runtimes_missing": missing,
        "delegates": ["xnnpack", "none"],
        "device": facts.device_facts(),
    }


OPERATIONS = {"hello": hello, "profile": measure.profile, "predict": measure.predict}


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
