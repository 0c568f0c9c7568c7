"""The results store: a real SQLite file (WAL, migrations, concurrent writers, SIGKILL mid-write) and a real PostgreSQL.

PostgreSQL tests need the server that scripts/services/postgres.sh starts (EDGEPROF_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, create_engine, inspect, text

import edgeprof
from edgeprof.errors import StoreError
from edgeprof.store import open_store, schema
from tests.conftest import ROOT, run_cli

QUICK = {"runs": 200, "min_seconds": 0.0, "warmup_seconds": 0.0, "warmup_runs": 3, "threads": 1}

# The schema edgeprof 0.1 (schema version 1) wrote, exactly as SQLite stored it: stores made then must keep working.
V1_DDL = """
CREATE TABLE meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE models (sha256 VARCHAR(64) NOT NULL, name TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    gzip_bytes INTEGER NOT NULL, first_seen VARCHAR(40) NOT NULL, PRIMARY KEY (sha256));
CREATE TABLE profiles (id INTEGER NOT NULL, created_at VARCHAR(40) NOT NULL, edgeprof_version VARCHAR(40) NOT NULL,
    model_sha256 VARCHAR(64) NOT NULL, model_name TEXT NOT NULL, target TEXT NOT NULL, board TEXT,
    agent_version VARCHAR(40), runtime VARCHAR(64), runtime_version VARCHAR(40), delegate TEXT, threads INTEGER,
    runs INTEGER, median_ms FLOAT, p90_ms FLOAT, p99_ms FLOAT, mean_ms FLOAT, std_ms FLOAT, peak_rss_kb INTEGER,
    energy_mj FLOAT, throttled BOOLEAN, record JSON NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(model_sha256) REFERENCES models (sha256));
CREATE INDEX ix_profiles_created_at ON profiles (created_at);
CREATE INDEX ix_profiles_target ON profiles (target);
CREATE INDEX ix_profiles_model_sha256 ON profiles (model_sha256);
CREATE TABLE compressions (id INTEGER NOT NULL, created_at VARCHAR(40) NOT NULL, edgeprof_version VARCHAR(40) NOT NULL,
    source_sha256 VARCHAR(64) NOT NULL, model_sha256 VARCHAR(64) NOT NULL, model_name TEXT NOT NULL,
    recipe TEXT NOT NULL, accuracy_source FLOAT, accuracy_tflite FLOAT, gzip_ratio FLOAT, record JSON NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(model_sha256) REFERENCES models (sha256));
CREATE INDEX ix_compressions_created_at ON compressions (created_at);
CREATE INDEX ix_compressions_source_sha256 ON compressions (source_sha256);
CREATE INDEX ix_compressions_model_sha256 ON compressions (model_sha256);
INSERT INTO meta VALUES ('schema_version', '1');
"""

V2_COLUMNS = {"models": {"inspection"}, "profiles": {"min_ms", "p95_ms", "machine"}, "compressions": {"is_baseline"}}
V3_COLUMNS = {"profiles": {"group_id", "group_index"}}
V3_TABLES = {"profile_groups"}


@pytest.fixture(scope="session")
def record(models: Path) -> dict[str, Any]:
    """One real profile run of a real model on local, as the store receives it."""
    return edgeprof.profile(models / "float.tflite", "local", store=None, **QUICK).to_dict()


def _manifest(record: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "created_at": "2026-11-27T09:00:00+00:00",
        "edgeprof_version": "0.1.0",
        "source": {"path": "cnn.keras", "sha256": "5" * 64, "metrics": {"accuracy": 0.97}},
        "recipe": {"seed": 0, "steps": steps},
        "recipe_text": " → ".join(s["kind"] for s in steps) or "float32 export",
        "tflite": {**record["model"], "metrics": {"accuracy": 0.96}},
        "sizes": {"gzip_ratio": 1.0},
    }


def _v1_store(path: Path, record: dict[str, Any], profiles: int = 3) -> None:
    """A store as edgeprof 0.1 wrote it, rows included (the columns v1's add_profile filled)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
        m = record["model"]
        conn.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?)",
            (m["sha256"], m["name"], m["size_bytes"], m["gzip_bytes"], "2026-11-01T00:00:00+00:00"),
        )
        lat = record["latency_ms"]
        for i in range(profiles):
            conn.execute(
                "INSERT INTO profiles (created_at, edgeprof_version, model_sha256, model_name, target, board,"
                " agent_version, runtime, runtime_version, delegate, threads, runs, median_ms, p90_ms, p99_ms,"
                " mean_ms, std_ms, peak_rss_kb, energy_mj, throttled, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"2026-11-0{i + 1}T00:00:00+00:00",
                    "0.1.0",
                    m["sha256"],
                    m["name"],
                    "local",
                    record["device"].get("hostname"),
                    record["agent_version"],
                    record["runtime"]["name"],
                    record["runtime"]["version"],
                    record["delegate"],
                    record["threads"],
                    lat["count"],
                    lat["median"],
                    lat["p90"],
                    lat["p99"],
                    lat["mean"],
                    lat["std"],
                    record["memory"]["peak_rss_kb"],
                    None,
                    0,
                    json.dumps(record),
                ),
            )
        for steps in ([], [{"kind": "quantize", "mode": "int8"}]):
            conn.execute(
                "INSERT INTO compressions (created_at, edgeprof_version, source_sha256, model_sha256, model_name,"
                " recipe, accuracy_source, accuracy_tflite, gzip_ratio, record) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    "2026-11-01T00:00:00+00:00",
                    "0.1.0",
                    "5" * 64,
                    m["sha256"],
                    m["name"],
                    "r",
                    0.97,
                    0.96,
                    1.0,
                    json.dumps(_manifest(record, steps)),
                ),
            )


