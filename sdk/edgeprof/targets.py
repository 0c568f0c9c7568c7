"""Targets: named boards, each a board profile (``kind``) plus how to reach it.

``local`` is built in and always present: this machine, reached through the ``local`` transport, so that
``edgeprof profile model.tflite`` works before any board is configured.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _toml
from ._resources import builtin_targets_dir
from .errors import TargetError
from .transports import LocalTransport, Transport

LOCAL = "local"


def cache_dir() -> Path:
    """Where edgeprof keeps host-side state that can be rebuilt (the local board's work directory)."""
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
    python: str = "python3"
    workdir: str = ".edgeprof"
    description: str = ""
    sensors: dict[str, Any] = field(default_factory=dict)

    def connect(self) -> Transport:
        if self.transport == "local":
            return LocalTransport()
        raise TargetError(
            f"target {self.name!r} uses transport {self.transport!r}, which this edgeprof lacks",
            "use transport = 'local' or upgrade edgeprof",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def board_profile(kind: str) -> dict[str, Any]:
    """The built-in profile for a board kind (``targets/KIND.toml``)."""
    path = builtin_targets_dir() / f"{kind}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in builtin_targets_dir().glob("*.toml"))
        raise TargetError(f"unknown board kind {kind!r}", f"choose one of: {', '.join(known)}")
    return _toml.load(path)


def local_target() -> Target:
    profile = board_profile("linux")
    return Target(
        name=LOCAL,
        kind="linux",
        transport="local",
        python=sys.executable,
        workdir=str(cache_dir() / "boards" / LOCAL),
        description="this machine, through the local transport",
        sensors=dict(profile.get("sensors", {})),
    )


def known_targets() -> dict[str, Target]:
    return {LOCAL: local_target()}


def resolve_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    targets = known_targets()
    if name in targets:
        return targets[name]
    raise TargetError(f"unknown target {name!r}", f"known targets: {', '.join(sorted(targets))}")
