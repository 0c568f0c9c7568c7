"""What every command shares: error reporting, --json output, the --store option."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import EdgeprofError


class Group(click.Group):
    """Turns an :class:`EdgeprofError` into one line on stderr and its exit code; Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeprofError as exc:
            click.echo(f"edgeprof: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("edgeprof: interrupted", err=True)
            ctx.exit(130)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def progress_printer(enabled: bool = True) -> Any:
    """Progress lines go to stderr, so stdout stays clean for --json and pipes."""
    if not enabled:
        return None

    def say(message: str) -> None:
        click.echo(message, err=True)

    return say


def store_option(function: Any) -> Any:
    return click.option(
        "--store",
        "store",
        default="default",
        show_default=False,
        envvar="EDGEPROF_STORE",
        help="Results store: a SQLite file or a database URL. [default: ./.edgeprof/results.db, or $EDGEPROF_STORE]",
    )(function)


def json_option(function: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(function)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
