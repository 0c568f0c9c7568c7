"""``edgeprof profile --target A --target 'lab-*'``: one live line a board, then the fleet's table.

On a terminal each board has a progress line (its phase, the bytes of an upload, the runs measured) drawn on stderr;
in pipes and CI logs nothing but the table (stdout) and, if boards failed, one error line (stderr) is printed.
``--verbose`` logs each board's phases with timestamps instead. stdout carries only the final table or the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..fleet import profile_fleet
from ..progress import Progress
from ..targets import Target
from . import _progress
from ._common import emit_json


def run_fleet(
    model: str | list[str],
    targets: Sequence[Target],
    *,
    as_json: bool,
    store: str,
    mlflow_uri: str | None = None,
    **profile_kwargs: Any,
) -> int:
    """Profile on every target; print the table (or JSON); return the exit code (0 only when every board ran)."""
    with _progress.display(not as_json) as shown:
        if shown is not None:
            for target in targets:
                shown(Progress(target.name, "queued", "queued"))
        fleet = profile_fleet(model, list(targets), store=store, on_progress=shown, **profile_kwargs)
    if as_json:
        emit_json(fleet.to_dict())
    else:
        click.echo(fleet.summary())
    from .profile import to_mlflow, warn_meters

    groups = [g for o in fleet.outcomes for g in o.groups]
    warn_meters(groups)
    if mlflow_uri:
        to_mlflow(groups, mlflow_uri, store)
    if not fleet.ok:
        failed = ", ".join(o.target for o in fleet.failures)
        stored = sum(1 for r in fleet.results if r.id is not None)
        kept = f"{stored} run(s) are stored" if stored else "no result was stored"
        click.echo(
            f"edgeprof: error: {len(fleet.failures)} of {len(fleet.outcomes)} boards failed ({failed}); {kept}",
            err=True,
        )
        if as_json:  # the table, which names each board's error, is not printed: say why on stderr
            for outcome in fleet.failures:
                why = outcome.error or "; ".join(g.error for g in outcome.groups if g.error) or outcome.status
                click.echo(f"  {outcome.target}: {why}", err=True)
        return 1
    return 0
