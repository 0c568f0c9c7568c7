"""Talking to a running agent: one request, its events, one answer."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from edgeprof_agent import PROTOCOL_VERSION

from .errors import AgentError, TransportError
from .transports.base import Process

EventHandler = Callable[[dict[str, Any]], None]

#: ``plan(last_event)`` -> (seconds to wait for the agent's next message, what the agent should be doing then).
#: ``last_event`` is None right after the request. Long operations announce their phases, so each phase can have a
#: deadline of its own and a hung agent is noticed soon after the phase should have ended.
Deadline = Callable[[dict[str, Any] | None], tuple[float, str]]

log = logging.getLogger("edgeprof.session")


class AgentSession:
    """The host's end of the JSON-lines protocol with one agent process."""

    def __init__(self, process: Process, *, board: str, timeout: float = 60.0) -> None:
        self._process = process
        self._board = board
        self._timeout = timeout
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] = {}

    def start(self, *, probe: bool = True) -> dict[str, Any]:
        """``hello``; ``probe=False`` skips probing the board's runtimes (a profile process needs only the versions
        and the device facts)."""
        self.hello = self.call("hello", None if probe else {"probe": False})
        if self.hello.get("protocol") != PROTOCOL_VERSION:
            raise AgentError(
                f"the agent on {self._board} speaks protocol {self.hello.get('protocol')}, "
                f"this edgeprof speaks {PROTOCOL_VERSION}",
                "upgrade edgeprof on the host",
                code="protocol",
            )
        return self.hello

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | Deadline | None = None,
        on_event: EventHandler | None = None,
        fix: str | None = None,
    ) -> dict[str, Any]:
        """Send ``op`` and return its answer; events go to ``on_event`` as they arrive.

        ``timeout`` is seconds for the whole answer, or a :data:`Deadline` that gives each phase its own. ``fix``
        is the advice when the agent falls silent for too long.
        """
        request_id = next(self._ids)
        line = json.dumps({"id": request_id, "op": op, "args": args or {}}) + "\n"
        started = time.monotonic()
        log.debug("agent %s: %s request %d", self._board, op, request_id)
        self._process.send(line.encode())

        def plan(event: dict[str, Any] | None) -> tuple[float, str]:
            if callable(timeout):
                return timeout(event)
            return (timeout if timeout is not None else self._timeout), ""

        limit, doing = plan(None)
        silent_since = time.monotonic()
        while True:
            try:
                raw = self._process.readline(max(0.0, limit - (time.monotonic() - silent_since)))
            except TimeoutError:
                while_ = f" while {doing}" if doing else ""
                raise TransportError(
                    f"the agent on {self._board} sent nothing for {limit:.0f} s{while_} during {op!r}: it hangs, "
                    "or the board is overloaded",
                    fix or "retry; for a slow board raise the target's command_timeout in the config",
                ) from None
            if not raw:
                tail = self._process.stderr_tail().strip().splitlines()
                why = tail[-1] if tail else "no error output"
                raise AgentError(
                    f"the agent on {self._board} exited during {op!r}: {why}",
                    "run 'edgeprof targets check' to test the board's Python and runtime",
                    code="agent_exited",
                )
            try:
                message = json.loads(raw)
            except ValueError:
                continue  # not ours: the agent keeps stdout clean, but a login banner may slip through
            if message.get("id") != request_id:
                continue
            if "event" in message:
                if message.get("event") == "phase":
                    log.debug("agent %s: phase %s after %.3f s", self._board, message.get("phase"),
                              time.monotonic() - started)  # fmt: skip
                limit, doing = plan(message)
                silent_since = time.monotonic()
                if on_event is not None:
                    on_event(message)
                continue
            log.debug("agent %s: %s answered %s in %.3f s", self._board, op, "ok" if message.get("ok") else "an error",
                      time.monotonic() - started)  # fmt: skip
            if message.get("ok"):
                return message.get("result") or {}
            error = message.get("error") or {}
            raise AgentError(
                f"{self._board}: {error.get('message', 'unknown agent error')}",
                error.get("fix", ""),
                code=error.get("code", "internal"),
            )

    def signal(self, request_id: Any, name: str, phase: str | None = None) -> None:
        """Tell the agent to end an open-ended phase of a running request (``stop`` for ``measure`` or
        ``idle_after``, held for a power meter on the host); the agent sees it at its next tick."""
        message = {"id": request_id, "signal": name, **({"phase": phase} if phase else {})}
        log.debug("agent %s: signal %s %s for request %s", self._board, name, phase or "", request_id)
        self._process.send((json.dumps(message) + "\n").encode())

    def close(self, graceful: bool = True) -> None:
        """Say ``bye`` and let the agent exit; ``graceful=False`` (an error or Ctrl-C) stops it at once."""
        try:
            if graceful:
                self.call("bye", timeout=5)
                self._process.wait(timeout=5)
        except Exception:  # noqa: BLE001 - closing must never hide the real error
            pass
        finally:
            self._process.terminate()
