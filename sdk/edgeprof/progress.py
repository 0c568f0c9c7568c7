"""Progress of long work as typed events: the SDK reports, a front end draws.

The Python API is quiet by default. Pass ``on_progress`` to :func:`edgeprof.profile`, :func:`edgeprof.profile_fleet`,
:func:`edgeprof.provision.setup_board` or wrap :func:`edgeprof.compress` in :func:`reporting` to receive
:class:`Progress` events; the command line draws them as progress bars on a terminal (``cli/_progress.py``) and
draws nothing in pipes and CI logs.

One *task* is one line of a display: a board's name while it is profiled or set up, ``compress`` while a model
trains. Each event replaces the task's previous state; ``final`` closes the task.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import _table


@dataclass(frozen=True)
class Progress:
    """The state of one task of long work."""

    task: str  # the display line: a target name, or "compress"
    phase: str  # a stable word: connect, waiting, upload, agent, idle, load, warmup, measure, predict, setup, train,
    #               done, failed, interrupted
    message: str  # what a person reads: "uploading model", "measuring", "prune: epoch 2/5"
    done: float | None = None  # how far the phase is, in ``unit`` (None: the phase has no measurable amount)
    total: float | None = None  # how far it will go (None: unknown)
    unit: str = ""  # "B", "runs", "batches" or ""
    final: bool = False  # the task is over (done, failed or interrupted)

    def text(self) -> str:
        """One line for a log: the message and, where known, how far it got."""
        if self.done is None:
            return self.message
        if self.unit == "B":
            amount = f"{_table.size(int(self.done))}" + (f" of {_table.size(int(self.total))}" if self.total else "")
        else:
            amount = f"{self.done:,.0f}" + (f"/{self.total:,.0f}" if self.total else "") + f" {self.unit}".rstrip()
        return f"{self.message} ({amount})"


ProgressHandler = Callable[[Progress], None]

#: Board phases as a person reads them (host phases and the agent's ``phase`` events).
PHASES = {
    "connect": "connecting",
    "agent": "starting the agent",
    "idle": "measuring idle power",
    "load": "loading the model",
    "warmup": "warming up",
    "measure": "measuring",
    "predict": "predicting",
    "peak": "measuring the board's peak",
    "ops": "timing each operator",
}


def from_board_event(task: str, event: dict[str, Any], options: Any = None) -> Progress | None:
    """The :class:`Progress` a board event means (``deploy.Board`` and agent events), or None if it changes nothing.

    ``options`` (a :class:`~edgeprof.profile.ProfileOptions`) turns the agent's ``progress`` ticks into a bar.
    """
    kind = event.get("event")
    if kind == "phase":
        phase = str(event.get("phase"))
        if phase == "waiting":
            return Progress(task, "waiting", f"waiting: {event.get('holder') or 'another profile uses this board'}")
        return Progress(task, phase, PHASES.get(phase, phase))
    if kind == "upload":
        what = event.get("what", "file")
        return Progress(task, "upload", f"uploading {what}", event.get("sent"), event.get("total"), "B")
    if kind == "progress" and event.get("phase") == "measure":
        runs, seconds = int(event.get("runs") or 0), float(event.get("seconds") or 0.0)
        return Progress(task, "measure", "measuring", runs, expected_runs(options, runs, seconds), "runs")
    if kind == "progress" and event.get("phase") == "ops":
        if event.get("step") == "load":
            return Progress(task, "ops", "loading the operators", event.get("done"), event.get("total"), "operators")
        rounds = getattr(options, "ops_rounds", None)
        return Progress(task, "ops", "timing each operator", event.get("rounds"), rounds, "rounds")
    if kind == "evicted":
        return Progress(task, "evict", f"evicted {event.get('files')} old files from the work directory")
    return None


def expected_runs(options: Any, runs: int, seconds: float) -> float | None:
    """How many runs the measurement will end with, at the rate seen so far.

    The agent stops once it has ``runs`` runs and ``min_seconds`` have passed, or at ``max_seconds``: a fast model
    runs for ``min_seconds`` (far more runs than asked for), a slow one until ``runs`` or ``max_seconds``.
    """
    if options is None or runs <= 0 or seconds <= 0:
        return getattr(options, "runs", None)
    rate = runs / seconds
    return max(runs, min(max(options.runs, rate * options.min_seconds), rate * options.max_seconds))


# -- a handler for code that cannot take one as an argument (Keras callbacks deep inside compress) ------------------

_current: contextvars.ContextVar[ProgressHandler | None] = contextvars.ContextVar("edgeprof_progress", default=None)


@contextlib.contextmanager
def reporting(handler: ProgressHandler | None) -> Iterator[None]:
    """Send the progress of the work done inside this block (in this thread) to ``handler``."""
    token = _current.set(handler)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> ProgressHandler | None:
    """The handler :func:`reporting` installed, if any."""
    return _current.get()


def report(event: Progress) -> None:
    """Hand ``event`` to the current handler; nothing happens when nobody asked for progress."""
    handler = _current.get()
    if handler is not None:
        handler(event)