def _columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}
    finally:
        engine.dispose()


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: "), done.stderr
    return lines[0]


# --- SQLite ------------------------------------------------------------------------------------------------------


def test_a_new_store_is_one_wal_file_at_the_current_schema(tmp_path: Path, record: dict[str, Any]) -> None:
    path = tmp_path / "results.db"
    with open_store(path) as db:
        run_id = db.add_profile(record)
        assert db.schema_version() == schema.SCHEMA_VERSION == 3
        row = db.profile(run_id)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Everything the issue asks to keep is in the stored record.
    kept = row["record"]
    for key in (
        "model",
        "target",
        "device",
        "agent_version",
        "runtime",
        "delegate",
        "options",
        "samples_ms",
        "latency_ms",
        "memory",
        "created_at",
        "edgeprof_version",
    ):
        assert kept[key] == json.loads(json.dumps(record[key])), key
    assert row["min_ms"] == record["latency_ms"]["min"] and row["machine"] == record["device"]["machine"]


def test_a_v1_store_is_upgraded_in_place(tmp_path: Path, record: dict[str, Any]) -> None:
    path = tmp_path / "old.db"
    _v1_store(path, record)
    with open_store(path) as db:
        assert db.schema_version() == schema.SCHEMA_VERSION
        rows = db.profiles(newest_first=False)
        assert [r["created_at"][:10] for r in rows] == ["2026-11-01", "2026-11-02", "2026-11-03"]
        for row in rows:  # old rows keep their figures and gain the new columns, filled from their records
            assert row["median_ms"] == record["latency_ms"]["median"]
            assert row["min_ms"] == record["latency_ms"]["min"] and row["p95_ms"] == record["latency_ms"]["p95"]
            assert row["machine"] == record["device"]["machine"]
            assert row["record"]["samples_ms"] == record["samples_ms"]
        assert [c["is_baseline"] for c in db.compressions(newest_first=False)] == [True, False]
        new_id = db.add_profile(record)
        assert new_id == 4
    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    # The upgraded file has exactly the tables and columns of a store created by this edgeprof.
    assert _columns(f"sqlite:///{path}") == _columns(f"sqlite:///{fresh}")
    with open_store(path) as db:  # opening again changes nothing
        assert db.schema_version() == schema.SCHEMA_VERSION and len(db.profiles()) == 4


def _v2_store(path: Path, record: dict[str, Any]) -> None:
    """A store as edgeprof wrote it before groups (schema 2): a v1 store taken through migration 2 alone."""
    _v1_store(path, record)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for step in schema.MIGRATIONS[2]:
            schema.run_migration(conn, step)
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    engine.dispose()


