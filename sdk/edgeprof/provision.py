"""``edgeprof targets setup``: give a board what the agent needs, in a venv inside its work directory.

The agent needs Python 3.8+, numpy and a LiteRT runtime. We never touch the board's system Python: a venv in
``WORKDIR/venv`` gets the packages, from PyPI or, for boards without internet, from wheels the user brings
(``--wheels DIR``, uploaded content-addressed like models, installed with ``pip --no-index``). Afterwards the agent
is started in that venv and must answer ``hello`` with a runtime, so "setup succeeded" means "ready to profile".
Board kinds whose runtime comes from the system (Termux's ``python-tflite-runtime``) get a venv that sees the
system's site-packages instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deploy import connect
from .errors import TargetError
from .modelfile import sha256_bytes
from .progress import Progress, ProgressHandler, from_board_event
from .targets import Target, resolve_target, with_overrides

log = logging.getLogger("edgeprof.provision")

#: A wheel's file name as PEP 427 spells it; nothing else is uploaded, so no name can reach a path or a shell.
WHEEL_NAME = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[A-Za-z0-9_.]+){2,3}\.whl")

RUNTIME_PACKAGES = {
    "ai-edge-litert": ["numpy", "ai-edge-litert"],
    "tflite-runtime": ["numpy<2", "tflite-runtime"],  # tflite-runtime 2.14 cannot load with numpy 2 (FIELD-NOTES)
}

_PYTHON_INFO = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"


@dataclass
class SetupReport:
    target: str
    python: str  # the system Python that made the venv, and its version
    python_version: str
    venv_python: str
    packages: list[str]
    source: str  # "PyPI" or the wheels folder
    wheels_sent: int = 0
    runtimes: list[dict[str, Any]] = field(default_factory=list)
    pip_tail: str = ""
    python_pinned: bool = False  # the config names a python, so profiles use it rather than this venv

    def summary(self) -> str:
        found = ", ".join(f"{r.get('name')} {r.get('version')}" for r in self.runtimes) or "none"
        return "\n".join(
            [
                f"{self.target}: Python {self.python_version} ({self.python})",
                f"venv {self.venv_python}: {' '.join(self.packages) or 'system packages'} from {self.source}"
                + (f" ({self.wheels_sent} wheels uploaded)" if self.wheels_sent else ""),
                f"agent runtimes: {found}",
                f"note: the config sets python for {self.target}, so profiles use that, not this venv; "
                "remove the setting to use the venv"
                if self.python_pinned
                else "ready to profile",
            ]
        )


def setup_board(
    target: str | Target,
    *,
    wheels: str | Path | None = None,
    runtime: str | None = None,
    on_line: Callable[[str], None] | None = None,
    on_progress: ProgressHandler | None = None,
    timeout: float = 1800.0,
) -> SetupReport:
    """Check the board's Python, make ``WORKDIR/venv`` and install numpy + a LiteRT runtime in it.

    Each step is logged (``--verbose``), given to ``on_line`` as a line and to ``on_progress`` as a
    :class:`~edgeprof.progress.Progress` (wheel uploads with their bytes).
    """
    target = resolve_target(target)
    if target.transport == "local":
        raise TargetError("'local' uses the Python edgeprof runs in", "set up a board target instead")
    name = target.name

    def say(line: str, phase: str = "setup") -> None:
        log.info("%s", line)
        if on_line is not None:
            on_line(line)
        if on_progress is not None:
            on_progress(Progress(name, phase, line.removeprefix(f"{name}: ")))

    connected: list[bool] = []

    def events(event: dict[str, Any]) -> None:
        step = from_board_event(name, event)
        if step is None or on_progress is None or step.phase not in ("upload", "connect", "waiting"):
            return
        if step.phase == "connect":  # the board's state is read again after pip: that is no new connection
            if connected:
                return
            connected.append(True)
        on_progress(step)

    setup = target.setup
    packages = list(setup.get("packages", RUNTIME_PACKAGES["ai-edge-litert"]))
    if runtime is not None:
        if runtime not in RUNTIME_PACKAGES:
            raise TargetError(f"unknown runtime {runtime!r}", f"choose one of: {', '.join(RUNTIME_PACKAGES)}")
        packages = list(RUNTIME_PACKAGES[runtime])
    system_site = bool(setup.get("system_site_packages", False))
    wheel_files = _wheel_files(wheels) if wheels is not None else []

    with connect(target, on_event=events) as board:
        say(f"{target.name}: checking {target.python}")
        info = board.python(_PYTHON_INFO).split()
        version, executable = info[0], info[1]
        if tuple(int(p) for p in version.split(".")[:2]) < (3, 8):
            raise TargetError(
                f"{target.name} has Python {version}; the agent needs 3.8 or newer",
                f"install a newer Python on the board and set python = '/path/to/python3.x' for {target.name}",
            )
        venv = board.path("venv")
        venv_python = board.path("venv", "bin", "python")
        board.prepare()
        say(f"{target.name}: creating {venv}")
        argv = [target.python, "-m", "venv", *(["--system-site-packages"] if system_site else []), venv]
        made = board.transport.run(argv, timeout=300)
        if not made.ok:
            why = made.stderr.decode("utf-8", "replace").strip().splitlines()
            raise TargetError(
                f"{target.name}: python -m venv failed ({why[-1] if why else made.exit_code})",
                setup.get("venv_fix", "on Debian / Raspberry Pi OS / Ubuntu: sudo apt install python3-venv"),
            )
        source = "PyPI"
        sent = 0
        pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        if wheel_files:
            folder = board.path("wheels")
            board.transport.run([target.python, "-c", "import os,sys; os.makedirs(sys.argv[1], exist_ok=True)", folder])
            for path in wheel_files:
                data = path.read_bytes()
                say(f"{target.name}: wheel {path.name}")
                if board.ensure(data, board.path("wheels", path.name), sha256_bytes(data), what="wheel"):
                    sent += 1
            pip += ["--no-index", "--find-links", folder]
            source = str(wheels)
        if packages:
            say(f"{target.name}: pip install {' '.join(packages)} (from {source})", "install")
            done = board.transport.run([*pip, *packages], timeout=timeout)
            tail = (done.stdout + done.stderr).decode("utf-8", "replace").strip().splitlines()
            if not done.ok:
                raise TargetError(
                    f"{target.name}: pip install {' '.join(packages)} failed: {tail[-1] if tail else done.exit_code}",
                    "give the board internet access, or download the wheels for its Python and CPU (pip download "
                    "--only-binary=:all: --platform ... numpy ai-edge-litert -d DIR) and pass --wheels DIR",
                )
        else:
            tail = []
        # Ready means: the agent starts in the venv and finds a runtime.
        board.target = with_overrides(target, python_is_default=True)
        board.status = None
        board.prepare()
        say(f"{target.name}: starting the agent in the venv")
        with board.agent() as agent:
            hello = agent.hello
    runtimes = hello.get("runtimes") or []
    if not runtimes:
        missing = hello.get("runtimes_missing")
        raise TargetError(
            f"{target.name}: the agent found no LiteRT runtime in {venv_python} ({missing})",
            setup.get("runtime_fix", "install ai-edge-litert or tflite-runtime in the venv"),
        )
    return SetupReport(
        target=target.name,
        python=executable,
        python_version=version,
        venv_python=venv_python,
        packages=packages,
        source=source,
        wheels_sent=sent,
        runtimes=[r if isinstance(r, dict) else {"name": str(r)} for r in runtimes],
        pip_tail="\n".join(tail[-3:]),
        python_pinned=not target.python_is_default,
    )


def _wheel_files(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise TargetError(f"--wheels {folder} is not a folder", "pass the folder that holds the .whl files")
    wheels = sorted(p for p in root.iterdir() if p.suffix == ".whl")
    if not wheels:
        raise TargetError(
            f"{folder} holds no .whl files",
            "download them for the board: pip download --only-binary=:all: --platform manylinux_2_27_aarch64 "
            "--python-version 3.11 numpy ai-edge-litert -d DIR",
        )
    bad = [p.name for p in wheels if not WHEEL_NAME.fullmatch(p.name)]
    if bad:
        raise TargetError(f"{folder}: {bad[0]!r} is not a wheel file name", "keep the names pip gave the files")
    return wheels
