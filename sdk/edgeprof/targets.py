"""Targets: named boards, each a board profile (``kind``) plus how to reach it.

``local`` is built in and always present: this machine, reached through the ``local`` transport, so that
``edgeprof profile model.tflite`` works before any board is configured. Every other target comes from a config file
(``--config``, then ``$EDGEPROF_CONFIG``, then ``./edgeprof.toml``)::

    [targets.kitchen-pi]
    kind = "rpi4"                 # a built-in board profile from targets/KIND.toml
    host = "kitchen-pi"           # an address, a DNS name or a ~/.ssh/config alias
    user = "pi"

    [targets.kitchen-pi.meter]    # optional: a power meter the host reads (edgeprof.meters)
    kind = "shelly"
    address = "192.168.1.50"

    [groups]
    lab = ["kitchen-pi", "jetson-*"]

Target and group names are restricted to letters, digits, ``.``, ``_`` and ``-``: a name is printed on terminals,
stored, and used to name host-side lock files, so it must not be able to carry escape sequences or path parts.
Passwords are never read from the config: boards are reached with keys (files or ssh-agent).
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import _toml
from ._resources import builtin_targets_dir
from .errors import TargetError
from .transports import LocalTransport, Transport

LOCAL = "local"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SERIAL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_TRANSPORTS = ("ssh", "adb", "local")

# What a [targets.NAME] table may set; anything else is a typo we report rather than ignore.
_TARGET_KEYS = {
    "kind": str,
    "transport": str,
    "host": str,
    "port": int,
    "user": str,
    "identity_file": str,
    "known_hosts": str,
    "ssh_config": str,
    "proxy_jump": str,
    "serial": str,
    "python": str,
    "workdir": str,
    "workdir_max_mb": (int, float),
    "description": str,
    "emulated": bool,
    "connect_timeout": (int, float),
    "command_timeout": (int, float),
    "dead_after": (int, float),
    "connect_attempts": int,
    "sensors": dict,
    "meter": dict,
}
_PROFILE_KEYS = {"description", "transport", "python", "workdir", "workdir_max_mb", "port", "facts", "sensors", "setup"}


def cache_dir() -> Path:
    """Where edgeprof keeps host-side state that can be rebuilt (the local board's work directory, board locks)."""
    base = os.environ.get("EDGEPROF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeprof"
    )
    return Path(base)


@dataclass(frozen=True)
class Target:
    """A board edgeprof can profile on."""

    name: str
    kind: str = "linux"
    transport: str = "ssh"
    host: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    ssh_config: str | None = None
    proxy_jump: str | None = None
    serial: str | None = None  # adb: the device's serial (``adb devices``)
    python: str = "python3"
    python_is_default: bool = True  # True: a venv made by ``targets setup`` is used when present
    workdir: str = ".edgeprof"
    workdir_max_mb: float = 1024
    description: str = ""
    emulated: bool = False  # an emulated board: its timings are never reported as speed
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    dead_after: float = 8.0
    connect_attempts: int = 3
    facts: dict[str, Any] = field(default_factory=dict)
    sensors: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    meter: Any = None  # a power meter on the host ([targets.NAME.meter], edgeprof.meters.MeterConfig)

    def connect(self) -> Transport:
        """A transport to this board; SSH connects lazily, on first use."""
        if self.transport == "local":
            return LocalTransport()
        if self.transport == "ssh":
            from .transports.ssh import SSHTransport

            return SSHTransport(
                self.host or self.name,
                port=self.port,
                user=self.user,
                identity_file=self.identity_file,
                known_hosts=self.known_hosts,
                ssh_config=self.ssh_config,
                proxy_jump=self.proxy_jump,
                timeouts=self.timeouts(),
                name=self.name,
            )
        if self.transport == "adb":
            from .transports.adb import AdbTransport, termux_over_adb

            if self.kind == "android-termux":
                return termux_over_adb(self, timeouts=self.timeouts())
            return AdbTransport(self.serial, name=self.name, timeout=self.command_timeout)
        raise TargetError(
            f"target {self.name!r} uses transport {self.transport!r}", f"use one of: {', '.join(_TRANSPORTS)}"
        )

    def timeouts(self) -> Any:
        from .transports.ssh import Timeouts

        return Timeouts(
            connect=self.connect_timeout,
            command=self.command_timeout,
            dead_after=self.dead_after,
            connect_attempts=self.connect_attempts,
        )

    def lock_key(self) -> str:
        """What identifies the physical board, so that two target names for one board share one lock."""
        if self.transport == "local":
            return "local"
        if self.transport == "adb":
            return f"adb:{self.serial or 'default'}"
        from .transports.ssh import resolve_endpoint

        try:
            endpoint = resolve_endpoint(
                self.host or self.name, port=self.port, user=self.user, ssh_config=self.ssh_config, proxy_jump="none"
            )
        except Exception:  # noqa: BLE001 - an unreadable ssh config fails later, with its own message
            return f"ssh:{self.host}:{self.port}"
        return f"ssh:{endpoint.hostname}:{endpoint.port}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        data["meter"] = self.meter.to_dict() if self.meter is not None else None
        return data


def board_profile(kind: str) -> dict[str, Any]:
    """The built-in profile for a board kind (``targets/KIND.toml``), on top of the generic ``linux`` one."""
    if not NAME_PATTERN.fullmatch(kind or ""):
        raise TargetError(f"invalid board kind {kind!r}", f"choose one of: {', '.join(board_kinds())}")
    path = builtin_targets_dir() / f"{kind}.toml"
    if not path.is_file():
        raise TargetError(f"unknown board kind {kind!r}", f"choose one of: {', '.join(board_kinds())}")
    profile = _toml.load(path)
    if kind != "linux":
        base = _toml.load(builtin_targets_dir() / "linux.toml")
        profile = {**base, **profile}
    unknown = set(profile) - _PROFILE_KEYS
    if unknown:  # pragma: no cover - guards the shipped profiles, checked by the tests
        raise TargetError(f"board profile {path} has unknown keys {sorted(unknown)}", "fix the profile")
    return profile


def board_kinds() -> list[str]:
    return sorted(p.stem for p in builtin_targets_dir().glob("*.toml"))


def local_target() -> Target:
    profile = board_profile("linux")
    return Target(
        name=LOCAL,
        kind="linux",
        transport="local",
        python=sys.executable,
        python_is_default=False,
        workdir=str(cache_dir() / "boards" / LOCAL),
        workdir_max_mb=float(profile.get("workdir_max_mb", 1024)),
        description="this machine, through the local transport",
        sensors=dict(profile.get("sensors", {})),
    )


# -- the config file ----------------------------------------------------------------------------------------------

_config_override: str | None = None


def use_config(path: str | os.PathLike[str] | None) -> None:
    """Make ``path`` the config file for this process (the CLI's ``--config``)."""
    global _config_override
    _config_override = os.fspath(path) if path is not None else None
    if path is not None and not Path(path).is_file():
        raise TargetError(f"config file {path} does not exist", "create it, or run 'edgeprof targets add'")


def config_path() -> Path:
    """The config file in use (it need not exist yet): ``--config``, ``$EDGEPROF_CONFIG``, ``./edgeprof.toml``."""
    return Path(_config_override or os.environ.get("EDGEPROF_CONFIG") or "edgeprof.toml")


@dataclass(frozen=True)
class Config:
    path: Path
    targets: dict[str, Target]
    groups: dict[str, tuple[str, ...]]


def _check_name(name: str, what: str, path: Path) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise TargetError(
            f"{path}: {what} name {name!r} is not allowed",
            "use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)",
        )


def _target_from_table(name: str, table: dict[str, Any], path: Path, groups: tuple[str, ...]) -> Target:
    if "password" in table or "passphrase" in table:
        raise TargetError(
            f"{path}: target {name!r} sets a password; edgeprof never stores passwords",
            "remove it and log in with a key: ssh-copy-id to the board, then ssh-add the key",
        )
    for key, value in table.items():
        want = _TARGET_KEYS.get(key)
        if want is None:
            raise TargetError(
                f"{path}: target {name!r} has an unknown setting {key!r}", f"known settings: {', '.join(_TARGET_KEYS)}"
            )
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise TargetError(f"{path}: target {name!r}: {key} = {value!r} has the wrong type", "see the README")
    kind = table.get("kind", "linux")
    profile = board_profile(kind)
    transport = table.get("transport", profile.get("transport", "ssh"))
    if transport not in _TRANSPORTS:
        raise TargetError(f"{path}: target {name!r}: unknown transport {transport!r}", f"use one of {_TRANSPORTS}")
    if transport == "ssh" and not table.get("host"):
        raise TargetError(f"{path}: target {name!r} has no host", "set host = an address or a ~/.ssh/config alias")
    serial = table.get("serial")
    if serial is not None and not _SERIAL_PATTERN.fullmatch(serial):
        raise TargetError(f"{path}: target {name!r}: serial {serial!r} is not an adb serial", "see 'adb devices'")
    port = table.get("port", profile.get("port"))
    if port is not None and not 0 < port < 65536:
        raise TargetError(f"{path}: target {name!r}: port {port} is out of range", "use 1-65535")
    sensors = {**profile.get("sensors", {}), **table.get("sensors", {})}
    workdir = table.get("workdir", profile.get("workdir", ".edgeprof"))
    if workdir == "~" or workdir.startswith("~/"):  # the remote home: relative paths already start there
        workdir = workdir[2:] or "."
    elif workdir.startswith("~") or not workdir:
        raise TargetError(
            f"{path}: target {name!r}: workdir {workdir!r}", "use a path relative to the home, or absolute"
        )
    if not isinstance(sensors.get("energy", ""), str) or not all(
        isinstance(a, str) for a in sensors.get("energy_command", [])
    ):
        raise TargetError(
            f"{path}: target {name!r}: sensors.energy must be a name and sensors.energy_command a list of strings",
            'e.g. energy = "ina2xx", or energy_command = ["/usr/local/bin/meter", "--watts"]',
        )
    meter = None
    if "meter" in table:
        from .meters import parse_meter

        meter = parse_meter(table["meter"], name, path)
    return Target(
        name=name,
        kind=kind,
        transport=transport,
        host=table.get("host"),
        port=port,
        user=table.get("user"),
        identity_file=table.get("identity_file"),
        known_hosts=table.get("known_hosts"),
        ssh_config=table.get("ssh_config"),
        proxy_jump=table.get("proxy_jump"),
        serial=serial,
        python=table.get("python", profile.get("python", "python3")),
        python_is_default="python" not in table,
        workdir=workdir,
        workdir_max_mb=float(table.get("workdir_max_mb", profile.get("workdir_max_mb", 1024))),
        description=table.get("description", profile.get("description", "")),
        emulated=bool(table.get("emulated", False)),
        connect_timeout=float(table.get("connect_timeout", 10.0)),
        command_timeout=float(table.get("command_timeout", 60.0)),
        dead_after=float(table.get("dead_after", 8.0)),
        connect_attempts=int(table.get("connect_attempts", 3)),
        facts=dict(profile.get("facts", {})),
        sensors=sensors,
        setup=dict(profile.get("setup", {})),
        groups=groups,
        meter=meter,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file; a missing file is an empty config (only ``local``)."""
    path = Path(path) if path is not None else config_path()
    if not path.is_file():
        return Config(path, {}, {})
    try:
        raw = _toml.load(path)
    except (_toml.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read {path}: {exc}", "fix the TOML syntax") from None
    unknown = set(raw) - {"targets", "groups"}
    if unknown:
        raise TargetError(f"{path}: unknown section(s) {sorted(unknown)}", "use [targets.NAME] tables and [groups]")
    tables = raw.get("targets", {})
    groups_raw = raw.get("groups", {})
    if not isinstance(tables, dict) or not isinstance(groups_raw, dict):
        raise TargetError(f"{path}: targets and groups must be tables", "see the README")
    groups: dict[str, tuple[str, ...]] = {}
    for group, members in groups_raw.items():
        _check_name(group, "group", path)
        if group == LOCAL or group in tables:
            raise TargetError(f"{path}: group {group!r} has the name of a target", "rename the group")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise TargetError(f"{path}: group {group!r} must be a list of target names or globs", "see the README")
        groups[group] = tuple(members)
    targets: dict[str, Target] = {}
    for name, table in tables.items():
        _check_name(name, "target", path)
        if name == LOCAL:
            raise TargetError(f"{path}: 'local' is built in and cannot be redefined", "rename that target")
        if not isinstance(table, dict):
            raise TargetError(f"{path}: targets.{name} must be a table", "see the README")
        member_of = tuple(g for g, members in groups.items() if any(fnmatch.fnmatchcase(name, m) for m in members))
        targets[name] = _target_from_table(name, table, path, member_of)
    for group, members in groups.items():
        for member in members:
            if not any(fnmatch.fnmatchcase(t, member) for t in [*targets, LOCAL]):
                raise TargetError(f"{path}: group {group!r} names {member!r}, which matches no target", "fix the group")
    return Config(path, targets, groups)


def known_targets(config: Config | None = None) -> dict[str, Target]:
    config = config or load_config()
    return {LOCAL: local_target(), **config.targets}


def resolve_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    targets = known_targets()
    if name in targets:
        return targets[name]
    raise TargetError(
        f"unknown target {name!r}",
        f"known targets: {', '.join(sorted(targets))} (config: {config_path()}); add one with 'edgeprof targets add'",
    )


def select_targets(specs: Iterable[str]) -> list[Target]:
    """Names, globs (``'lab-*'``) and groups, comma-separated or repeated, to targets in order, without repeats."""
    config = load_config()
    targets = known_targets(config)
    chosen: dict[str, Target] = {}
    for spec in specs:
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item in targets:
                matches = [item]
            elif item in config.groups:
                matches = [t for member in config.groups[item] for t in targets if fnmatch.fnmatchcase(t, member)]
            elif any(ch in item for ch in "*?["):
                matches = [t for t in targets if fnmatch.fnmatchcase(t, item)]
                if not matches:
                    raise TargetError(f"no target matches {item!r}", f"known targets: {', '.join(sorted(targets))}")
            else:
                resolve_target(item)  # raises the unknown-target error
                matches = []
            for match in matches:
                chosen.setdefault(match, targets[match])
    if not chosen:
        raise TargetError("no target given", "pass --target NAME (a name, a glob like 'lab-*', or a group)")
    return list(chosen.values())


def with_overrides(target: Target, **changes: Any) -> Target:
    return replace(target, **changes)


def apply_sensor_defaults(target: Target, options: Any) -> Any:
    """The board's ``[sensors]`` settings fill in what the user left at its default (``energy = "auto"``)."""
    changes: dict[str, Any] = {}
    energy = target.sensors.get("energy")
    command = target.sensors.get("energy_command")
    if command and getattr(options, "energy_command", ()) is None:
        changes["energy_command"] = tuple(command)
        if energy in (None, "auto") and getattr(options, "energy", None) == "auto":
            changes["energy"] = "command"
    if energy and energy != "auto" and getattr(options, "energy", None) == "auto":
        changes["energy"] = energy
    return replace(options, **changes) if changes else options
