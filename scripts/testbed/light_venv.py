"""A venv with edgeprof's light install only: the base dependencies of pyproject.toml, no TensorFlow.

`python -m venv --system-site-packages` or the project's own venv would hide a missing dependency, so this is a bare
venv holding exactly ``[project] dependencies`` (pinned by scripts/constraints.txt), built once and cached. Tests
install the wheel under test into a folder of their own (``pip install --no-deps --target``) and run this venv's
Python with that folder on ``PYTHONPATH``.

    python scripts/testbed/light_venv.py DIR     # prints the venv's python once it is ready
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def light_dependencies() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def ensure(cache: Path) -> Path:
    deps = light_dependencies()
    constraints = ROOT / "scripts" / "constraints.txt"
    key = hashlib.sha256("\n".join([*deps, constraints.read_text(), sys.version]).encode()).hexdigest()[:12]
    venv = cache / f"light-{key}"
    python = venv / "bin" / "python"
    if (venv / ".ready").exists() and python.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(constraints), *deps],
        check=True,
        stdout=sys.stderr,
    )
    probe = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True)
    if probe.returncode == 0:
        sys.exit(f"{venv} can import tensorflow: it is not a light install")
    (venv / ".ready").write_text("\n".join(deps) + "\n")
    return python


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: light_venv.py DIR")
    print(ensure(Path(sys.argv[1])))
