"""``edgeprof profile --target A --target 'lab-*'``: live progress, one line a board, and the fleet's table.

On a terminal the lines are redrawn in place (stderr); in logs and pipes each board prints a line when its phase
changes, so CI output stays readable. stdout carries only the final table or the JSON.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import click

from .._table import ms, size
from ..fleet import profile_fleet
from ..targets import Target
from ._common import emit_json

_PHASES = {
    "connect": "connecting",
    "waiting": "waiting: another profile is using this board",
    "agent": "starting the agent",
    "load": "loading the model",
    "warmup": "warming up",
    "measure": "measuring",
    "idle": "measuring idle power",
    "predict": "predicting",
}


def describe(event: dict[str, Any]) -> str | None:
    """One board's state after ``event``, in a few words; None for events that change nothing visible."""
    kind = event.get("event")
    if kind == "phase":
        phase = str(event.get("phase"))
        return _PHASES.get(phase, phase)
    if kind == "upload":
        total = int(event.get("total") or 0)
        sent = int(event.get("sent") or 0)
        share = f"{100 * sent // total}%" if total else ""
        return f"uploading {event.get('what', 'file')} {share} of {size(total)}"
    if kind == "evicted":
        return f"evicted {event.get('files')} old files from the work directory"
    if kind == "done":
        result = event["result"]
        lat = result.latency_ms
        note = " (EMULATED: not a speed figure)" if result.device.get("emulated") else ""
        return f"done: median {ms(lat['median'])} ms, p90 {ms(lat['p90'])} ms, stored as #{result.id}{note}"
    if kind == "failed":
        return f"FAILED: {event.get('error')}"
    return None


class LiveLines:
    """One line a board on stderr: redrawn in place on a terminal, printed on change elsewhere."""

    def __init__(self, names: Sequence[str], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.names = list(names)
        self.width = max(len(n) for n in self.names)
        self.state = dict.fromkeys(self.names, "queued")
        self.started = time.monotonic()
        self.tty = self.stream.isatty()
        self._drawn = False
        self._last_upload_print: dict[str, str] = {}
        if self.tty:
            self._draw()

    def _line(self, name: str) -> str:
        text = f"{name:<{self.width}}  {self.state[name]}"
        return text[:200]

    def _draw(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{len(self.names)}F")  # back to the first line
        for name in self.names:
            self.stream.write("\x1b[2K" + self._line(name) + "\n")
        self.stream.flush()
        self._drawn = True

    def update(self, name: str, event: dict[str, Any]) -> None:
        text = describe(event)
        if text is None or text == self.state.get(name):
            return
        self.state[name] = text
        if self.tty:
            self._draw()
            return
        if event.get("event") == "upload":  # in logs, only the start and the end of an upload
            sent, total = event.get("sent"), event.get("total")
            if sent not in (0, total):
                return
        stamp = time.monotonic() - self.started
        self.stream.write(f"[{stamp:6.1f} s] {self._line(name)}\n")
        self.stream.flush()


def run_fleet(
    model: str,
    targets: Sequence[Target],
    *,
    as_json: bool,
    store: str,
    quiet: bool = False,
    **profile_kwargs: Any,
) -> int:
    """Profile on every target; print the table (or JSON); return the exit code (0 only when every board ran)."""
    lines = None if quiet else LiveLines([t.name for t in targets])
    fleet = profile_fleet(
        model,
        list(targets),
        store=store,
        on_progress=(lines.update if lines is not None else None),
        **profile_kwargs,
    )
    if as_json:
        emit_json(fleet.to_dict())
    else:
        click.echo(fleet.summary())
    if not fleet.ok:
        failed = ", ".join(o.target for o in fleet.failures)
        click.echo(
            f"edgeprof: error: {len(fleet.failures)} of {len(fleet.outcomes)} boards failed ({failed}); "
            "the other results are stored",
            err=True,
        )
        return 1
    return 0
