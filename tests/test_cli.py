"""The command line a user types: help, version, and one clear line for bad input."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgeprof import __version__
from edgeprof.cli import cli
from tests.conftest import run_cli


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


COMMANDS = _commands(cli)


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_the_command_tree_is_complete() -> None:
    """The commands the README and the issues promise exist (a renamed or lost command fails here)."""
    promised = {("compress",), ("profile",), ("inspect",), ("results", "list"), ("results", "show"),
                ("results", "compare"), ("results", "export"), ("report",), ("check",), ("demo",),
                ("targets", "list"), ("targets", "show"), ("targets", "add"), ("targets", "check"),
                ("targets", "trust"), ("targets", "setup"), ("search", "run"), ("search", "show"),
                ("search", "export"), ("search", "list")}  # fmt: skip
    assert promised <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: tuple[str, ...]) -> None:
    done = CliRunner().invoke(cli, [*command, "--help"], prog_name="edgeprof")
    assert done.exit_code == 0, done.output
    assert "Usage: edgeprof" in done.output
    examples = done.output.split("Example", 1)
    assert len(examples) == 2, f"'edgeprof {' '.join(command)} --help' shows no example"
    assert "edgeprof " + " ".join(command) in examples[1]


def test_help_works_as_an_installed_command() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    assert all(name in done.stdout for name in ("compress", "profile", "inspect", "results", "report", "targets"))


def _one_error_line(done) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("edgeprof: error: ")
    assert "Traceback" not in done.stderr
    return lines[0]


def test_missing_model_is_one_clear_line(tmp_path: Path) -> None:
    line = _one_error_line(run_cli("profile", str(tmp_path / "missing.tflite")))
    assert "does not exist" in line


def test_file_that_is_no_model_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.tflite"
    path.write_text("these are my notes, not a model\n")
    line = _one_error_line(run_cli("profile", str(path)))
    assert "not a TFLite model" in line and "export" in line


def test_keras_file_given_to_profile_is_named(models: Path) -> None:
    line = _one_error_line(run_cli("profile", str(models / "cnn.h5")))
    assert "Keras .h5 model, not a TFLite model" in line


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_truncated_model_is_one_clear_line(models: Path, tmp_path: Path, keep: float) -> None:
    data = (models / "float.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: int(len(data) * keep)])
    line = _one_error_line(run_cli("profile", str(path)))
    assert "damaged" in line or "cannot load" in line


def test_scrambled_model_is_one_clear_line(models: Path, tmp_path: Path) -> None:
    data = bytearray((models / "float.tflite").read_bytes())
    for i in range(16, len(data), 7):  # keep the header, scramble the tables
        data[i] ^= 0x5A
    path = tmp_path / "scrambled.tflite"
    path.write_bytes(bytes(data))
    line = _one_error_line(run_cli("profile", str(path)))
    assert "damaged" in line or "cannot load" in line


def test_errors_keep_what_was_stored(models: Path, tmp_path: Path) -> None:
    ok = run_cli(
        "profile", str(models / "float.tflite"), "--runs", "10", "--min-seconds", "0.05", "--warmup-seconds", "0"
    )
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    _one_error_line(run_cli("profile", str(bad)))
    listed = run_cli("results", "list", "--json")
    assert listed.returncode == 0
    assert '"model_name": "float.tflite"' in listed.stdout


def test_unknown_target_is_one_clear_line(models: Path) -> None:
    line = _one_error_line(run_cli("profile", str(models / "float.tflite"), "--target", "kitchen-pi"))
    assert "kitchen-pi" in line
