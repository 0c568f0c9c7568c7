"""The results store on SQLAlchemy Core: a SQLite file by default, PostgreSQL for a team.

SQLite runs in WAL mode: readers never wait for writers, and a process killed mid-write leaves every committed
result intact (the half-written transaction is rolled back when the file is next opened). Each result is written in
its own short transaction, the moment it exists. Writers take the write lock when their transaction starts
(``BEGIN IMMEDIATE``) and wait up to 30 s for it, so many fleet threads and several processes can write at once
without "database is locked" errors or lost updates; ``synchronous=FULL`` makes a commit survive a power cut too.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from edgeprof_agent.record import Energy

from ..errors import StoreError
from . import schema

BUSY_TIMEOUT_MS = 30000
_PG_MIGRATION_LOCK = 0x65646770  # "edgp": serialises schema upgrades between processes on PostgreSQL


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and DEFERRED; we issue BEGIN ourselves (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so), waiting for other connections that switch it at the same moment.

    SQLite answers a journal-mode change that meets another connection's lock with SQLITE_BUSY at once, without
    calling the busy handler: two fleet threads opening a new store together would otherwise fail one board.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000.0
    pause = 0.005
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the lock (SQLITE_BUSY at once when another
    # writer committed in between); IMMEDIATE takes the write lock up front and waits for it with busy_timeout.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def json_safe(value: Any) -> Any:
    """JSON both databases accept: NaN and infinities become null (PostgreSQL rejects them)."""

    def clean(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item

    return clean(json.loads(json.dumps(value, default=str)))


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: _dt.datetime | None = None) -> str:
    """A filter bound as stored (UTC ISO seconds): ``2026-11-27``, ``2026-11-27T10:00``, or an age like ``3d``."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        moment = (now or _dt.datetime.now(_dt.timezone.utc)) - _dt.timedelta(seconds=seconds)
    else:
        try:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise StoreError(
                f"cannot read {text!r} as a time", "use 2026-11-27, 2026-11-27T10:30, or an age like 90m, 12h, 3d, 2w"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")


def _inspection_of(model: dict[str, Any]) -> dict[str, Any] | None:
    """Per-layer facts of the model file, if it is still where the run found it and unchanged; else None."""
    path = model.get("path")
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
        from ..modelfile import sha256_bytes

        if sha256_bytes(data) != model.get("sha256"):
            return None
        from ..tflite.inspect import inspect_model

        found = inspect_model(data, name=str(path))
    except Exception:  # noqa: BLE001 - a missing or odd file must never cost the user a stored result
        return None
    return {
        "macs_total": found.macs_total,
        "arena": found.arena,
        "operators": found.operators,
        "weights": found.weights,
        "layers": [
            {
                "index": layer.index,
                "subgraph": layer.subgraph,
                "op": layer.op,
                "output_shape": layer.output_shape,
                "macs": layer.macs,
                "weight_params": layer.weight_params,
                "weight_bytes": layer.weight_bytes,
                "weight_gzip_bytes": layer.weight_gzip_bytes,
                "sparsity": layer.sparsity,
                "unique_values": layer.unique_values,
            }
            for layer in found.layers
        ],
    }


class Store:
    """Every compression and profile run, kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url)
        except (SQLAlchemyError, ImportError) as exc:
            fix = "pip install 'edgeprof[postgres]'" if "psycopg" in str(exc) else "check --store"
            raise StoreError(f"cannot open results store {self.display_url}: {exc}", fix) from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
            self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self._writer = self.engine
        self._migrate()

    @property
    def display_url(self) -> str:
        """The URL without a password, for messages."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.url)

    @property
    def location(self) -> str:
        """Where the store is, as a user would write it: a SQLite file's path, else the URL without a password."""
        if self.dialect == "sqlite" and self.url.startswith("sqlite:///"):
            return self.url[len("sqlite:///") :]
        return self.display_url

    # -- schema ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _version(conn: Connection) -> tuple[set[str], int]:
        tables = set(inspect(conn).get_table_names())
        version = 0
        if "meta" in tables:
            row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
            version = int(row[0]) if row else 0
        return tables, version

    def _migrate(self) -> None:
        try:
            # Most opens find the current schema: a plain read, no write lock (a read-only store works too).
            with self.engine.connect() as conn:
                _tables, version = self._version(conn)
            if version == schema.SCHEMA_VERSION:
                return
            with self._writer.begin() as conn:  # create or upgrade under the write lock, checking again
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                tables, version = self._version(conn)
                if version == schema.SCHEMA_VERSION:
                    return
                if version == 0:
                    if tables & {"profiles", "compressions", "models"}:
                        raise StoreError(
                            f"{self.display_url} has result tables but no schema version",
                            "it was not written by edgeprof; pass another --store",
                        )
                    schema.metadata.create_all(conn)
                    conn.execute(insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
                    conn.execute(insert(schema.meta).values(key="created_at", value=_now()))
                    return
                if version > schema.SCHEMA_VERSION:
                    raise StoreError(
                        f"results store {self.display_url} has schema {version}, newer than this edgeprof "
                        f"({schema.SCHEMA_VERSION})",
                        "upgrade edgeprof",
                    )
                for target in range(version + 1, schema.SCHEMA_VERSION + 1):
                    for step in schema.MIGRATIONS.get(target, []):
                        try:
                            schema.run_migration(conn, step)
                        except Exception as exc:  # noqa: BLE001 - any failure rolls the whole upgrade back
                            detail = str(getattr(exc, "orig", exc)).strip().splitlines()
                            raise StoreError(
                                f"cannot upgrade results store {self.display_url} from schema {version} to "
                                f"{schema.SCHEMA_VERSION} ({type(exc).__name__}: {detail[0] if detail else ''}); "
                                "the store was left as it was",
                                "make a copy of the store and report this",
                            ) from None
                if version != schema.SCHEMA_VERSION:
                    conn.execute(
                        update(schema.meta)
                        .where(schema.meta.c.key == "schema_version")
                        .values(value=str(schema.SCHEMA_VERSION))
                    )
        except StoreError:
            raise
        except DBAPIError as exc:
            raise StoreError(
                f"cannot use results store {self.display_url}: {str(exc.orig).strip().splitlines()[0]}",
                "check that it is an edgeprof results database you can write to"
                if self.dialect != "sqlite"
                else "check that the file is a SQLite database and its folder is writable",
            ) from None

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
        return int(row[0]) if row else 0

    # -- writing --------------------------------------------------------------------------------------------------

    def _insert_ignore(self, table: Any) -> Any:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            return None
        return dialect_insert(table)

    def _needs_inspection(self, sha256: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.models.c.inspection).where(schema.models.c.sha256 == sha256)).first()
        return row is None or row[0] is None

    def _ensure_model(self, conn: Connection, model: dict[str, Any], inspection: dict[str, Any] | None) -> None:
        values = {
            "sha256": model["sha256"],
            "name": model["name"],
            "size_bytes": model["size_bytes"],
            "gzip_bytes": model["gzip_bytes"],
            "first_seen": _now(),
            "inspection": inspection,
        }
        statement = self._insert_ignore(schema.models)
        if statement is not None:
            conn.execute(statement.values(**values).on_conflict_do_nothing(index_elements=["sha256"]))
        elif not conn.execute(select(schema.models.c.sha256).where(schema.models.c.sha256 == model["sha256"])).first():
            conn.execute(insert(schema.models).values(**values))
        if inspection is not None:
            conn.execute(
                update(schema.models)
                .where(schema.models.c.sha256 == model["sha256"], schema.models.c.inspection.is_(None))
                .values(inspection=inspection)
            )

    def _write(self, work: Any) -> int:
        try:
            with self._writer.begin() as conn:
                return int(work(conn))
        except DBAPIError as exc:
            raise StoreError(
                f"cannot write to results store {self.display_url}: {str(exc.orig).strip().splitlines()[0]}",
                "the result is lost; check the disk and the store's permissions, then run again",
            ) from None

    def add_profile(self, result: Any) -> int:
        """Keep one profile run (a :class:`ProfileResult` or its ``to_dict()``); returns its id."""
        record = json_safe(result if isinstance(result, dict) else result.to_dict())
        record.pop("id", None)
        lat = record["latency_ms"]
        group = record.get("group") or {}
        inspection = _inspection_of(record["model"]) if self._needs_inspection(record["model"]["sha256"]) else None

        def work(conn: Connection) -> int:
            self._ensure_model(conn, record["model"], inspection)
            row = conn.execute(
                insert(schema.profiles).values(
                    created_at=record["created_at"],
                    edgeprof_version=record["edgeprof_version"],
                    model_sha256=record["model"]["sha256"],
                    model_name=record["model"]["name"],
                    target=record["target"],
                    board=(record.get("device") or {}).get("hostname"),
                    agent_version=record.get("agent_version"),
                    runtime=(record.get("runtime") or {}).get("name"),
                    runtime_version=(record.get("runtime") or {}).get("version"),
                    delegate=record.get("delegate"),
                    threads=record.get("threads"),
                    runs=lat["count"],
                    median_ms=lat["median"],
                    p90_ms=lat["p90"],
                    p99_ms=lat["p99"],
                    mean_ms=lat["mean"],
                    std_ms=lat["std"],
                    peak_rss_kb=(record.get("memory") or {}).get("peak_rss_kb"),
                    energy_mj=energy_mj(record),
                    throttled=None if record.get("throttled") is None else bool(record["throttled"]),
                    record=record,
                    group_id=group.get("id"),
                    group_index=group.get("index"),
                    **schema.profile_columns_v2(record),
                )
            )
            return row.inserted_primary_key[0]

        return self._write(work)

    def create_group(
        self, model: dict[str, Any], target: str, planned: int, batch: str, record: dict[str, Any] | None = None
    ) -> int:
        """Open a group of ``planned`` runs (``profile --repeat``) before its first run; returns its id."""
        inspection = _inspection_of(model) if self._needs_inspection(model["sha256"]) else None
        facts = json_safe(record or {})

        def work(conn: Connection) -> int:
            self._ensure_model(conn, model, inspection)
            row = conn.execute(
                insert(schema.profile_groups).values(
                    created_at=_now(),
                    model_sha256=model["sha256"],
                    model_name=model["name"],
                    target=target,
                    planned=planned,
                    batch=batch,
                    status="running",
                    record=facts,
                )
            )
            return row.inserted_primary_key[0]

        return self._write(work)

    def finish_group(self, group_id: int, error: str | None = None) -> None:
        """Close a group: complete, or incomplete with the reason (the runs it has stay stored)."""

        def work(conn: Connection) -> int:
            row = conn.execute(
                select(schema.profile_groups.c.record).where(schema.profile_groups.c.id == group_id)
            ).first()
            facts = dict(row[0] or {}) if row else {}
            if error:
                facts["error"] = error
            conn.execute(
                update(schema.profile_groups)
                .where(schema.profile_groups.c.id == group_id)
                .values(status="incomplete" if error else "complete", record=facts)
            )
            return group_id

        self._write(work)

    def add_compression(self, manifest: dict[str, Any], model: dict[str, Any]) -> int:
        """Keep one compression run: its manifest and the TFLite model it wrote; returns its id."""
        record = json_safe(manifest)
        record.setdefault("written_to", model.get("path"))  # where the file was written: its folder names it
        source = record.get("source") or {}
        tflite = record.get("tflite") or {}
        inspection = _inspection_of(model) if self._needs_inspection(model["sha256"]) else None

        def work(conn: Connection) -> int:
            self._ensure_model(conn, model, inspection)
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
                    is_baseline=schema.is_baseline(record),
                )
            )
            return row.inserted_primary_key[0]

        return self._write(work)

    # -- reading --------------------------------------------------------------------------------------------------

    def _filtered(
        self,
        table: Any,
        *,
        model: str | None = None,
        target: str | None = None,
        since: str | None = None,
        until: str | None = None,
        ids: Iterable[int] | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> Any:
        query = select(table).order_by(table.c.id.desc() if newest_first else table.c.id)
        if model:
            query = query.where(
                table.c.model_sha256.startswith(model.lower())
                | (table.c.model_name == model)
                | (table.c.model_name.like(model.replace("*", "%")) if "*" in model else False)
            )
        if target and "target" in table.c:
            query = query.where(
                table.c.target.like(target.replace("*", "%")) if "*" in target else table.c.target == target
            )
        if since:
            query = query.where(table.c.created_at >= parse_time(since))
        if until:
            query = query.where(table.c.created_at <= parse_time(until))
        if ids is not None:
            query = query.where(table.c.id.in_(list(ids)))
        if limit:
            query = query.limit(limit)
        return query

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def profiles(
        self,
        *,
        model: str | None = None,
        target: str | None = None,
        since: str | None = None,
        until: str | None = None,
        ids: Iterable[int] | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Profile runs, newest first; ``model`` is a name (``*`` globs) or a SHA-256 prefix."""
        return self._rows(
            self._filtered(
                schema.profiles,
                model=model,
                target=target,
                since=since,
                until=until,
                ids=ids,
                limit=limit,
                newest_first=newest_first,
            )
        )

    def compressions(
        self,
        limit: int | None = None,
        *,
        model: str | None = None,
        since: str | None = None,
        until: str | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Compression runs, newest first; ``model`` matches the compressed model's name or hash."""
        return self._rows(
            self._filtered(
                schema.compressions, model=model, since=since, until=until, limit=limit, newest_first=newest_first
            )
        )

    def profile(self, run_id: int) -> dict[str, Any]:
        rows = self._rows(select(schema.profiles).where(schema.profiles.c.id == run_id))
        if not rows:
            raise StoreError(f"no profile run {run_id} in {self.display_url}", "see 'edgeprof results list'")
        return rows[0]

    def compression(self, run_id: int) -> dict[str, Any]:
        rows = self._rows(select(schema.compressions).where(schema.compressions.c.id == run_id))
        if not rows:
            raise StoreError(
                f"no compression run {run_id} in {self.display_url}", "see 'edgeprof results list --compressions'"
            )
        return rows[0]

    def group(self, group_id: int) -> dict[str, Any]:
        """A group's row with its runs (``runs``: profile rows in round order) and the groups made with it
        (``partners``: rows of the other groups of its batch)."""
        rows = self._rows(select(schema.profile_groups).where(schema.profile_groups.c.id == group_id))
        if not rows:
            raise StoreError(
                f"no group g:{group_id} in {self.display_url}", "see 'edgeprof results list' (its group column)"
            )
        found = rows[0]
        found["runs"] = self._rows(
            select(schema.profiles)
            .where(schema.profiles.c.group_id == group_id)
            .order_by(schema.profiles.c.group_index, schema.profiles.c.id)
        )
        found["partners"] = self._rows(
            select(schema.profile_groups)
            .where(schema.profile_groups.c.batch == found["batch"], schema.profile_groups.c.id != group_id)
            .order_by(schema.profile_groups.c.id)
        )
        return found

    def groups(
        self, *, model: str | None = None, target: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Groups, newest first, filtered like :meth:`profiles` (without their runs: :meth:`group` has them)."""
        return self._rows(self._filtered(schema.profile_groups, model=model, target=target, limit=limit))

    def models(self, sha256s: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """sha256 -> the model's row (name, sizes, inspection)."""
        query = select(schema.models)
        if sha256s is not None:
            query = query.where(schema.models.c.sha256.in_(list(sha256s)))
        return {row["sha256"]: row for row in self._rows(query)}

    def iter_profiles(self, batch: int = 200, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching profile, oldest first, a batch at a time (exports of big stores stay small in memory)."""
        last = 0
        while True:
            query = self._filtered(schema.profiles, newest_first=False, **filters).where(schema.profiles.c.id > last)
            rows = self._rows(query.limit(batch))
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def energy_mj(record: dict[str, Any]) -> float | None:
    """Energy per inference in mJ when a sensor measured it (the record's ``Energy.mj``); None otherwise."""
    energy = Energy.from_dict(record.get("energy") or {})
    return energy.mj() if energy is not None else None


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def iter_records(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for row in rows:
        yield row["record"]
