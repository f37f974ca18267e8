"""Alembic environment for VisionGrid's store.

Normally run through :func:`store.db.migrate`, which passes an open connection already inside a write
transaction (``config.attributes["connection"]``): the migrations join that transaction, so the whole
upgrade commits or rolls back as one and concurrent migrators are serialised (see ``store/db.py``).
Without a connection (an ad-hoc ``alembic`` run with ``store.db.alembic_config``) the engine comes from
``sqlalchemy.url`` through ``store.db.make_engine``, so the same SQLite pragmas apply.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from store.db import make_engine
from store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: autogenerate table-rebuild ("batch") operations there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: build the config with store.db.alembic_config(url)")
    with make_engine(url).connect() as new_connection:
        _run(new_connection)
        new_connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
