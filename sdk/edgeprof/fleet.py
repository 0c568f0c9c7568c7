"""Profile one model on many boards at once, as if the fleet were one machine.

result = edgeprof.profile_fleet("model.tflite", ["lab-*"], runs=100)
print(result.summary())

Each board runs in its own thread (the work is waiting on the network and on the boards, not on the host's CPU);
each board's result is stored the moment it arrives, so a later failure elsewhere loses nothing; a board that fails
is reported with its reason while the others finish. The model and data are checked once, before any board is
touched: a missing model is one error, not one failure per board. One profile runs on a board at a time, also
across processes (see :func:`edgeprof.deploy.board_lock`), so two fleets that share a board take turns on it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _table
from .deploy import DEFAULT_WAIT_SECONDS
from .errors import EdgeprofError
from .profile import ProfileOptions, ProfileResult, check_work, profile
from .progress import Progress, ProgressHandler
from .targets import Target, select_targets

#: ``on_event(target_name, event)``: the agent's events, the host's phases (connect, waiting, upload, agent),
#: then ``{"event": "done", "result": ...}``, ``{"event": "failed", "error": ...}`` or ``{"event": "interrupted"}``.
FleetEvents = Callable[[str, dict[str, Any]], None]

log = logging.getLogger("edgeprof.fleet")

INTERRUPTED = "interrupted (Ctrl-C): the agent was stopped, nothing was stored for this board"


@dataclass
class BoardOutcome:
    """What happened on one board: a stored result, or the reason it failed."""

    target: str
    result: ProfileResult | None = None
    error: str | None = None
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "interrupted" if self.interrupted else "FAILED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "result": self.result.to_dict() if self.result is not None else None,
        }


@dataclass
class FleetResult:
    """One model on several boards."""

    model: str
    outcomes: list[BoardOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def results(self) -> list[ProfileResult]:
        return [o.result for o in self.outcomes if o.result is not None]

    @property
    def failures(self) -> list[BoardOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "wall_seconds": round(self.wall_seconds, 3),
            "boards": [o.to_dict() for o in self.outcomes],
        }

    def summary(self) -> str:
        rows = []
        emulated = False
        for o in self.outcomes:
            if o.result is None:
                rows.append([o.target, o.status, "", "", "", "", o.error or ""])
                continue
            r = o.result
            lat = r.latency_ms
            note = f"stored as #{r.id}" if r.id is not None else ""
            if r.device.get("emulated"):
                emulated = True
                note = f"EMULATED: not a speed figure; {note}"
            rows.append(
                [
                    o.target,
                    "ok",
                    str(r.device.get("machine") or ""),
                    _table.ms(lat["median"]),
                    _table.ms(lat["p90"]),
                    str(lat["count"]),
                    note,
                ]
            )
        lines = [
            f"{self.model} on {len(self.outcomes)} boards in {self.wall_seconds:.1f} s: "
            f"{len(self.results)} ok, {len(self.failures)} failed",
            "",
            _table.table(["target", "status", "machine", "median ms", "p90 ms", "runs", "note"], rows),
        ]
        if emulated:
            lines += ["", "Emulated boards run 10-100x slower than real ones: their timings show correctness only."]
        return "\n".join(lines)


def profile_fleet(
    model: str | Path,
    targets: Sequence[str | Target] | str,
    *,
    options: ProfileOptions | None = None,
    inputs: str | Path | None = None,
    eval_data: str | Path | None = None,
    store: Any = "default",
    on_event: FleetEvents | None = None,
    on_progress: ProgressHandler | None = None,
    max_parallel: int | None = None,
    wait_seconds: float | None = DEFAULT_WAIT_SECONDS,
    **option_overrides: Any,
) -> FleetResult:
    """Measure ``model`` on every board named by ``targets`` (names, globs, groups), concurrently.

    The model and data are checked first: a bad one raises (:class:`~edgeprof.errors.ModelError`,
    :class:`~edgeprof.errors.DataError`) before any board is touched. After that it never raises for a failing
    board: look at :attr:`FleetResult.ok` and :attr:`FleetResult.failures`. ``on_progress`` gets one
    :class:`~edgeprof.progress.Progress` task per board. Ctrl-C stops every board's agent and re-raises.
    """
    check_work(model, inputs, eval_data)
    chosen = _expand(targets)
    started = time.monotonic()
    fleet = FleetResult(model=str(model), outcomes=[BoardOutcome(t.name) for t in chosen])
    report_lock = threading.Lock()
    interrupted = threading.Event()

    def report(name: str, event: dict[str, Any] | None = None, step: Progress | None = None) -> None:
        with report_lock:  # one consumer at a time: it draws the live lines
            if event is not None and on_event is not None:
                on_event(name, event)
            if step is not None and on_progress is not None:
                on_progress(step)

    def run(index: int, target: Target) -> None:
        outcome = fleet.outcomes[index]
        t0 = time.monotonic()
        try:
            outcome.result = profile(
                model,
                target,
                options=options,
                inputs=inputs,
                eval_data=eval_data,
                store=store,
                on_event=lambda event: report(target.name, event=event),
                on_progress=lambda step: report(target.name, step=step),
                wait_seconds=wait_seconds,
                **option_overrides,
            )
        except EdgeprofError as exc:
            outcome.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one board's bug must not stop the others
            outcome.error = f"internal error ({type(exc).__name__}: {exc}); please report it"
        outcome.seconds = time.monotonic() - t0
        if outcome.result is not None:
            report(target.name, event={"event": "done", "source": "host", "result": outcome.result})
        elif interrupted.is_set():  # the error is our own doing: Ctrl-C closed the connection
            outcome.interrupted, outcome.error = True, INTERRUPTED
            log.info("%s: %s", target.name, INTERRUPTED)
            report(
                target.name,
                event={"event": "interrupted", "source": "host"},
                step=Progress(target.name, "interrupted", "interrupted", final=True),
            )
        else:
            log.info("%s: FAILED: %s", target.name, outcome.error)
            report(
                target.name,
                event={"event": "failed", "source": "host", "error": outcome.error},
                step=Progress(target.name, "failed", f"FAILED: {outcome.error}", final=True),
            )

    from .deploy import abort_all, reset_abort

    reset_abort()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_parallel or len(chosen), thread_name_prefix="board")
    try:
        futures = [pool.submit(run, i, t) for i, t in enumerate(chosen)]
        pending = set(futures)
        while pending:  # short waits keep the main thread responsive to Ctrl-C
            _, pending = concurrent.futures.wait(pending, timeout=0.2)
    except KeyboardInterrupt:
        interrupted.set()  # first, so that the boards' errors from the closed connections read "interrupted"
        abort_all()  # closes every connection: each board's reaper kills its agent
        pool.shutdown(wait=True, cancel_futures=True)
        reset_abort()  # every board of this fleet has stopped; later work in this process may connect again
        raise
    pool.shutdown(wait=True)
    fleet.wall_seconds = time.monotonic() - started
    return fleet


def _expand(targets: Sequence[str | Target] | str | Iterable[str | Target]) -> list[Target]:
    if isinstance(targets, str | Target):
        targets = [targets]
    named = [t for t in targets if isinstance(t, str)]
    given = [t for t in targets if isinstance(t, Target)]
    chosen = select_targets(named) if named else []
    return given + [t for t in chosen if t.name not in {g.name for g in given}]
