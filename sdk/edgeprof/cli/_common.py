"""What every command shares: error reporting, --verbose logging, --json output, the --store option."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click

from ..errors import EdgeprofError


class _Elapsed(logging.Formatter):
    """``[  1.234 s] message``: seconds since edgeprof started, so a log reads as a timeline."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"[{record.relativeCreated / 1000:8.3f} s] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def enable_verbose() -> None:
    """Log edgeprof's debug messages to stderr: every remote command (as the board's shell gets it), its duration
    and exit code, connects and retries with their reason, bytes uploaded per file, agent phases and answers."""
    logger = logging.getLogger("edgeprof")
    if any(getattr(h, "_edgeprof_verbose", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Elapsed())
    handler._edgeprof_verbose = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def verbose_from_env() -> None:
    """``EDGEPROF_DEBUG=1`` does what ``--verbose`` does, for runs whose command line one cannot change."""
    if os.environ.get("EDGEPROF_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
        enable_verbose()


def _verbose_callback(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        enable_verbose()


def verbose_option() -> click.Option:
    """``-v/--verbose``, accepted before the command and after it (``edgeprof -v profile`` = ``profile ... -v``)."""
    return click.Option(
        ["-v", "--verbose"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_verbose_callback,
        help="Log every remote command, its duration and exit code, retries and bytes sent (stderr). "
        "Also: EDGEPROF_DEBUG=1.",
    )


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


def mlflow_option(function: Any) -> Any:
    return click.option(
        "--mlflow",
        "mlflow_uri",
        default=None,
        metavar="URI",
        envvar="EDGEPROF_MLFLOW_URI",
        help="Also log the run to this MLflow tracking server (needs 'pip install edgeprof[mlflow]'); the local "
        "store keeps it either way. [$EDGEPROF_MLFLOW_URI]",
    )(function)


def said_to_mlflow(what: str, run_id: str, uri: str) -> None:
    click.echo(f"logged {what} to MLflow run {run_id} at {uri}", err=True)
