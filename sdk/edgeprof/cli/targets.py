"""``edgeprof targets``: list, show, add, check, trust and set up boards."""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path
from typing import Any

import click

from .. import _toml
from .. import targets as targets_mod
from .._table import size, table
from ..errors import EdgeprofError, TargetError
from ..targets import LOCAL, NAME_PATTERN, Target, board_kinds, config_path, load_config, resolve_target
from ._common import emit_json, json_option


def _use_config(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        targets_mod.use_config(value)


def config_option(function: Any) -> Any:
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_use_config,
        help="Config file with [targets.NAME] tables. [default: $EDGEPROF_CONFIG, else ./edgeprof.toml]",
    )(function)


@click.group("targets")
def command() -> None:
    """Boards to profile on: list, show, add, check, trust and set up.

    \b
    Targets live in edgeprof.toml (--config, $EDGEPROF_CONFIG, or ./edgeprof.toml):
      [targets.kitchen-pi]
      kind = "rpi4"
      host = "192.168.1.20"      # or a ~/.ssh/config alias
      user = "pi"
    \b
    Examples:
      edgeprof targets add kitchen-pi --kind rpi4 --host 192.168.1.20 --user pi
      edgeprof targets trust kitchen-pi
      edgeprof targets setup kitchen-pi
      edgeprof targets check
    """


def _address(t: Target) -> str:
    if t.transport == "local":
        return "this machine"
    if t.transport == "adb":
        return f"adb {t.serial or '(only device)'}"
    user = f"{t.user}@" if t.user else ""
    port = f":{t.port}" if t.port else ""
    return f"{user}{t.host}{port}"


@command.command("list")
@config_option
@json_option
def list_command(as_json: bool) -> None:
    """List the targets of the config file (and the built-in 'local').

    \b
    Examples:
      edgeprof targets list
      edgeprof targets list --config lab.toml --json
    """
    config = load_config()
    all_targets = targets_mod.known_targets(config)
    if as_json:
        emit_json({"config": str(config.path), "targets": [t.to_dict() for t in all_targets.values()],
                   "groups": {g: list(m) for g, m in config.groups.items()}})  # fmt: skip
        return
    rows = [
        [t.name, t.kind, t.transport, _address(t), ",".join(t.groups), t.description[:50]] for t in all_targets.values()
    ]
    click.echo(table(["target", "kind", "transport", "address", "groups", "description"], rows))
    if not config.targets:
        click.echo(f"\n{config.path} defines no boards yet; add one with 'edgeprof targets add NAME --host HOST'")


@command.command("show")
@click.argument("name")
@config_option
@json_option
def show_command(name: str, as_json: bool) -> None:
    """Show a target's effective settings: its board profile, its config, and what ~/.ssh/config adds.

    \b
    Examples:
      edgeprof targets show kitchen-pi
    """
    target = resolve_target(name)
    data = target.to_dict()
    if target.transport == "ssh":
        from ..transports.ssh import default_known_hosts, resolve_endpoint

        endpoint = resolve_endpoint(
            target.host or target.name,
            port=target.port,
            user=target.user,
            identity_file=target.identity_file,
            ssh_config=target.ssh_config,
            proxy_jump=target.proxy_jump,
        )
        data["ssh"] = {
            "hostname": endpoint.hostname,
            "port": endpoint.port,
            "user": endpoint.user,
            "identity_files": list(endpoint.identity_files) or ["ssh-agent, then ~/.ssh/id_*"],
            "proxy_jump": list(endpoint.proxy_jump),
            "from_ssh_config": list(endpoint.from_ssh_config),
            "known_hosts": target.known_hosts or str(default_known_hosts()),
            "host_key_name": endpoint.host_key_name,
        }
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if value in (None, {}, [], (), ""):
            continue
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k:16} {v}")
        else:
            click.echo(f"{key:18} {value}")


def _toml_string(value: str) -> str:
    return _toml.dumps_string(value)


