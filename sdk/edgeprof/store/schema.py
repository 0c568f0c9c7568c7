"""The results schema, one definition for SQLite and PostgreSQL, with numbered migrations.

Columns hold what lists and filters need; the full record of each run is kept as JSON beside them, so nothing
measured is lost when a later edgeprof wants a figure no column has yet: a migration adds the column and fills it
from the records already stored.

A new store is created at ``SCHEMA_VERSION`` from the tables below. A store written by an older edgeprof is brought
up to date by running ``MIGRATIONS[v]`` for each version after its own, in one transaction, so it is either fully
upgraded or untouched. The tables below must always equal version 1's tables plus every migration (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 3

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("gzip_bytes", Integer, nullable=False),
    Column("first_seen", String(40), nullable=False),
    # v2: what `edgeprof inspect` found (per-layer bytes, MACs, arena), kept so reports need no model file.
    Column("inspection", JSON),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False, index=True),
    Column("edgeprof_version", String(40), nullable=False),
    Column("model_sha256", String(64), ForeignKey("models.sha256"), nullable=False, index=True),
    Column("model_name", Text, nullable=False),
    Column("target", Text, nullable=False, index=True),
    Column("board", Text),
    Column("agent_version", String(40)),
    Column("runtime", String(64)),
    Column("runtime_version", String(40)),
    Column("delegate", Text),
    Column("threads", Integer),
    Column("runs", Integer),
    Column("median_ms", Float),
    Column("p90_ms", Float),
    Column("p99_ms", Float),
    Column("mean_ms", Float),
    Column("std_ms", Float),
    Column("peak_rss_kb", Integer),
    Column("energy_mj", Float),
    Column("throttled", Boolean),
    Column("record", JSON, nullable=False),
    # v2
    Column("min_ms", Float),
    Column("p95_ms", Float),
    Column("machine", String(64)),
    # v3: the --repeat group the run belongs to (profile_groups.id) and its round (1-based); null for a lone run.
    Column("group_id", Integer, index=True),
    Column("group_index", Integer),
)
Index("ix_profiles_model_target", profiles.c.model_sha256, profiles.c.target, profiles.c.id)

# v3: one model on one target measured in ``planned`` fresh agent processes (``profile --repeat N``). Groups made by
# one command share a ``batch`` (their runs were interleaved round by round: a, b, a, b, ...). ``status`` is
# "running" while it is measured, "complete", or "incomplete" (``record.error`` says why; its runs stay stored).
profile_groups = Table(
    "profile_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False, index=True),
    Column("model_sha256", String(64), ForeignKey("models.sha256"), nullable=False, index=True),
    Column("model_name", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("planned", Integer, nullable=False),
    Column("batch", String(40), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("record", JSON, nullable=False),
)

compressions = Table(
    "compressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False, index=True),
    Column("edgeprof_version", String(40), nullable=False),
    Column("source_sha256", String(64), nullable=False, index=True),
    Column("model_sha256", String(64), ForeignKey("models.sha256"), nullable=False, index=True),
    Column("model_name", Text, nullable=False),
    Column("recipe", Text, nullable=False),
    Column("accuracy_source", Float),
    Column("accuracy_tflite", Float),
    Column("gzip_ratio", Float),
    Column("record", JSON, nullable=False),
    # v2: a recipe without steps is the float32 export of its source, the baseline compressed models are judged by.
    Column("is_baseline", Boolean),
)


def profile_columns_v2(record: dict[str, Any]) -> dict[str, Any]:
    """The v2 profile columns, from a stored record (used for new rows and to fill old ones)."""
    latency = record.get("latency_ms") or {}
    device = record.get("device") or {}
    return {
        "min_ms": latency.get("min"),
        "p95_ms": latency.get("p95"),
        "machine": device.get("machine"),
    }


def is_baseline(record: dict[str, Any]) -> bool:
    return not ((record.get("recipe") or {}).get("steps") or [])


def _fill_v2(conn: Connection) -> None:
    for row_id, record in conn.execute(select(profiles.c.id, profiles.c.record)).all():
        conn.execute(update(profiles).where(profiles.c.id == row_id).values(**profile_columns_v2(record or {})))
    for row_id, record in conn.execute(select(compressions.c.id, compressions.c.record)).all():
        conn.execute(
            update(compressions).where(compressions.c.id == row_id).values(is_baseline=is_baseline(record or {}))
        )


Migration = str | Callable[[Connection], None]

# version -> what takes a store from version-1 to version: SQL statements (valid on SQLite and PostgreSQL) and
# Python steps that fill new columns from the JSON records.
MIGRATIONS: dict[int, list[Migration]] = {
    2: [
        "ALTER TABLE models ADD COLUMN inspection JSON",
        "ALTER TABLE profiles ADD COLUMN min_ms FLOAT",
        "ALTER TABLE profiles ADD COLUMN p95_ms FLOAT",
        "ALTER TABLE profiles ADD COLUMN machine VARCHAR(64)",
        "ALTER TABLE compressions ADD COLUMN is_baseline BOOLEAN",
        "CREATE INDEX ix_profiles_model_target ON profiles (model_sha256, target, id)",
        _fill_v2,
    ],
    3: [
        lambda conn: profile_groups.create(conn),  # the same DDL a new store gets, on either database
        "ALTER TABLE profiles ADD COLUMN group_id INTEGER",
        "ALTER TABLE profiles ADD COLUMN group_index INTEGER",
        "CREATE INDEX ix_profiles_group_id ON profiles (group_id)",
    ],
}


def run_migration(conn: Connection, step: Migration) -> None:
    if isinstance(step, str):
        conn.execute(text(step))
    else:
        step(conn)
