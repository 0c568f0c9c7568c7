"""The results store on SQLAlchemy Core: a SQLite file by default, PostgreSQL for a team.

SQLite runs in WAL mode with a busy timeout, so several fleet threads can write at once and a crash mid-run leaves
every committed result intact. Each result is written in its own transaction, the moment it exists.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..errors import StoreError
from . import schema


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class Store:
    """Every compression and profile run, kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open results store {url}: {exc}", "check --store") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._migrate()

    def _migrate(self) -> None:
        try:
            with self.engine.begin() as conn:
                schema.metadata.create_all(conn)
                row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
                version = int(row[0]) if row else 0
                if version == 0:
                    conn.execute(insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
                    return
                if version > schema.SCHEMA_VERSION:
                    raise StoreError(
                        f"results store {self.url} has schema {version}, newer than this edgeprof "
                        f"({schema.SCHEMA_VERSION})",
                        "upgrade edgeprof",
                    )
                for target in range(version + 1, schema.SCHEMA_VERSION + 1):
                    for statement in schema.MIGRATIONS.get(target, []):
                        conn.exec_driver_sql(statement)
                conn.execute(
                    schema.meta.update()
                    .where(schema.meta.c.key == "schema_version")
                    .values(value=str(schema.SCHEMA_VERSION))
                )
        except OperationalError as exc:
            raise StoreError(
                f"cannot use results store {self.url}: {exc.orig}",
                "check that the file is a SQLite database and its folder is writable",
            ) from None

    def _ensure_model(self, conn: Any, model: dict[str, Any]) -> None:
        exists = conn.execute(select(schema.models.c.sha256).where(schema.models.c.sha256 == model["sha256"])).first()
        if not exists:
            conn.execute(
                insert(schema.models).values(
                    sha256=model["sha256"],
                    name=model["name"],
                    size_bytes=model["size_bytes"],
                    gzip_bytes=model["gzip_bytes"],
                    first_seen=_now(),
                )
            )

    def add_profile(self, result: Any) -> int:
        record = _json_safe(result.to_dict())
        lat = record["latency_ms"]
        energy = record.get("energy") or {}
        with self.engine.begin() as conn:
            self._ensure_model(conn, record["model"])
            row = conn.execute(
                insert(schema.profiles).values(
                    created_at=record["created_at"],
                    edgeprof_version=record["edgeprof_version"],
                    model_sha256=record["model"]["sha256"],
                    model_name=record["model"]["name"],
                    target=record["target"],
                    board=(record.get("device") or {}).get("hostname"),
                    agent_version=record.get("agent_version"),
                    runtime=record["runtime"]["name"],
                    runtime_version=record["runtime"]["version"],
                    delegate=record.get("delegate"),
                    threads=record.get("threads"),
                    runs=lat["count"],
                    median_ms=lat["median"],
                    p90_ms=lat["p90"],
                    p99_ms=lat["p99"],
                    mean_ms=lat["mean"],
                    std_ms=lat["std"],
                    peak_rss_kb=(record.get("memory") or {}).get("peak_rss_kb"),
                    energy_mj=energy.get("mj_per_inference") if energy.get("available") else None,
                    throttled=bool(record.get("throttled", False)),
                    record=record,
                )
            )
            return int(row.inserted_primary_key[0])

    def add_compression(self, manifest: dict[str, Any], model: dict[str, Any]) -> int:
        record = _json_safe(manifest)
        source = record.get("source", {})
        tflite = record.get("tflite", {})
        with self.engine.begin() as conn:
            self._ensure_model(conn, model)
            row = conn.execute(
                insert(schema.compressions).values(
                    created_at=record.get("created_at") or _now(),
                    edgeprof_version=record.get("edgeprof_version", "?"),
                    source_sha256=source.get("sha256", ""),
                    model_sha256=model["sha256"],
                    model_name=model["name"],
                    recipe=record.get("recipe_text", ""),
                    accuracy_source=(source.get("metrics") or {}).get("accuracy"),
                    accuracy_tflite=(tflite.get("metrics") or {}).get("accuracy"),
                    gzip_ratio=(record.get("sizes") or {}).get("gzip_ratio"),
                    record=record,
                )
            )
            return int(row.inserted_primary_key[0])

    def profiles(
        self, *, model: str | None = None, target: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        table = schema.profiles
        query = select(table).order_by(table.c.id.desc())
        if model:
            query = query.where((table.c.model_sha256.startswith(model)) | (table.c.model_name == model))
        if target:
            query = query.where(table.c.target == target)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def compressions(self, limit: int | None = None) -> list[dict[str, Any]]:
        table = schema.compressions
        query = select(table).order_by(table.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def profile(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.profiles).where(schema.profiles.c.id == run_id)).first()
        if row is None:
            raise StoreError(f"no profile run {run_id} in {self.url}", "see 'edgeprof results list'")
        return dict(row._mapping)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def iter_records(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for row in rows:
        yield row["record"]
