"""Where results live: ``open_store()`` gives a :class:`Store` for a path, a URL, or the default."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import StoreError
from .sql import Store, sqlite_url

DEFAULT_PATH = Path(".edgeprof") / "results.db"


def default_location() -> str:
    """``$EDGEPROF_STORE``, else ``./.edgeprof/results.db`` (per project, like ``.pytest_cache``)."""
    return os.environ.get("EDGEPROF_STORE") or str(DEFAULT_PATH)


def open_store(spec: str | Path | Store | None = "default") -> Store:
    """A store from a file path, a SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``) or ``default``."""
    if isinstance(spec, Store):
        return spec
    text = default_location() if spec in (None, "default") else str(spec)
    if "://" in text:
        return Store(text)
    path = Path(text).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent} for the results store: {exc}", "pass --store PATH") from None
    return Store(sqlite_url(path))


@contextlib.contextmanager
def using_store(spec: str | Path | Store | None = "default") -> Iterator[Store]:
    """Open a store for one piece of work; a :class:`Store` the caller passed stays open."""
    store = open_store(spec)
    try:
        yield store
    finally:
        if store is not spec:
            store.close()


__all__ = ["DEFAULT_PATH", "Store", "default_location", "open_store", "using_store"]
