"""JSON lines in, JSON lines out.

A request is ``{"id": 1, "op": "profile", "args": {...}}``. Every request gets exactly one final answer,
``{"id": 1, "ok": true, "result": {...}}`` or ``{"id": 1, "ok": false, "error": {"code", "message", "fix"}}``;
before it, the agent may send events such as ``{"id": 1, "event": "phase", "phase": "warmup"}`` so that the host
can show progress. Errors carry a stable ``code`` so the host can react without parsing prose.
"""

import json
import os
import sys
import threading


class AgentError(Exception):
    """A failure the user can act on; travels to the host as a structured error."""

    def __init__(self, code, message, fix=""):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.fix = fix

    def to_dict(self):
        return {"code": self.code, "message": self.message, "fix": self.fix}


# Stable error codes (the host maps them to its own exceptions).
BAD_REQUEST = "bad_request"
MODEL_NOT_FOUND = "model_not_found"
MODEL_CORRUPT = "model_corrupt"
CUSTOM_OP = "custom_op_unsupported"
OP_UNSUPPORTED = "op_unsupported"
RUNTIME_MISSING = "runtime_missing"
RUNTIME_BROKEN = "runtime_broken"
DELEGATE_FAILED = "delegate_failed"
BAD_INPUT = "bad_input"
INTERNAL = "internal"


class Channel(object):
    """The protocol stream.

    Native code inside a runtime may print to file descriptor 1, which would corrupt the protocol. So the channel
    keeps a private duplicate of the original stdout and points descriptor 1 at stderr for everyone else.
    """

    def __init__(self, stdin=None, stdout_fd=None):
        self._lock = threading.Lock()
        if stdout_fd is None:
            sys.stdout.flush()
            private = os.dup(1)
            os.dup2(2, 1)
            sys.stdout = sys.stderr
            stdout_fd = private
        self._out = os.fdopen(stdout_fd, "w", encoding="utf-8", newline="\n")
        self._in = stdin if stdin is not None else sys.stdin

    def requests(self):
        for line in self._in:
            line = line.strip()
            if not line:
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                yield None, AgentError(BAD_REQUEST, "request is not JSON: %s" % exc, "send one JSON object a line")
                continue
            if not isinstance(request, dict) or "op" not in request:
                yield None, AgentError(BAD_REQUEST, "request has no 'op'", 'send {"id": 1, "op": "hello"}')
                continue
            yield request, None

    def send(self, message):
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    def answer(self, request_id, result):
        self.send({"id": request_id, "ok": True, "result": result})

    def fail(self, request_id, error):
        self.send({"id": request_id, "ok": False, "error": error.to_dict()})

    def event(self, request_id, name, **fields):
        message = {"id": request_id, "event": name}
        message.update(fields)
        self.send(message)