@command.command("add")
@click.argument("name")
@click.option("--kind", default="linux", show_default=True, help=f"Board profile: {', '.join(board_kinds())}.")
@click.option("--host", default=None, help="Address, DNS name or ~/.ssh/config alias.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="SSH port [22, or ~/.ssh/config's].")
@click.option("--user", default=None, help="Login name [~/.ssh/config's, else yours].")
@click.option("--identity-file", default=None, help="Private key file [ssh-agent, then ~/.ssh/id_*].")
@click.option("--known-hosts", default=None, help="known_hosts file [~/.ssh/known_hosts].")
@click.option("--python", default=None, help="Python on the board [the venv of 'targets setup', else python3].")
@click.option("--workdir", default=None, help="Work directory on the board [~/.edgeprof].")
@click.option("--transport", type=click.Choice(["ssh", "adb"]), default=None, help="[the board profile's]")
@click.option("--serial", default=None, help="adb: the device serial ('adb devices').")
@config_option
@json_option
def add_command(name: str, kind: str, as_json: bool, **settings: Any) -> None:
    """Add a target to the config file (created if missing). Nothing is sent to the board.

    \b
    Examples:
      edgeprof targets add kitchen-pi --kind rpi4 --host 192.168.1.20 --user pi
      edgeprof targets add orin --kind jetson-orin-nano --host orin    # an alias from ~/.ssh/config
      edgeprof targets add phone --kind android-termux --serial R58M123ABC
    """
    path = config_path()
    config = load_config(path)
    if not NAME_PATTERN.fullmatch(name):
        raise TargetError(f"target name {name!r} is not allowed", "use letters, digits, '.', '_' and '-' (at most 63)")
    if name == LOCAL or name in config.targets or name in config.groups:
        raise TargetError(f"{path} already has a target or group named {name!r}", "choose another name")
    lines = [f"[targets.{name}]", f"kind = {_toml_string(kind)}"]
    for key, value in settings.items():
        if value is not None:
            lines.append(f"{key} = {value}" if isinstance(value, int) else f"{key} = {_toml_string(value)}")
    before = path.read_text() if path.is_file() else None
    text = (before.rstrip("\n") + "\n\n" if before else "") + "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    try:
        load_config(path)
    except EdgeprofError:
        if before is None:
            path.unlink()
        else:
            path.write_text(before)
        raise
    target = load_config(path).targets[name]
    if as_json:
        emit_json({"added": name, "config": str(path), "target": target.to_dict()})
        return
    click.echo(f"added {name} to {path}")
    if target.transport == "ssh" or kind == "android-termux":
        click.echo(f"next: edgeprof targets trust {name}    (check and record its SSH host key)")


@command.command("trust")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Record the key without asking (only after checking it otherwise).")
@config_option
@json_option
def trust_command(name: str, yes: bool, as_json: bool) -> None:
    """Show a board's SSH host key fingerprint and record it in known_hosts once you confirm it.

    Compare the fingerprint with the board's own (on the board: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).
    A key that differs from a recorded one of the same type is never replaced here. A board with several host keys
    is asked for a type already recorded; one that offers only a type not yet recorded shows it as a new key.

    \b
    Examples:
      edgeprof targets trust kitchen-pi
      edgeprof targets trust kitchen-pi --yes
    """
    from ..transports.ssh import SSHTransport, fingerprint

    target = resolve_target(name)
    if target.transport == "local":
        raise TargetError("'local' needs no host key", "trust a board target")
    transport = target.connect()
    try:
        if not isinstance(transport, SSHTransport):
            raise TargetError(f"{name} is reached with adb shell, which has no host key", "nothing to trust")
        endpoint = transport.endpoint
        known = transport.known_host_keys()
        key = transport.fetch_host_key(prefer=list(known))
    finally:
        transport.close()
    facts = {"target": name, "host": endpoint.host_key_name, "key_type": key.get_name(),
             "fingerprint": fingerprint(key), "known_hosts": str(transport.known_hosts)}  # fmt: skip

    def done(status: str) -> None:
        if as_json:
            emit_json({**facts, "status": status})
        else:
            click.echo({"trusted": f"already trusted in {transport.known_hosts}",
                        "recorded": f"recorded in {transport.known_hosts}"}.get(status, "not recorded"),
                       err=status == "not-recorded")  # fmt: skip

    # The fingerprint goes to stderr under --json, so stdout stays one JSON document.
    click.echo(f"{name} ({endpoint.host_key_name}) presents this {key.get_name()} host key:", err=as_json)
    click.echo(f"  {fingerprint(key)}", err=as_json)
    recorded = known.get(key.get_name())  # compare a key only with a recorded key of its own type
    if recorded is not None:
        if recorded.asbytes() == key.asbytes():
            done("trusted")
            return
        raise TargetError(
            f"{transport.known_hosts} holds a DIFFERENT {key.get_name()} key for {endpoint.host_key_name} "
            f"({fingerprint(recorded)})",
            f"if the board was re-installed, remove the old key (ssh-keygen -f {transport.known_hosts} -R "
            f"'{endpoint.host_key_name}') and run this again",
        )
    if known:  # another type than the recorded ones: a new key to check, not a changed one
        click.echo(
            f"{transport.known_hosts} has {', '.join(known)} key(s) for {endpoint.host_key_name}, but the board "
            f"offers none of those types: this {key.get_name()} key is new to edgeprof, not a changed one",
            err=True,
        )
    if not yes and not click.confirm(f"Trust it and record it in {transport.known_hosts}?", default=False, err=True):
        done("not-recorded")
        raise SystemExit(1)
    _append_known_host(transport.known_hosts, f"{endpoint.host_key_name} {key.get_name()} {key.get_base64()}")
    done("recorded")


def _append_known_host(path: Path, line: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        if handle.tell() > 0:
            with open(path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    handle.write("\n")
        handle.write(line + "\n")


@command.command("check")
@click.argument("specs", nargs=-1)
@config_option
@json_option
def check_command(specs: tuple[str, ...], as_json: bool) -> None:
    """Reach each board, start the agent and report its Python, runtimes and free space (and its meter's reading).

    SPECS are target names, globs ('lab-*') or groups [every configured board]. Exit code 1 if any board fails.

    \b
    Examples:
      edgeprof targets check
      edgeprof targets check kitchen-pi 'lab-*'
    """
    from ..deploy import connect

    if specs:
        chosen = targets_mod.select_targets(specs)
    else:
        config = load_config()
        chosen = list(config.targets.values()) or [targets_mod.local_target()]

    def check(target: Target) -> dict[str, Any]:
        started = time.monotonic()
        row: dict[str, Any] = {"target": target.name, "ok": False}
        try:
            with connect(target) as board:
                status = board.prepare()
                with board.agent() as agent:
                    hello = agent.hello
            device = hello.get("device", {})
            row.update(
                ok=True,
                python=device.get("python") or status.get("python"),
                python_path=board.python_path,
                machine=device.get("machine"),
                hostname=device.get("hostname"),
                runtimes=[f"{r.get('name')} {r.get('version')}" for r in hello.get("runtimes") or []],
                runtimes_missing=hello.get("runtimes_missing"),
                workdir=status.get("root"),
                used_bytes=status.get("used_bytes"),
                free_bytes=status.get("free_bytes"),
                emulated=device.get("emulated", False),
            )
            if not row["runtimes"]:
                row.update(ok=False, error=_no_runtime(target, board.python_path, status.get("venv_python")))
            if target.meter is not None:  # the bench's plug: one reading, as a profile's first one
                from ..meters import open_driver

                reading = open_driver(target.meter).read()
                row["meter"] = f"{reading.watts:.3g} W" + (" (relay off)" if reading.relay_on is False else "")
        except EdgeprofError as exc:
            row["error"] = str(exc)
            row["ok"] = False
        row["seconds"] = round(time.monotonic() - started, 2)
        return row

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        rows = list(pool.map(check, chosen))
    if as_json:
        emit_json(rows)
    else:
        metered = any(t.meter is not None for t in chosen)
        meter_column = ["meter"] if metered else []
        click.echo(
            table(
                ["target", "status", "python", "machine", "runtime", "free", *meter_column, "seconds"],
                [
                    [
                        r["target"],
                        "ok" if r["ok"] else "FAILED",
                        str(r.get("python") or ""),
                        str(r.get("machine") or "") + (" (emulated)" if r.get("emulated") else ""),
                        ", ".join(r.get("runtimes") or []),
                        size(r.get("free_bytes")) if r.get("free_bytes") is not None else "",
                        *([str(r.get("meter") or "")] if metered else []),
                        f"{r['seconds']:.1f}",
                    ]
                    for r in rows
                ],
            )
        )
        for r in rows:
            if not r["ok"]:
                click.echo(f"{r['target']}: {r.get('error')}", err=True)
    if not all(r["ok"] for r in rows):
        raise SystemExit(1)


def _no_runtime(target: Target, python: str, venv: str | None) -> str:
    """Why the agent found no LiteRT runtime, and what to do: 'targets setup' helps only where its venv is used."""
    if target.python_is_default:
        return f"no LiteRT runtime for {python}; run 'edgeprof targets setup {target.name}'"
    where = f"[targets.{target.name}] of {config_path()}"
    if venv:
        return (
            f"no LiteRT runtime for {python}, the python that {where} sets; the venv of 'targets setup' ({venv}) "
            f"is used only without that setting; remove python from {where}, or install numpy and ai-edge-litert "
            f"for {python}"
        )
    return (
        f"no LiteRT runtime for {python}, the python that {where} sets; install numpy and ai-edge-litert for it, "
        f"or remove the setting and run 'edgeprof targets setup {target.name}'"
    )


@command.command("setup")
@click.argument("name")
@click.option(
    "--wheels",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Install from the .whl files in this folder (boards without internet) instead of PyPI.",
)
@click.option(
    "--runtime",
    type=click.Choice(["ai-edge-litert", "tflite-runtime"]),
    default=None,
    help="LiteRT runtime to install [the board profile's, usually ai-edge-litert].",
)
@config_option
@json_option
def setup_command(name: str, wheels: str | None, runtime: str | None, as_json: bool) -> None:
    """Prepare a board: check its Python, make a venv in its work directory, install numpy + LiteRT.

    \b
    Examples:
      edgeprof targets setup kitchen-pi
      edgeprof targets setup kitchen-pi --runtime tflite-runtime
      pip download --only-binary=:all: --platform manylinux_2_27_aarch64 --python-version 3.11 \\
          numpy ai-edge-litert -d wheels/ && edgeprof targets setup kitchen-pi --wheels wheels/
    """
    from ..provision import setup_board
    from . import _progress

    with _progress.display(not as_json) as shown:
        report = setup_board(name, wheels=wheels, runtime=runtime, on_progress=shown)
    if as_json:
        emit_json(report.__dict__)
    else:
        click.echo(report.summary())
