"""The ``edgeprof`` command line: a thin layer over the Python API, one command a file."""

from __future__ import annotations

import click

from .._version import __version__
from ._common import Group, verbose_from_env, verbose_option


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "-V", "--version", prog_name="edgeprof")
def cli() -> None:
    """edgeprof: compress Keras models, export LiteRT models and profile them on real boards.

    \b
    First run:
      edgeprof demo                         # train, compress and profile a digits CNN on this machine
      edgeprof compress model.keras -o out --data data.npz --prune 0.8 --quantize int8
      edgeprof profile out/model.tflite     # on the built-in 'local' target
      edgeprof results list
    """


def _register() -> None:
    from . import check, compress, demo, inspect, profile, report, results, search, sensitivity, targets

    for module in (compress, sensitivity, search, profile, results, demo, inspect, report, check, targets):
        cli.add_command(module.command)

    def add_verbose(command: click.Command) -> None:
        command.params.append(verbose_option())
        for sub in getattr(command, "commands", {}).values():
            add_verbose(sub)

    add_verbose(cli)


_register()


def main() -> None:
    verbose_from_env()
    cli(prog_name="edgeprof")
