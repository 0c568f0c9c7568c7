"""Files that ship inside the wheel: the device agent and the built-in board profiles.

In a wheel, ``targets/`` is installed as the package ``edgeprof.builtin_targets``. An editable install of a checkout
cannot map a sub-package to another folder, so there we read ``targets/`` beside ``sdk/``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import zipfile
from functools import lru_cache
from pathlib import Path

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIPAPP_MAIN = b"import sys\nfrom edgeprof_agent.__main__ import main\nsys.exit(main())\n"


def builtin_targets_dir() -> Path:
    installed = Path(__file__).resolve().parent / "builtin_targets"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "targets"


def _agent_sources() -> list[tuple[str, bytes]]:
    root = importlib.resources.files("edgeprof_agent")
    found: list[tuple[str, bytes]] = []

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".py"):
                found.append((f"{prefix}{child.name}", child.read_bytes()))

    walk(root, "edgeprof_agent/")
    return sorted(found)


@lru_cache(maxsize=1)
def agent_zipapp() -> tuple[bytes, str]:
    """The agent as one runnable zip (``python3 agent.pyz``) and its SHA-256.

    The archive is byte-for-byte reproducible (fixed dates, sorted entries), so its hash names the agent's content
    and an unchanged agent is never uploaded twice.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("__main__.py", _ZIPAPP_MAIN), *_agent_sources()]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()
