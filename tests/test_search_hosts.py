"""Several hosts on one study, as the README promises: two `edgeprof search run --resume` processes share the study
through the results store's database (each asks the sampler there; no recipe is measured twice), and a host that
dies mid-trial stops sending heartbeats, so the next host to run the study fails that trial and runs it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.testbed import LineReader

pytestmark = pytest.mark.slow

#: 9 recipes, none of which trains: the test is about sharing the study, not about compressing.
SPACE = '[[step]]\nkind = "quantize"\nmode = ["dynamic", "int8", "float16"]\nrepresentative_samples = [50, 100, 200]\n'
QUICK = ["--min-seconds", "0", "--warmup-seconds", "0", "--repeat", "2", "--target", "local"]


def _host(models: Path, isolated: Path, study: str, trials: int, *extra: str, sampler: str = "grid"
          ) -> subprocess.Popen[str]:  # fmt: skip
    """One host of the study: the command line in its own process group (so it can die as a machine does)."""
    space = isolated / "space.toml"
    space.write_text(SPACE)
    args = ["search", "run", str(models / "cnn.keras"), "--data", str(models / "digits.npz"), "--space", str(space),
            "--study", study, "--sampler", sampler, "--trials", str(trials), *QUICK, *extra]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "edgeprof", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=isolated,
        start_new_session=True,
    )


def _trials(isolated: Path, study: str) -> list[dict]:
    """The study's trials as Optuna's storage holds them (state, params and edgeprof's attributes)."""
    script = textwrap.dedent("""
        import json, sys, optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=sys.argv[2], storage="sqlite:///" + sys.argv[1])
        print(json.dumps([{"number": t.number, "state": t.state.name, "params": t.params,
                           "attrs": {k: v for k, v in t.user_attrs.items() if k in ("same_as", "retry_of", "error")}}
                          for t in study.get_trials()]))
    """)
    done = subprocess.run([sys.executable, "-c", script, str(isolated / "results.db"), study],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout)


def _measured(trials: list[dict]) -> list[str]:
    return [json.dumps(t["params"], sort_keys=True) for t in trials if t["state"] == "COMPLETE"
            and "same_as" not in t["attrs"]]  # fmt: skip


def test_two_hosts_share_one_study_and_measure_no_recipe_twice(models: Path, isolated: Path) -> None:
    first = _host(models, isolated, "shared", 6)
    reader = LineReader(first.stderr)
    reader.wait_for(lambda line: line.startswith("trial 0 ("), timeout=300)  # the study exists, its grid queued
    second = _host(models, isolated, "shared", 6, "--resume")
    second_reader = LineReader(second.stderr)
    assert first.wait(600) == 0, reader.text()[-3000:]
    assert second.wait(600) == 0, second_reader.text()[-3000:]

    started = {
        name: {line.split()[1] for line in r.text().splitlines() if line.startswith("trial ") and " of 6): " in line}
        for name, r in (("first", reader), ("second", second_reader))
    }
    assert started["first"] and started["second"], started  # both hosts ran trials ...
    assert not started["first"] & started["second"], started  # ... and never the same one
    measured = _measured(_trials(isolated, "shared"))
    assert len(measured) == len(set(measured)), measured  # no recipe measured twice
    assert 6 <= len(measured) <= 7, measured  # the study's count, give or take one asked by both at the very end


def test_a_killed_hosts_trial_is_run_again_by_the_next_host(models: Path, isolated: Path) -> None:
    # Random sampling: the retry is the only queued trial, so the next host runs it first (a grid queues it behind
    # the recipes still waiting, as --resume does after Ctrl-C).
    dying = _host(models, isolated, "crash", 3, sampler="random")
    reader = LineReader(dying.stderr)
    reader.wait_for(lambda line: line.startswith("trial 0 ("), timeout=300)
    os.killpg(dying.pid, signal.SIGKILL)  # host and agent at once, as when a machine loses power
    dying.wait(30)
    killed_at = time.monotonic()
    (running,) = [t for t in _trials(isolated, "crash") if t["state"] == "RUNNING"]

    # The next host, with a short grace period (two minutes by default) so that the test does not wait for it.
    grace = 3
    script = textwrap.dedent(f"""
        import edgeprof.search.study as study
        study.GRACE_SECONDS = {grace}
        from edgeprof.cli import main
        main()  # the command line, on sys.argv[1:]
    """)
    time.sleep(max(0.0, grace + 1 - (time.monotonic() - killed_at)))
    space = isolated / "space.toml"
    done = subprocess.run(
        [sys.executable, "-c", script, "search", "run", str(models / "cnn.keras"), "--data", str(models / "digits.npz"),
         "--space", str(space), "--study", "crash", "--sampler", "random", "--trials", "3", "--resume", *QUICK],
        capture_output=True, text=True, cwd=isolated, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    trials = {t["number"]: t for t in _trials(isolated, "crash")}
    assert trials[running["number"]]["state"] == "FAIL"  # the dead host's trial, failed by the next host
    (retry,) = [t for t in trials.values() if t["attrs"].get("retry_of") == running["number"]]
    assert retry["state"] == "COMPLETE" and retry["params"] == running["params"]  # ... and run again, as it was
    assert len(_measured(list(trials.values()))) == 3
