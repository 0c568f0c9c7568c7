"""Every ``python`` and ``sh`` block of README.md runs as written, so the README never lies to a newcomer.

Blocks run in README order, one test per block, in one scratch folder shared by the whole README (the demo's output
made in one section is there for the next), with the ``edgeprof`` command of this environment on PATH and the
default store and config of that folder (``./.edgeprof/results.db``, ``./edgeprof.toml``), as for a user in a fresh
project folder. A ``sh`` block runs under ``bash -e -o pipefail``: every command must succeed. A ``python`` block runs
as a script of its own. A block whose previous line is ``<!-- readme-test: skip (reason) -->`` is skipped with that
reason: for blocks that need a board, root, a server or a file only the user has. Other fences (``toml``, ``text``,
plain) are never run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNNABLE = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


@dataclass
class Block:
    section: str  # the heading the block sits under
    index: int  # its number within that section, from 1
    line: int  # where it starts in README.md
    kind: str  # "sh" or "python"
    code: str
    skip: str | None  # the marker's reason, if any

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{slug}-{self.index}"


def readme_blocks(text: str) -> list[Block]:
    """The runnable blocks of a Markdown text, with their section and skip marker (fences may hold '#' lines)."""
    blocks: list[Block] = []
    section = "top"
    counts: dict[str, int] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            closing = fence.group("fence")
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith(closing):
                body.append(lines[i])
                i += 1
            kind = RUNNABLE.get(fence.group("lang").lower())
            if kind:
                previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
                marker = SKIP.match(previous.strip())
                counts[section] = counts.get(section, 0) + 1
                reason = marker["reason"] if marker else None
                blocks.append(Block(section, counts[section], start + 1, kind, "\n".join(body) + "\n", reason))
        else:
            heading = HEADING.match(line)
            if heading:
                section = heading.group("title").replace("`", "")
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_parser_finds_sections_markers_and_ignores_other_fences() -> None:
    text = (
        "# Tool\n## First\n```sh\necho one\n```\n\n<!-- readme-test: skip (needs a board) -->\n```sh\nboard\n```\n"
        "```toml\n# not a heading\n[x]\n```\n## Second\n```python\nprint(2)\n```\n```text\nout\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.section, b.index, b.kind, b.skip) for b in blocks] == [
        ("First", 1, "sh", None),
        ("First", 2, "sh", "needs a board"),
        ("Second", 1, "python", None),
    ]
    assert blocks[0].code == "echo one\n" and blocks[2].id == "second-1"


def test_the_readme_has_blocks_that_run() -> None:
    ran = [b for b in BLOCKS if b.skip is None]
    assert {b.kind for b in ran} == {"sh", "python"}, "the README should show both the CLI and the Python API"
    assert any("edgeprof demo" in b.code for b in ran)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One scratch folder for the whole README, and what happened to each block so far."""
    folder = tmp_path_factory.mktemp("readme")
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEPROF_STORE", "EDGEPROF_CONFIG")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["EDGEPROF_CACHE_DIR"] = str(folder / ".cache")
    return {"folder": folder, "env": env, "failed": set()}


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, workspace: dict[str, object]) -> None:
    if block.skip is not None:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    failed: set[str] = workspace["failed"]  # type: ignore[assignment]
    if block.section in failed:
        pytest.skip(f"an earlier block of section {block.section!r} failed")
    folder: Path = workspace["folder"]  # type: ignore[assignment]
    script = folder / f".readme-{block.id}.{'sh' if block.kind == 'sh' else 'py'}"
    script.write_text(block.code, encoding="utf-8")
    command = ["bash", "-e", "-o", "pipefail", str(script)] if block.kind == "sh" else [sys.executable, str(script)]
    done = subprocess.run(
        command,
        cwd=folder,
        env=workspace["env"],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        failed.add(block.section)
        pytest.fail(
            f"README.md:{block.line} ({block.section}) exited {done.returncode}\n--- block\n{block.code}"
            f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}",
            pytrace=False,
        )
