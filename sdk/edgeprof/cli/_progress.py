"""Progress bars for long work, on stderr so that stdout stays clean for --json and pipes.

A bar appears only when stderr is a terminal and the work takes long enough to be worth one; in CI logs and pipes
nothing is printed.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import click

Step = Callable[[int, int], None]


@contextlib.contextmanager
def bar(label: str, *, enabled: bool = True, delay: float = 0.3) -> Iterator[Step]:
    """Yield ``step(done, total)``; the bar shows once ``delay`` seconds have passed (fast work stays quiet)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _done, _total: None
        return
    started = time.monotonic()
    state: dict[str, object] = {}

    def step(done: int, total: int) -> None:
        progress = state.get("bar")
        if progress is None:
            if time.monotonic() - started < delay:
                return
            progress = click.progressbar(
                length=max(total, 1), label=label, file=sys.stderr, show_pos=True, show_eta=True
            ).__enter__()
            state["bar"] = progress
            state["done"] = 0
        progress.update(done - int(state["done"]))  # type: ignore[attr-defined]
        state["done"] = done

    try:
        yield step
    finally:
        progress = state.get("bar")
        if progress is not None:
            progress.__exit__(None, None, None)  # type: ignore[attr-defined]
