"""JSON lines in, JSON lines out.

A request is ``{"id": 1, "op": "profile", "args": {...}}``. Every request gets exactly one final answer,
``{"id": 1, "ok": true, "result": {...}}`` or ``{"id": 1, "ok": false, "error": {"code", "message", "fix"}}``;
before it, the agent may send events such as ``{"id": 1, "event": "phase", "phase": "warmup"}`` so that the host
can show progress. Errors carry a stable ``code`` so the host can react without parsing prose.

While a request runs, the host may send a signal for it, ``{"id": 1, "signal": "stop", "phase": "measure"}``: an
open-ended phase (the measured loop or the idle after it, held for a power meter on the host) ends at its next
tick. The agent looks for signals only between runs, at its progress ticks, with a non-blocking ``select`` on its
input: no thread reads stdin while the model runs. A signal for a request that has already answered is dropped.
"""

import json
import os
import select
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
        try:  # read the descriptor ourselves: a buffered stream would hide a waiting signal from select()
            self._fd = self._in.fileno()
        except (AttributeError, OSError, ValueError):  # a test's StringIO: lines only, no signals
            self._fd = None
        self._buffer = b""
        self._eof = False
        self._lines = []  # complete lines read while looking for signals, not yet served
        self._signals = {}  # request id -> [(name, phase)]

    def _read_more(self, block):
        """Read what the descriptor has into complete lines; False at end of input (or nothing ready)."""
        if self._eof:
            return False
        if not block and not select.select([self._fd], [], [], 0)[0]:
            return False
        chunk = os.read(self._fd, 65536)
        if not chunk:
            self._eof = True
            if self._buffer:
                self._lines.append(self._buffer.decode("utf-8", "replace"))
                self._buffer = b""
            return False
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._lines.append(line.decode("utf-8", "replace"))
        return True

    def _next_line(self):
        if self._fd is None:
            return self._in.readline() or None
        while not self._lines:
            if not self._read_more(block=True) and self._eof and not self._lines:
                return None
        return self._lines.pop(0)

    def _take_signals(self):
        """Move signals out of the lines read so far (they are not requests)."""
        kept = []
        for line in self._lines:
            message = _signal_of(line)
            if message is None:
                kept.append(line)
            else:
                self._signals.setdefault(message.get("id"), []).append((message["signal"], message.get("phase")))
        self._lines = kept

    def signalled(self, request_id, name, phase=None):
        """Has the host sent ``name`` (for ``phase``, or for any phase when the signal names none) for this
        request? Non-blocking: reads only what is already waiting on the input."""
        if self._fd is not None:
            while self._read_more(block=False):
                pass
            self._take_signals()
        for i, (got, got_phase) in enumerate(self._signals.get(request_id, [])):
            if got == name and (got_phase is None or phase is None or got_phase == phase):
                del self._signals[request_id][i]
                return True
        return False

    def requests(self):
        while True:
            line = self._next_line()
            if line is None:
                return
            line = line.strip()
            if not line:
                continue
            if _signal_of(line) is not None:
                continue  # a signal for a request that has already answered: nothing is waiting for it
            try:
                request = json.loads(line)
            except ValueError as exc:
                yield None, AgentError(BAD_REQUEST, "request is not JSON: %s" % exc, "send one JSON object a line")
                continue
            if not isinstance(request, dict) or "op" not in request:
                yield None, AgentError(BAD_REQUEST, "request has no 'op'", 'send {"id": 1, "op": "hello"}')
                continue
            self._signals.clear()  # a new request: signals meant for earlier ones are stale
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


def _signal_of(line):
    """The signal message on this line, or None when it is something else (a request, or not JSON)."""
    if '"signal"' not in line:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if isinstance(message, dict) and isinstance(message.get("signal"), str) and "op" not in message:
        return message
    return None
