"""``edgeprof search --executor ray`` on a real local Ray cluster (a head and a worker node, scripts/services/ray.sh)
and two test-bed boards, each declared as a custom resource by one node: trials spread over both nodes, each board
is measured by the node that declares it, and a board no node declares is refused before anything trains."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.testbed import TestBed, write_config

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

PTQ = '[[step]]\nkind = "quantize"\nmode = ["dynamic", "int8"]\n'
QUICK = ["--runs", "10", "--min-seconds", "0", "--warmup-seconds", "0", "--repeat", "2"]


@pytest.fixture(scope="module")
def ray_address() -> str:
    address = os.environ.get("EDGEPROF_TEST_RAY_ADDRESS")
    if not address:
        pytest.skip(
            os.environ.get("EDGEPROF_TEST_RAY_SKIP")
            or "no Ray cluster: scripts/services/ray.sh starts one (./scripts/test sources it)"
        )
    return address


def _nodes(address: str) -> dict[str, str]:
    """board resource -> the node id that declares it, asked of the cluster itself."""
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        return {
            resource: node["NodeID"]
            for node in ray.nodes()
            if node["Alive"]
            for resource in node["Resources"]
            if resource.startswith("edgeprof-board:")
        }
    finally:
        ray.shutdown()


def test_trials_are_ray_tasks_spread_over_the_nodes_and_each_board_is_its_nodes(
    bed: TestBed, fresh_board, isolated: Path, models: Path, ray_address: str
) -> None:
    boards = [fresh_board("ray-1"), fresh_board("ray-2")]
    write_config(bed, isolated, boards)
    space = isolated / "space.toml"
    space.write_text(PTQ)
    declared = _nodes(ray_address)
    assert set(declared) == {"edgeprof-board:ray-1", "edgeprof-board:ray-2"}
    assert declared["edgeprof-board:ray-1"] != declared["edgeprof-board:ray-2"]
    search = ["search", str(models / "cnn.keras"), "--data", str(models / "digits.npz"), "--space", str(space),
              "--sampler", "grid", "--executor", "ray", "--ray-address", ray_address, *QUICK]  # fmt: skip
    refused = run_cli(*search, "--target", "local", cwd=isolated)
    assert refused.returncode == 2
    assert "no node of the Ray cluster" in refused.stderr and "declares board(s) local" in refused.stderr
    assert "--resources '{\"edgeprof-board:local\": 1}'" in refused.stderr
    done = run_cli(*search, "--target", "ray-1,ray-2", cwd=isolated, timeout=900)
    assert done.returncode == 0, done.stderr
    shown = json.loads(run_cli("search", "show", "cnn-space", "--json", cwd=isolated).stdout)
    assert shown["counts"] == {"complete": 2}
    assert shown["objectives"] == ["accuracy_drop", "median_ms@ray-1", "median_ms@ray-2"]
    nodes = {t["node"] for t in shown["trials"]}
    assert nodes == set(declared.values()), "two trials at once on two 1-CPU nodes: one on each"
    for trial in shown["trials"]:
        for board in ("ray-1", "ray-2"):
            figures = trial["figures"]["boards"][board]
            assert figures["node"] == declared[f"edgeprof-board:{board}"]  # measured where the board hangs off
            assert figures["median_ms"] > 0 and figures["speed"]["test"].startswith("paired t")
