"""How a model is named in tables: one function, so `results list`, `compare`, `check` and reports agree.

Every file `edgeprof compress` writes is called ``model.tflite``, so a file name alone cannot tell runs apart. The
label adds the folder the file was in and the recipe that made it: ``int8/model.tflite (quantize int8)``. A float32
export (a compression without steps) is marked as the baseline.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from .lineage import latest_by_model
from .sql import Store


def model_label(name: str, path: str | None = None, recipe: str | None = None, baseline: bool = False) -> str:
    """``folder/file (recipe)``: the folder when the file was found in one, the recipe when edgeprof made it."""
    label = name
    if path:
        folder = PurePath(path).parent.name
        if folder and folder not in (".", ".."):
            label = f"{folder}/{name}"
    if baseline:
        return f"{label} (float32 baseline)"
    return f"{label} ({recipe})" if recipe else label


class Labels:
    """Labels for the models of one store; the recipes are looked up once."""

    def __init__(self, store: Store) -> None:
        self._made = latest_by_model(store.compressions())

    def of(self, name: str, sha256: str, path: str | None = None, recipe: str | None = None) -> str:
        made = self._made.get(sha256)
        if made is None:
            return model_label(name, path, recipe)
        written = (made.get("record") or {}).get("written_to")
        return model_label(name, path or written, made.get("recipe") or recipe, bool(made.get("is_baseline")))

    def of_profile(self, row: dict[str, Any]) -> str:
        """The label of a stored profile run (a row of :meth:`Store.profiles`)."""
        model = (row.get("record") or {}).get("model") or {}
        return self.of(row["model_name"], row["model_sha256"], model.get("path"))

    def of_record(self, record: dict[str, Any]) -> str:
        """The label of a profile record (the JSON ``results show --json`` prints)."""
        model = record.get("model") or {}
        return self.of(model.get("name", "?"), model.get("sha256", ""), model.get("path"))

    def of_compression(self, row: dict[str, Any]) -> str:
        written = (row.get("record") or {}).get("written_to")
        return model_label(row["model_name"], written, row.get("recipe"), bool(row.get("is_baseline")))
