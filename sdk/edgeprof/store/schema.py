"""The results schema, one definition for SQLite and PostgreSQL, with numbered migrations.

Columns hold what lists and filters need; the full record of each run is kept as JSON beside them, so nothing
measured is lost when a later edgeprof wants a figure no column has yet.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1

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
)

# version -> list of SQL statements that take the schema from version-1 to version.
MIGRATIONS: dict[int, list[str]] = {}
