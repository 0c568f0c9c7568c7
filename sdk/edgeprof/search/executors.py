"""Where trials run: in this process (the default), or as Ray tasks across a Ray cluster.

Both run the same two functions of :mod:`edgeprof.search.trial` (compress, then measure) and hand back an
:class:`~edgeprof.search.trial.Outcome`; the study on the host asks the sampler, tells it the results and keeps
everything in the store, so the two give the same study.

**Ray.** A trial is a task that takes one CPU (``SPREAD``: training trials spread over the cluster's nodes); once
compressed, it measures with one task per board, and each task needs one unit of that board's custom resource,
``edgeprof-board:NAME``. A board's resource is declared by the node that reaches the board
(``ray start --resources '{"edgeprof-board:pi5": 1}'``), once in the cluster, so a board takes one trial at a time
cluster-wide and the node it hangs off measures it. Without ``--ray-address`` a Ray instance is started on this
machine with every target's resource. Workers write to the same results store (a shared disk, or PostgreSQL for a
cluster of machines) and need edgeprof installed; the study folder's path is the same string on every node, and the
model files travel as bytes. Ctrl-C cancels the tasks (their processes are killed, which stops their agents: the
board's reaper kills an agent whose connection closes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import Any

from ..errors import EdgeprofError
from .trial import Board, Context, Outcome, measure_trial, run_inline

log = logging.getLogger("edgeprof.search")

RESOURCE_PREFIX = "edgeprof-board:"


class ExecutorError(EdgeprofError):
    """The executor cannot run the trials (Ray missing, a board no node declares)."""


def board_resource(name: str) -> str:
    return f"{RESOURCE_PREFIX}{name}"


class InProcess:
    """One trial at a time, here: compress (which uses every core) then measure on the boards in parallel."""

    name = "in-process"
    slots = 1

    def __init__(self, say: Any = None, on_progress: Any = None) -> None:
        self._done: list[Outcome] = []
        self._say = say
        self._on_progress = on_progress

    def submit(self, ctx: Context, number: int, recipe: dict[str, Any], baseline: bytes) -> None:
        say = None
        if self._say is not None:

            def say(msg: str) -> None:
                if not msg.startswith("source:"):  # the same line for every trial: said once, by the baseline
                    self._say(f"trial {number}: {msg}")

        outcome = run_inline(ctx, number, recipe, baseline, say=say, on_progress=self._on_progress)
        outcome.node = socket.gethostname()
        self._done.append(outcome)

    def wait(self) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def cancel(self) -> None:
        """Nothing runs in the background: Ctrl-C already stopped the trial (and its agents) where it was."""

    def close(self) -> None:
        pass


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray", "pip install 'edgeprof[ray]'") from None
    return ray


def _forwarded_env() -> dict[str, str]:
    """The settings a worker must share with this process: edgeprof's own (store, config, board cache and locks)."""
    return {k: v for k, v in os.environ.items() if k.startswith("EDGEPROF_") or k in ("TF_CPP_MIN_LOG_LEVEL",)}


def _ray_measure(ctx: Context, number: int, tflite: bytes, baseline: bytes, target_index: int) -> Board:
    """A Ray task: one board, holding its resource."""
    import ray

    target = ctx.targets[target_index]
    node = ray.get_runtime_context().get_node_id()
    try:
        (board,) = measure_trial(ctx, number, tflite, baseline, targets=[target])
    except EdgeprofError as exc:
        board = Board(target.name, error=f"profile: {exc}")
    board.node = node
    return board


