"""Engines and migrations: pragmas, caching, idempotent and concurrent ``migrate``, schema == models."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.db import _dispose_engines, alembic_config, make_engine, migrate, open_engine, write_transaction
from store.tables import Base
from store.tasks import TaskStore

REPO_ROOT = Path(__file__).resolve().parents[2]

# the newest migration: tests follow new revisions without edits
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture(autouse=True)
def _fresh_engines() -> object:
    yield None
    _dispose_engines()


def _version(url: str) -> list[str]:
    with make_engine(url).connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


def _tables(url: str) -> set[str]:
    return set(sa.inspect(make_engine(url)).get_table_names())


def test_make_engine_creates_folder_sets_pragmas_and_caches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'x.db'}"
    engine = make_engine(url)
    assert (tmp_path / "nested" / "deeper").is_dir()
    assert make_engine(url) is engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_migrate_creates_schema_and_is_idempotent(db_url: str) -> None:
    migrate(db_url)
    assert _tables(db_url) >= {"tasks", "api_keys", "archive_events", "alembic_version"}
    assert _version(db_url) == [HEAD]
    TaskStore(make_engine(db_url)).create("p", {"a": 1}, None)
    migrate(db_url)  # again: nothing changes, data survives
    assert _version(db_url) == [HEAD]
    assert TaskStore(make_engine(db_url)).counts_by_status()["pending"] == 1


def test_migration_matches_the_models(db_url: str) -> None:
    migrate(db_url)
    with make_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_concurrent_migrate_from_several_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    code = "import sys; from store.db import migrate; migrate(sys.argv[1]); print('ok')"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outcomes = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    assert _version(url) == [HEAD]
    assert {"tasks", "api_keys", "archive_events"} <= _tables(url)


def test_concurrent_migrate_from_several_threads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        try:
            migrate(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _version(url) == [HEAD]


def test_open_engine_migrates(db_url: str) -> None:
    engine = open_engine(db_url)
    assert {"tasks", "api_keys", "archive_events"} <= set(sa.inspect(engine).get_table_names())


def test_write_transactions_roll_back_on_error(engine: sa.Engine) -> None:
    store = TaskStore(engine)
    record = store.create("p", {}, None)
    with pytest.raises(RuntimeError, match="boom"), write_transaction(engine) as conn:
        conn.execute(sa.text("DELETE FROM tasks"))
        raise RuntimeError("boom")
    assert store.get_any(record.id) == record


def test_write_transaction_takes_the_sqlite_write_lock(engine: sa.Engine) -> None:
    """A second writer waits for the first (BEGIN IMMEDIATE), instead of interleaving with it."""
    store = TaskStore(engine)
    order: list[str] = []
    inside = threading.Event()

    def second_writer() -> None:
        inside.wait()
        store.create("p", {}, None)
        order.append("second")

    thread = threading.Thread(target=second_writer)
    thread.start()
    with write_transaction(engine) as conn:
        conn.execute(sa.text("SELECT 1"))
        inside.set()
        thread.join(timeout=0.3)  # the second writer must still be blocked
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]


def test_datetimes_come_back_aware_utc(engine: sa.Engine) -> None:
    store = TaskStore(engine)
    record = store.create("p", {}, None)
    assert record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == dt.timedelta(0)
    # A filter in another zone is converted to UTC before comparison (SQLite compares text).
    plus_two = dt.timezone(dt.timedelta(hours=2))
    just_after = (record.created_at + dt.timedelta(microseconds=1)).astimezone(plus_two)
    page, _ = store.list("p", created_to=just_after)
    assert [r.id for r in page] == [record.id]
    page, _ = store.list("p", created_from=just_after)
    assert page == []
