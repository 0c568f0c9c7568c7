"""Talking to a running agent: one request, its events, one answer."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from .errors import AgentError, TransportError
from .transports.base import Process

PROTOCOL_VERSION = 1

EventHandler = Callable[[dict[str, Any]], None]


class AgentSession:
    """The host's end of the JSON-lines protocol with one agent process."""

    def __init__(self, process: Process, *, board: str, timeout: float = 60.0) -> None:
        self._process = process
        self._board = board
        self._timeout = timeout
        self._ids = itertools.count(1)
        self.hello: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        self.hello = self.call("hello")
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
        timeout: float | None = None,
        on_event: EventHandler | None = None,
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        line = json.dumps({"id": request_id, "op": op, "args": args or {}}) + "\n"
        self._process.send(line.encode())
        limit = timeout if timeout is not None else self._timeout
        while True:
            try:
                raw = self._process.readline(limit)
            except TimeoutError:
                raise TransportError(
                    f"{self._board} sent no answer to {op!r} within {limit:.0f} s",
                    "the board may be overloaded or offline; retry, or raise --timeout",
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
                if on_event is not None:
                    on_event(message)
                continue
            if message.get("ok"):
                return message.get("result") or {}
            error = message.get("error") or {}
            raise AgentError(
                f"{self._board}: {error.get('message', 'unknown agent error')}",
                error.get("fix", ""),
                code=error.get("code", "internal"),
            )

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