def _ray_trial(ctx: Context, number: int, recipe: dict[str, Any], baseline: bytes) -> Outcome:
    """A Ray task: compress on this node, then one measuring task per board (each holding its board's resource)."""
    import ray

    from .trial import compress_trial

    outcome = Outcome(number, node=ray.get_runtime_context().get_node_id())
    try:
        outcome.compressed = compress_trial(ctx, number, recipe)
    except EdgeprofError as exc:
        outcome.error = f"compress: {exc}"
        return outcome
    measure = ray.remote(_ray_measure)
    refs = [
        measure.options(num_cpus=0, max_retries=0, resources={board_resource(t.name): 1}).remote(
            ctx, number, outcome.compressed.tflite, baseline, i
        )
        for i, t in enumerate(ctx.targets)
    ]
    outcome.boards = list(ray.get(refs))
    return outcome


class RayExecutor:
    """Trials as Ray tasks (see the module's doc); ``parallel`` trials in flight (default: the cluster's CPUs)."""

    name = "ray"

    def __init__(self, address: str | None, targets: list[Any], parallel: int | None = None) -> None:
        ray = _ray()
        self._ray = ray
        names = [t.name for t in targets]
        kwargs: dict[str, Any] = {
            "runtime_env": {"env_vars": _forwarded_env()},
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if address:
            _reachable(address)  # Ray itself retries an address nobody listens on for minutes
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:  # a Ray instance of our own on this machine, declaring every board
                ray.init(resources={board_resource(n): 1 for n in names}, include_dashboard=False, **kwargs)
        except ray.exceptions.AuthenticationError as exc:
            raise ExecutorError(
                f"the Ray cluster at {address} refused this client: {_first_line(exc)}",
                "use the cluster's token: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH (or ~/.ray/auth_token) as its "
                "nodes have them",
            ) from None
        except (ConnectionError, RuntimeError) as exc:
            raise ExecutorError(
                f"cannot reach the Ray cluster at {address}: {_first_line(exc)}",
                "start it (ray start --head) or fix --ray-address",
            ) from None
        self.address = address or "a local Ray instance"
        resources = ray.cluster_resources()
        missing = [n for n in names if resources.get(board_resource(n), 0) < 1]
        if missing:
            self.close()
            declared = sorted(k[len(RESOURCE_PREFIX) :] for k in resources if k.startswith(RESOURCE_PREFIX))
            raise ExecutorError(
                f"no node of the Ray cluster at {address} declares board(s) {', '.join(missing)} "
                f"(declared: {', '.join(declared) or 'none'})",
                "on the node that reaches each board: ray start --address ADDRESS --resources "
                + "'{"
                + ", ".join(f'"{board_resource(n)}": 1' for n in missing)
                + "}'",
            )
        cpus = int(resources.get("CPU", 1))
        self.slots = max(1, parallel or cpus)
        self.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        self._task = ray.remote(_ray_trial)
        self._running: dict[Any, int] = {}

    def submit(self, ctx: Context, number: int, recipe: dict[str, Any], baseline: bytes) -> None:
        ref = self._task.options(num_cpus=1, max_retries=0, scheduling_strategy="SPREAD").remote(
            ctx, number, recipe, baseline
        )
        self._running[ref] = number

    def wait(self) -> list[Outcome]:
        ray = self._ray
        if not self._running:
            return []
        ready: list[Any] = []
        while not ready:  # short waits: Ctrl-C reaches this process between them
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=0.5)
        done = []
        for ref in ready:
            number = self._running.pop(ref)
            try:
                done.append(ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a worker or node that died fails its trial, not the study
                done.append(Outcome(number, error=f"the Ray task failed: {type(exc).__name__}: {_first_line(exc)}"))
        return done

    def cancel(self) -> None:
        for ref in list(self._running):
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True, recursive=True)
        deadline = time.monotonic() + 10
        while self._running and time.monotonic() < deadline:
            ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=0.5)
            for ref in ready:
                self._running.pop(ref, None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.shutdown()


def _reachable(address: str) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) nobody answers on is one line now, not minutes of Ray's retries."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ExecutorError(
            f"nothing answers at the Ray address {address} ({exc.strerror or exc})",
            "start the cluster's head there (ray start --head --port PORT) or fix --ray-address",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


__all__ = ["ExecutorError", "InProcess", "RayExecutor", "board_resource"]
