"""Progress bars on a terminal, drawn with rich from the SDK's :class:`~edgeprof.progress.Progress` events.

Only when stderr is a terminal: in pipes, CI logs and with ``--json`` nothing is drawn (stdout stays clean for
tables and JSON in any case). With ``--verbose`` the log is the progress, so no bars either: the two would garble
each other. Every task is one line (a board, ``compress``): a spinner, its name, what it does, and a bar with the
amount when the amount is known (bytes of an upload, measured runs, training batches).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..progress import Progress

Step = Callable[[int, int], None]


def on_terminal(enabled: bool = True) -> bool:
    """Whether to draw progress: asked for, stderr is a terminal that can redraw, and no --verbose log runs."""
    if not enabled or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        return False
    return not logging.getLogger("edgeprof").isEnabledFor(logging.DEBUG)


def _columns() -> list[Any]:
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Bar(BarColumn):
        def render(self, task: Any) -> Any:  # a bar only for phases with a known amount; no pulsing bars
            return super().render(task) if task.fields.get("bar") else Text("")

    class Amount(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from .._table import size

            unit = task.fields.get("unit", "")
            if not task.fields.get("amount"):
                return Text("")
            known = task.fields.get("bar")
            if unit == "B":
                return Text(size(int(task.completed)) + (f" of {size(int(task.total))}" if known else ""))
            total = f"/{task.total:,.0f}" if known else ""
            return Text(f"{task.completed:,.0f}{total} {unit}".rstrip())

    return [
        SpinnerColumn(finished_text="[green]•[/]"),
        TextColumn("{task.fields[name]}", style="bold"),
        TextColumn("{task.description}"),
        Bar(bar_width=24),
        Amount(),
        TimeElapsedColumn(),
    ]


class Display:
    """Live progress lines on stderr, one a task; feed it :class:`Progress` events (thread-safe, as rich is)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress as Bars

        self.console = Console(stderr=True)
        self._bars = Bars(*_columns(), console=self.console, transient=True, refresh_per_second=8)
        self._tasks: dict[str, Any] = {}
        self._phases: dict[str, str] = {}

    def __enter__(self) -> Display:
        self._bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.__exit__(None, None, None)

    def __call__(self, event: Progress) -> None:
        task = self._tasks.get(event.task)
        known = event.done is not None and event.total is not None
        fields = {"unit": event.unit, "name": event.task, "amount": event.done is not None, "bar": known}
        total = event.total if known else None  # None leaves rich's total as it was; the "bar" field hides it
        if task is None:
            task = self._bars.add_task(event.message, total=total, completed=event.done or 0, **fields)
            self._tasks[event.task] = task
        elif self._phases.get(event.task) != event.phase:  # a new phase: its own elapsed time, spinner running
            self._bars.reset(task, total=total, completed=event.done or 0, description=event.message, **fields)
        else:
            self._bars.update(task, description=event.message, total=total, completed=event.done or 0, **fields)
        self._phases[event.task] = event.phase
        if event.final:  # the spinner stops; a bar stays hidden (the "bar" field)
            self._bars.update(task, total=1, completed=1)
            self._bars.stop_task(task)

    def say(self, line: str) -> None:
        """A line of text above the live lines (it stays when they go)."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def display(enabled: bool = True) -> Iterator[Display | None]:
    """A :class:`Display` on a terminal, else None (the caller then reports nothing)."""
    if not on_terminal(enabled):
        yield None
        return
    with Display() as shown:
        yield shown


def say_line(shown: Display | None) -> Callable[[str], None]:
    """Print a line on stderr: above the bars when they are drawn, plainly otherwise."""
    if shown is not None:
        return shown.say

    def plain(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return plain


@contextlib.contextmanager
def bar(label: str, *, enabled: bool = True, delay: float = 0.3) -> Iterator[Step]:
    """Yield ``step(done, total)`` for a simple counted loop; the bar shows once ``delay`` seconds have passed."""
    if not on_terminal(enabled):
        yield lambda _done, _total: None
        return
    started = time.monotonic()
    state: dict[str, Any] = {}

    def step(done: int, total: int) -> None:
        if "display" not in state:
            if time.monotonic() - started < delay:
                return
            state["display"] = Display().__enter__()
        state["display"](Progress(label, "run", "", done, total))

    try:
        yield step
    finally:
        if "display" in state:
            state["display"].__exit__(None, None, None)
