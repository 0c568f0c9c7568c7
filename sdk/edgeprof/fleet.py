"""Profile models on many boards at once, as if the fleet were one machine.

result = edgeprof.profile_fleet("model.tflite", ["lab-*"], runs=100)
print(result.summary())
replicated = edgeprof.profile_fleet(["a.tflite", "b.tflite"], ["lab-*"], repeat=5)  # per board: a, b, a, b, ...

Each board runs in its own thread (the work is waiting on the network and on the boards, not on the host's CPU);
each board's result is stored the moment it arrives, so a later failure elsewhere loses nothing; a board that fails
is reported with its reason while the others finish. The model and data are checked once, before any board is
touched: a missing model is one error, not one failure per board. One profile runs on a board at a time, also
across processes (see :func:`edgeprof.deploy.board_lock`), so two fleets that share a board take turns on it.
With ``repeat=N`` each board measures each model in N fresh agent processes over one connection
(:func:`edgeprof.profile.run_on_board`), one group per model and board.
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
from .profile import ProfileGroup, ProfileOptions, ProfileResult, _options, check_work, run_on_board
from .progress import Progress, ProgressHandler
from .targets import Target, select_targets

#: ``on_event(target_name, event)``: the agent's events, the host's phases (connect, waiting, upload, agent),
#: then ``{"event": "done", "result": ...}``, ``{"event": "failed", "error": ...}`` or ``{"event": "interrupted"}``.
FleetEvents = Callable[[str, dict[str, Any]], None]

log = logging.getLogger("edgeprof.fleet")

INTERRUPTED = "interrupted (Ctrl-C): the agent was stopped, nothing was stored for this board"
INTERRUPTED_AFTER = "interrupted (Ctrl-C): the agent was stopped"


@dataclass
class BoardOutcome:
    """What happened on one board: its groups (one per model; one run each without ``repeat``), or the reason it
    failed (``groups`` then hold what was measured and stored before)."""

    target: str
    groups: list[ProfileGroup] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def result(self) -> ProfileResult | None:
        """The run of a one-model, one-process profile (None if it failed)."""
        if self.error is not None or not self.groups or not self.groups[0].runs:
            return None
        return self.groups[0].runs[0]

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.groups)

    @property
    def status(self) -> str:
        return "ok" if self.ok else "interrupted" if self.interrupted else "FAILED"

    def to_dict(self) -> dict[str, Any]:
        single = len(self.groups) == 1 and self.groups[0].planned == 1
        return {
            "target": self.target,
            "ok": self.ok,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "result": self.result.to_dict() if self.result is not None and single else None,
            "groups": [g.to_dict() for g in self.groups] if not single else [],
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
        """Every run measured, on every board."""
        return [r for o in self.outcomes for g in o.groups for r in g.runs]

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
            for g in o.groups:
                lat = g.latency_ms
                replicated = g.planned > 1
                stored = (
                    f"stored as g:{g.id}" if replicated and g.id is not None
                    else f"stored as #{g.runs[0].id}" if g.runs and g.runs[0].id is not None
                    else ""
                )  # fmt: skip
                notes = [stored]
                if any(r.device.get("emulated") for r in g.runs):
                    emulated = True
                    notes.insert(0, "EMULATED: not a speed figure")
                if replicated and g.spread is not None and len(g.runs) > 1:
                    notes.append(f"spread {g.spread.max_over_min:.1%}")
                rows.append(
                    [
                        o.target,
                        g.model.name,
                        o.status if o.ok else f"{o.status} after {len(g.runs)} of {g.planned}",
                        str((g.runs[0].device.get("machine") if g.runs else "") or ""),
                        f"{len(g.runs)}" if replicated else "1",
                        _table.ms(lat["median"]) if g.runs else "",
                        _table.ms(lat["p90"]) if g.runs else "",
                        str(lat["count"]) if g.runs else "",
                        "; ".join(n for n in notes if n),
                    ]
                )
            if not o.ok:
                rows.append([o.target, "", o.status, "", "", "", "", "", o.error or ""])
        ok = sum(1 for o in self.outcomes if o.ok)
        lines = [
            f"{self.model} on {len(self.outcomes)} boards in {self.wall_seconds:.1f} s: "
            f"{ok} ok, {len(self.failures)} failed",
            "",
            _table.table(
                ["target", "model", "status", "machine", "processes", "median ms", "p90 ms", "runs", "note"],
                rows,
                align="llllrrrrl",
            ),
        ]
        if any(g.planned > 1 for o in self.outcomes for g in o.groups):
            lines += ["", "With several processes, median and p90 are the medians of the runs' figures."]
        if emulated:
            lines += ["", "Emulated boards run 10-100x slower than real ones: their timings show correctness only."]
        return "\n".join(lines)


def profile_fleet(
    model: str | Path | Sequence[str | Path],
    targets: Sequence[str | Target] | str,
    *,
    repeat: int = 1,
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
    """Measure ``model`` (a path, or several: interleaved on each board) on every board named by ``targets``
    (names, globs, groups), concurrently; ``repeat=N``: N fresh agent processes per model and board.

    The models and data are checked first: a bad one raises (:class:`~edgeprof.errors.ModelError`,
    :class:`~edgeprof.errors.DataError`) before any board is touched. After that it never raises for a failing
    board: look at :attr:`FleetResult.ok` and :attr:`FleetResult.failures`. ``on_progress`` gets one
    :class:`~edgeprof.progress.Progress` task per board. Ctrl-C stops every board's agent and re-raises.
    """
    paths = [model] if isinstance(model, str | Path) else list(model)
    works = [check_work(m, inputs, eval_data) for m in paths]
    options = _options(options, option_overrides)
    chosen = _expand(targets)
    started = time.monotonic()
    name = ", ".join(str(p) for p in paths)
    fleet = FleetResult(model=name, outcomes=[BoardOutcome(t.name) for t in chosen])
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
        seen: list[ProfileGroup] = []
        try:
            outcome.groups = run_on_board(
                works,
                target,
                options,
                repeat=repeat,
                inputs=inputs,
                store=store,
                on_event=lambda event: report(target.name, event=event),
                on_progress=lambda step: report(target.name, step=step),
                wait_seconds=wait_seconds,
                keep=seen,
            )
        except EdgeprofError as exc:
            outcome.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one board's bug must not stop the others
            outcome.error = f"internal error ({type(exc).__name__}: {exc}); please report it"
        if outcome.error is not None:
            outcome.groups = [g for g in seen if g.runs]  # what was measured (and stored) before the failure
        outcome.seconds = time.monotonic() - t0
        if outcome.error is None:
            result = outcome.result or (outcome.groups[0] if outcome.groups else None)
            report(target.name, event={"event": "done", "source": "host", "result": result})
        elif interrupted.is_set():  # the error is our own doing: Ctrl-C closed the connection
            kept = sum(len(g.runs) for g in outcome.groups)
            outcome.interrupted = True
            outcome.error = (
                INTERRUPTED if not kept else f"{INTERRUPTED_AFTER} ({kept} run(s) measured before are stored)"
            )
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