def test_a_v2_store_gains_groups_and_its_old_runs_still_render(tmp_path: Path, record: dict[str, Any]) -> None:
    path = tmp_path / "v2.db"
    # The oldest records: what agent 0.2 wrote (no typed record, no stability, conditions, delegation or arena).
    old = {k: v for k, v in record.items() if k not in ("record_version", "stability", "conditions", "delegation")}
    old["memory"] = {k: v for k, v in record["memory"].items() if k != "tensor_arena"}
    old["latency_ms"] = {k: v for k, v in record["latency_ms"].items() if k != "p95"}
    old["agent_version"] = "0.2.0"
    _v2_store(path, old)
    assert _columns(f"sqlite:///{path}")["profiles"] >= {"min_ms", "p95_ms"} and "profile_groups" not in _columns(
        f"sqlite:///{path}"
    )
    with open_store(path) as db:
        assert db.schema_version() == 3
        assert [r["group_id"] for r in db.profiles()] == [None, None, None]
        group = db.create_group(record["model"], "local", 2, "batch-1")
        db.add_profile({**record, "group": {"id": group, "index": 1, "of": 2, "batch": "batch-1"}})
        db.finish_group(group)
        found = db.group(group)
        assert found["status"] == "complete" and [r["group_index"] for r in found["runs"]] == [1]
    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    assert _columns(f"sqlite:///{path}") == _columns(f"sqlite:///{fresh}")
    # An old run opens and renders: what its agent did not measure says so, and no figure is invented.
    done = run_cli("results", "show", "1", "--store", str(path))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "an older record" in text and "stability: not recorded (agent 0.2.0 ran no checks)" in text
    assert "delegate: not recorded" in text and "tensor arena not recorded" in text
    (row,) = [line for line in text.splitlines() if line.strip().startswith(_ms_start(record))]
    assert row.split()[4] == "-"  # p95 (min, median, mean, p90, p95): the old agent did not compute it
    listed = run_cli("results", "list", "--store", str(path))
    assert listed.returncode == 0 and f"g:{group} 1/2" in listed.stdout


def _ms_start(record: dict[str, Any]) -> str:
    from edgeprof import _table

    return _table.ms(record["latency_ms"]["min"])


def test_a_failed_upgrade_leaves_the_old_store_untouched(tmp_path: Path, record: dict[str, Any]) -> None:
    path = tmp_path / "old.db"
    _v1_store(path, record)
    with sqlite3.connect(path) as conn:  # a damaged record makes the upgrade's second half fail
        conn.execute("UPDATE profiles SET record = '{not json' WHERE id = 2")
    before = _columns(f"sqlite:///{path}")
    done = run_cli("results", "list", "--store", str(path))
    line = _one_error_line(done)
    assert "cannot upgrade results store" in line and "left as it was" in line
    assert _columns(f"sqlite:///{path}") == before  # the ALTER TABLEs were rolled back with the rest
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
        assert conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0] == 3


def test_a_store_from_a_newer_edgeprof_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema 99, newer than this edgeprof"):
        open_store(path)
    assert "upgrade edgeprof" in _one_error_line(run_cli("results", "list", "--store", str(path)))


def test_a_file_that_is_no_store_is_one_clear_line_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    line = _one_error_line(run_cli("results", "list", "--store", str(path)))
    assert str(path) in line
    assert path.read_bytes() == before


def test_many_threads_in_many_processes_write_at_once(tmp_path: Path, record: dict[str, Any]) -> None:
    store = tmp_path / "shared.db"
    open_store(store).close()
    record_path = tmp_path / "record.json"
    record_path.write_text(json.dumps(record))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    processes, threads, count = 3, 4, 12
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.store_writer",
                str(store),
                str(record_path),
                str(count),
                str(threads),
                f"p{p}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    # Meanwhile this process reads, as `edgeprof results list` would during a fleet run.
    seen = []
    with open_store(store) as reader:
        while any(w.poll() is None for w in writers):
            seen.append(len(reader.profiles()))
            time.sleep(0.02)
    outputs = [w.communicate() for w in writers]
    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    committed = [line.split() for out, _ in outputs for line in out.splitlines()]
    assert len(committed) == processes * threads * count
    with open_store(store) as db:
        rows = db.profiles()
    assert sorted(int(c[1]) for c in committed) == sorted(r["id"] for r in rows)
    labels = {r["id"]: r["record"]["options"]["label"] for r in rows}
    assert all(labels[int(run_id)] == label for _, run_id, label in committed)
    assert seen == sorted(seen)  # readers saw the count only grow, never a torn state


