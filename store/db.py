"""Engines and schema migrations: SQLite by default, PostgreSQL by URL.

Why the SQLite set-up looks the way it does:

* Several Ray replicas (processes) share one SQLite file, so every connection runs in WAL mode with a
  30 s busy timeout: readers never block the writer, writers queue instead of failing.
* Python's ``sqlite3`` driver (3.11) opens transactions lazily and never around DDL, which breaks two
  things we need: atomic read-then-write transactions (the task claim) and atomic migrations. So the
  driver's own transaction handling is switched off and SQLAlchemy's ``begin`` event emits ``BEGIN``
  itself — ``BEGIN IMMEDIATE`` for a transaction opened with :func:`write_transaction`, which takes the
  database write lock up front. Two claimers or two migrators are therefore serialised by SQLite itself,
  across threads and processes, and a deferred transaction can never fail half-way with
  ``SQLITE_BUSY`` when it upgrades from reading to writing.
* On PostgreSQL the same read-then-write sections take a transaction-scoped advisory lock instead.

Engines are cached per URL so a process holds one pool per database, whatever the number of stores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR: Final[Path] = Path(__file__).resolve().parent / "migrations"

# Execution option that makes the next ``begin`` a write transaction (see module docstring).
_IMMEDIATE_OPTION: Final[str] = "visiongrid_write_transaction"
# pg_advisory_xact_lock keys: one for migrations, one per named write section.
_PG_MIGRATE_LOCK_KEY: Final[int] = 0x5647_4D31  # "VGM1"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
# Alembic installs its migration context as a module-global proxy, so two threads running migrations at
# once would clobber each other's context: migrations are serialised within a process.
_migrate_lock = threading.Lock()
_migrated: set[str] = set()


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or (database.startswith("file:") and "mode=memory" in database)


def _install_sqlite_hooks(engine: Engine) -> None:
    """Pragmas on every new connection, and explicit ``BEGIN`` / ``BEGIN IMMEDIATE`` (module docstring)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Own the transaction boundaries: the driver must not BEGIN/COMMIT behind SQLAlchemy's back.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching a fresh file to WAL waits for a concurrent switcher.
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_IMMEDIATE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (created once, then cached).

    SQLite: creates the parent folder, WAL + busy timeout + foreign keys on every connection.
    PostgreSQL: ``pool_pre_ping`` so connections dropped by a restart are replaced instead of failing a request.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = make_url(url)
        if _is_sqlite(parsed):
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if _is_memory_sqlite(parsed):
                # One shared connection, otherwise every pooled connection would see its own empty database.
                kwargs["poolclass"] = StaticPool
            else:
                Path(parsed.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, **kwargs)
            _install_sqlite_hooks(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
        return engine


@contextmanager
def write_transaction(engine: Engine, *, pg_lock_key: int | None = None) -> Iterator[Connection]:
    """A transaction for read-then-write sections that must not interleave with another writer.

    SQLite: ``BEGIN IMMEDIATE`` (the database write lock, taken before the first read).
    PostgreSQL: an ordinary transaction plus ``pg_advisory_xact_lock(pg_lock_key)`` when a key is given;
    sections without a key rely on conditional updates (``WHERE status = ...``) and row locks.
    Commits on success, rolls back on error.
    """
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE_OPTION: True})
        with conn.begin():
            if pg_lock_key is not None and conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": pg_lock_key})
            yield conn


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code: no ``alembic.ini`` is needed at run time.

    Also the way to author a new revision::

        from alembic import command
        command.revision(alembic_config(url), "add x", autogenerate=True)
    """
    from alembic.config import Config

    config = Config()
    # Config values go through ConfigParser interpolation: a literal "%" must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(url: str) -> None:
    """``alembic upgrade head`` on ``url``; safe to call from several processes at once.

    The whole upgrade runs in one write transaction (SQLite ``BEGIN IMMEDIATE`` — SQLite's DDL is
    transactional once the driver stops interfering; PostgreSQL: transactional DDL plus an advisory
    lock). A second process starting at the same moment waits for the first to commit, then finds the
    schema at head and does nothing: no "table already exists" race.
    """
    from alembic import command

    engine = make_engine(url)
    with _migrate_lock:
        with write_transaction(engine, pg_lock_key=_PG_MIGRATE_LOCK_KEY) as conn:
            command.upgrade(alembic_config(url, conn), "head")
        _migrated.add(url)


def open_engine(url: str) -> Engine:
    """The engine callers use: migrated to head (once per process and URL), then the cached engine."""
    if url not in _migrated:
        migrate(url)
    return make_engine(url)


def _dispose_engines() -> None:
    """Close every cached engine and forget migrations (tests: each uses its own database file)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()
