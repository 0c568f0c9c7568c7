"""Which baseline a compressed model is judged by: the float32 export of its source, on the same test set.

The end-to-end case (the demo, then a compression on its saved split and one on another split) is in test_demo.py;
these are the rules on manifests as the store keeps them, including those written before the test-set hash.
"""

from __future__ import annotations

from typing import Any

import pytest

from edgeprof.store.lineage import baseline_for, describe_baseline, figures_of_merit, same_test_set


def _row(
    row_id: int, *, baseline: bool, test_sha: str | None, data_sha: str, accuracy: float, source_acc: float
) -> dict:
    data: dict[str, Any] = {"name": "digits.npz", "path": "digits.npz", "test": 360, "sha256": data_sha}
    if test_sha is not None:
        data["test_sha256"] = test_sha
    record = {
        "data": data,
        "recipe": {"steps": [] if baseline else [{"kind": "quantize"}]},
        "source": {"sha256": "src", "metrics": {"accuracy": source_acc}},
        "tflite": {"metrics": {"accuracy": accuracy}, "size_bytes": 1000 if baseline else 300, "gzip_bytes": 900},
        "sizes": {"source_tflite_bytes": 1000, "source_tflite_gzip_bytes": 900},
    }
    return {
        "id": row_id,
        "is_baseline": baseline,
        "source_sha256": "src",
        "model_sha256": f"model{row_id}",
        "model_name": "model.tflite",
        "recipe": "" if baseline else "quantize int8",
        "record": record,
    }


def test_same_test_set_by_its_hash_or_for_old_stores_by_the_whole_data_set() -> None:
    a = _row(1, baseline=True, test_sha="t1", data_sha="d1", accuracy=0.98, source_acc=0.98)["record"]
    b = _row(2, baseline=False, test_sha="t1", data_sha="d2", accuracy=0.97, source_acc=0.98)["record"]
    c = _row(3, baseline=False, test_sha="t2", data_sha="d1", accuracy=0.97, source_acc=0.98)["record"]
    assert same_test_set(a, b) is True  # other training split, same test split: comparable
    assert same_test_set(a, c) is False  # same whole-data hash cannot happen with another test split; hash wins
    old_a = _row(4, baseline=True, test_sha=None, data_sha="d1", accuracy=0.98, source_acc=0.98)["record"]
    old_b = _row(5, baseline=False, test_sha=None, data_sha="d1", accuracy=0.97, source_acc=0.98)["record"]
    old_c = _row(6, baseline=False, test_sha=None, data_sha="d9", accuracy=0.97, source_acc=0.98)["record"]
    assert same_test_set(old_a, old_b) is True  # written before the test-set hash: the same data set, same split
    assert same_test_set(old_a, old_c) is None  # unknown, so not compared


def test_the_baseline_on_the_same_test_set_wins_over_a_newer_one() -> None:
    mine = _row(10, baseline=False, test_sha="t1", data_sha="d1", accuracy=0.975, source_acc=0.99)
    same = _row(1, baseline=True, test_sha="t1", data_sha="d1", accuracy=0.986, source_acc=0.986)
    newer_other = _row(5, baseline=True, test_sha="t2", data_sha="d2", accuracy=0.997, source_acc=0.997)
    rows = [mine, same, newer_other]
    assert baseline_for(mine, rows) is same
    merit = figures_of_merit(mine, same, [], None)
    assert merit.baseline_accuracy_from == "float32 TFLite" and merit.accuracy_diff_pp == pytest.approx(-1.1)
    assert "compression run #1" in describe_baseline(mine, rows)


def test_a_baseline_on_another_test_set_is_not_used_for_accuracy_and_the_note_says_why() -> None:
    mine = _row(10, baseline=False, test_sha="t1", data_sha="d1", accuracy=0.975, source_acc=0.99)
    other = _row(5, baseline=True, test_sha="t2", data_sha="d2", accuracy=0.997, source_acc=0.997)
    assert baseline_for(mine, [mine, other]) is other  # its sizes and latency still apply
    merit = figures_of_merit(mine, other, [], None)
    assert merit.baseline_model == "model.tflite" and merit.compression_ratio == pytest.approx(1000 / 300)
    # Not 0.975 - 0.997 = -2.2 pp across two test sets: against the Keras source on this model's own test set.
    assert merit.baseline_accuracy_from == "Keras source" and merit.accuracy_diff_pp == pytest.approx(-1.5)
    assert "compression run #5) was evaluated on another test set" in merit.note
    line = describe_baseline(mine, [mine, other])
    assert "against the Keras source" in line and "another test set" in line
