"""The CI example (examples/ci/model-budget.yml) works: its `run:` steps, in order, in a scratch copy of the repository,
with the environment the workflow sets, as a GitHub runner would run them (bash -eo pipefail, $GITHUB_PATH).

Only the `uses:` steps are skipped, each with its reason: they are GitHub's own actions. The cache step is stood in
for by a restored cache: a venv that sees this checkout's installed packages, so the install step really runs pip
and installs edgeprof from the scratch copy without downloading the stack again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from edgeprof.budget import Budget
from tests.conftest import ROOT

WORKFLOW = ROOT / "examples" / "ci" / "model-budget.yml"
SKIPPED = {
    "actions/checkout": "the scratch folder is a copy of this checkout's tracked files",
    "actions/setup-python": "the runner's Python is this machine's",
    "actions/cache": "a restored cache is stood in for by a venv that sees this checkout's packages",
    "actions/upload-artifact": "artifacts are GitHub's; the files it uploads are checked to exist instead",
}


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_watches_the_budget_it_uses() -> None:
    workflow = _workflow()
    job = workflow["jobs"]["budget"]
    paths = workflow[True]["pull_request"]["paths"]  # YAML 1.1 reads the key "on" as True
    assert job["env"]["BUDGET"] in paths and "examples/ci/model-budget.yml" in paths
    Budget.from_file(ROOT / job["env"]["BUDGET"])  # and it is a valid budget
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "pip install" in runs and "$EDGEPROF_SRC[compress]" in runs  # from the source, not a package index
    assert "--replicates" in runs  # gates on a replicated measurement
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == ".venv" and "constraints.txt" in cache["with"]["key"]


@pytest.mark.slow
def test_the_workflow_steps_run_in_order_in_a_scratch_checkout(models: Path, tmp_path: Path) -> None:
    job = _workflow()["jobs"]["budget"]
    scratch = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file() and not name.startswith("tests/"):
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, scratch / name)
    # the user's repository: a Keras model and its data where the workflow's env says
    env_set = job["env"]
    (scratch / env_set["MODEL"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(models / "cnn.keras", scratch / env_set["MODEL"])
    (scratch / env_set["DATA"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(models / "digits.npz", scratch / env_set["DATA"])
    # the restored cache: a venv of its own (no edgeprof in it) that sees the packages this test runs with
    subprocess.run([sys._base_executable, "-m", "venv", str(scratch / ".venv")], check=True)
    where_to = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run([str(scratch / ".venv/bin/python"), "-c", where_to], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    Path(site, "restored-cache.pth").write_text(sysconfig.get_path("purelib") + "\n")

    github_path = tmp_path / "github_path"
    github_path.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROF_") and k != "VIRTUAL_ENV"}
    base["PATH"] = os.pathsep.join(p for p in base["PATH"].split(os.pathsep) if ".venv" not in p)
    env = {**base, **{k: str(v) for k, v in env_set.items()}, "GITHUB_PATH": str(github_path), "CI": "true"}
    env["EDGEPROF_CACHE_DIR"] = str(tmp_path / "cache")
    ran, skipped = [], []
    for step in job["steps"]:
        if "uses" in step:
            action = step["uses"].split("@")[0]
            skipped.append((action, SKIPPED[action]))
            continue
        added = [line for line in github_path.read_text().splitlines() if line]
        step_env = {**env, **{k: str(v) for k, v in (step.get("env") or {}).items()}}
        step_env["PATH"] = os.pathsep.join([*reversed(added), env["PATH"]])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=scratch, env=step_env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
        ran.append((step.get("name"), done))
    assert [a for a, _ in skipped] == list(SKIPPED)
    names = [name for name, _ in ran]
    assert names[0].startswith("Install") and len(names) == 5
    # edgeprof came from the scratch copy of the source, into the job's own venv
    where = subprocess.run([str(scratch / ".venv/bin/python"), "-c", "import edgeprof; print(edgeprof.__file__)"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert where.startswith(str(scratch)), where
    check = dict(ran)[names[2]]
    assert "95% upper bound over 5 runs" in check.stdout and "PASS" in check.stdout, check.stdout
    for artifact in ("budget.json", "report.html", "results.db", "build/int8/manifest.json"):
        assert (scratch / artifact).is_file(), artifact
    assert '"passed": true' in (scratch / "budget.json").read_text()