def test_threads_that_open_a_new_store_together_all_get_it(tmp_path: Path, record: dict[str, Any]) -> None:
    """A fleet's boards open the store at the same moment, often before it exists: SQLite refuses the switch to WAL
    (SQLITE_BUSY without its busy handler) to all but one, which cost a board its run before."""
    for attempt in range(40):
        path = tmp_path / f"new-{attempt}.db"
        errors: list[str] = []
        start = threading.Barrier(4)

        def board(path: Path, start: threading.Barrier, errors: list[str]) -> None:
            start.wait()
            try:
                with open_store(path) as db:
                    db.add_profile(record)
            except StoreError as exc:
                errors.append(str(exc))

        workers = [threading.Thread(target=board, args=(path, start, errors)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == [], errors
        with open_store(path) as db:
            assert len(db.profiles()) == 4
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sigkill_mid_write_keeps_every_committed_result(tmp_path: Path, record: dict[str, Any]) -> None:
    store = tmp_path / "crash.db"
    big = {**record, "samples_ms": [s + i * 1e-6 for i, s in enumerate(record["samples_ms"] * 50)][:10000]}
    record_path = tmp_path / "record.json"
    record_path.write_text(json.dumps(big))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    committed: dict[int, str] = {}
    rng = random.Random(6)
    for attempt in range(3):
        writer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.store_writer",
                str(store),
                str(record_path),
                "100000",
                "3",
                f"kill{attempt}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert writer.stdout is not None
        target = 10 + rng.randrange(20)
        for mine, line in enumerate(writer.stdout, 1):
            _, run_id, label = line.split()
            committed[int(run_id)] = label
            if mine == target:
                time.sleep(rng.uniform(0, 0.03))  # somewhere inside the next transactions
                writer.send_signal(signal.SIGKILL)
                break
        for line in writer.stdout:  # lines already printed before the kill landed
            _, run_id, label = line.split()
            committed[int(run_id)] = label
        writer.wait()
        assert writer.returncode == -signal.SIGKILL
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_store(store) as db:
        rows = {r["id"]: r for r in db.profiles()}
        assert set(committed) <= set(rows)  # every result whose commit returned is there ...
        for run_id, label in committed.items():  # ... whole
            stored = rows[run_id]["record"]
            assert stored["options"]["label"] == label
            assert stored["samples_ms"] == big["samples_ms"]
        assert len(rows) - len(committed) <= 3 * 3  # at most the commits in flight when each kill landed
        db.add_profile(record)  # and the store takes new results


def test_results_list_filters_by_model_target_and_time(tmp_path: Path, record: dict[str, Any]) -> None:
    store = tmp_path / "filters.db"
    with open_store(store) as db:
        for day, target in (("2026-11-01", "local"), ("2026-11-10", "rpi-1"), ("2026-11-20", "local")):
            db.add_profile({**record, "created_at": f"{day}T12:00:00+00:00", "target": target})

    def ids(*args: str) -> list[int]:
        done = run_cli("results", "list", "--store", str(store), "--json", *args)
        assert done.returncode == 0, done.stderr
        return [r["id"] for r in json.loads(done.stdout)]

    assert ids() == [3, 2, 1]
    assert ids("--target", "local") == [3, 1]
    assert ids("--target", "rpi-*") == [2]
    assert ids("--since", "2026-11-05") == [3, 2]
    assert ids("--since", "2026-11-05", "--until", "2026-11-15") == [2]
    assert ids("--model", record["model"]["sha256"][:10]) == [3, 2, 1]
    assert ids("--model", "flo*.tflite") == [3, 2, 1]
    assert ids("--model", "other.tflite") == []
    assert "no runs match" in run_cli("results", "list", "--store", str(store), "--model", "x").stdout
    bad = _one_error_line(run_cli("results", "list", "--store", str(store), "--since", "last tuesday"))
    assert "cannot read 'last tuesday' as a time" in bad


# --- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Any:
    """A fresh database on the test server, dropped afterwards."""
    url = os.environ.get("EDGEPROF_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            os.environ.get("EDGEPROF_TEST_POSTGRES_SKIP")
            or "EDGEPROF_TEST_POSTGRES_URL is not set: scripts/services/postgres.sh starts a server"
        )
    name = f"edgeprof_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield url.replace("/edgeprof_test?", f"/{name}?")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_postgres_keeps_runs_like_sqlite(pg_url: str, record: dict[str, Any], models: Path) -> None:
    with open_store(pg_url) as db:
        assert db.dialect == "postgresql" and db.schema_version() == schema.SCHEMA_VERSION
        run_id = db.add_profile(record)
        comp_id = db.add_compression(_manifest(record, []), record["model"])
        row = db.profile(run_id)
        assert row["record"]["samples_ms"] == record["samples_ms"]
        assert row["median_ms"] == record["latency_ms"]["median"] and row["machine"] == record["device"]["machine"]
        assert db.compression(comp_id)["is_baseline"] is True
    # The command line against the same server: a real profile run stored, then listed and shown.
    done = run_cli(
        "profile",
        str(models / "int8.tflite"),
        "--runs",
        "20",
        "--min-seconds",
        "0",
        "--warmup-seconds",
        "0",
        "--store",
        pg_url,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(run_cli("results", "list", "--store", pg_url, "--json").stdout)
    assert [r["model_name"] for r in listed] == ["int8.tflite", "float.tflite"]
    shown = run_cli("results", "show", str(listed[0]["id"]), "--store", pg_url)
    assert shown.returncode == 0 and "int8.tflite" in shown.stdout


def test_postgres_takes_concurrent_writers(pg_url: str, record: dict[str, Any], tmp_path: Path) -> None:
    open_store(pg_url).close()
    record_path = tmp_path / "record.json"
    record_path.write_text(json.dumps(record))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.store_writer", pg_url, str(record_path), "10", "4", f"p{p}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    outputs = [w.communicate(timeout=120) for w in writers]
    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    committed = {int(line.split()[1]) for out, _ in outputs for line in out.splitlines()}
    with open_store(pg_url) as db:
        assert {r["id"] for r in db.profiles()} == committed and len(committed) == 80
        assert len(db.models()) == 1  # the same model, inserted once despite the race


def test_postgres_v1_store_is_upgraded(pg_url: str, record: dict[str, Any]) -> None:
    old = MetaData()  # the v1 tables: today's without the tables and columns v2 and v3 added
    for table in schema.metadata.sorted_tables:
        if table.name in V3_TABLES:
            continue
        later = V2_COLUMNS.get(table.name, set()) | V3_COLUMNS.get(table.name, set())
        Table(table.name, old, *[c._copy() for c in table.columns if c.name not in later])
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(old.tables["meta"].insert().values(key="schema_version", value="1"))
        m = record["model"]
        conn.execute(
            old.tables["models"]
            .insert()
            .values(sha256=m["sha256"], name=m["name"], size_bytes=1, gzip_bytes=1, first_seen="2026-11-01")
        )
        lat = record["latency_ms"]
        conn.execute(
            old.tables["profiles"]
            .insert()
            .values(
                created_at="2026-11-01T00:00:00+00:00",
                edgeprof_version="0.1.0",
                model_sha256=m["sha256"],
                model_name=m["name"],
                target="local",
                median_ms=lat["median"],
                record=record,
            )
        )
    engine.dispose()
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_store(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(3)]
    for t in threads:  # several processes or threads may open an old store at once: one upgrades, all work
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_store(pg_url) as db:
        assert db.schema_version() == schema.SCHEMA_VERSION
        (row,) = db.profiles()
        assert row["min_ms"] == lat["min"] and row["machine"] == record["device"]["machine"]
    for table, columns in V2_COLUMNS.items():
        assert columns <= _columns(pg_url)[table]
