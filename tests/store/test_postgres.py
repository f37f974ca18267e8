"""The task store and the archive against a REAL PostgreSQL server (started here, see tests/postgres.py).

The SQLite behaviour tests of ``test_tasks.py`` and ``test_archive.py`` are imported and re-run as they are:
this module overrides the ``engine`` fixture with a Postgres engine (tables emptied before each test), so
every imported test exercises the same contract on Postgres. A server that cannot be installed or started
fails the run with the reason; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.db import _dispose_engines, migrate, open_engine
from tests.postgres import PostgresUnavailableError, postgres_server
from tests.store.test_archive import (  # noqa: F401  (re-collected here, on Postgres)
    test_append_returns_end_offsets_and_size,
    test_append_to_missing_task_fails,
    test_negative_offset_is_an_error,
    test_offset_beyond_int64_reads_nothing,
    test_read_at_every_event_boundary_and_inside,
    test_read_from_random_offsets_matches_the_concatenation,
    test_read_while_appending_is_always_a_prefix,
    test_tasks_are_isolated_and_delete_clears_one,
)
from tests.store.test_tasks import (  # noqa: F401  (re-collected here, on Postgres)
    test_cancelled_pending_task_is_never_claimed,
    test_cancelling_tasks_count_against_limits,
    test_claim_is_fifo_and_sets_running,
    test_claim_respects_global_and_project_limits,
    test_concurrent_claims_respect_limits_and_never_double_claim,
    test_counts_by_status_and_pending_count,
    test_counts_by_status_of_one_project,
    test_create_and_get,
    test_delete_returns_record_and_cascades_archive,
    test_finish_a_cancelling_task,
    test_finish_failed_keeps_error_and_pending_cannot_finish,
    test_finish_only_once_and_only_by_owner,
    test_finish_rejects_non_terminal_status,
    test_foreign_key_cascade_in_the_schema,
    test_get_other_project_or_missing_is_none,
    test_heartbeat_none_for_wrong_runner_reaped_deleted_or_pending,
    test_heartbeat_reports_cancelling,
    test_heartbeat_updates_progress,
    test_kinds_have_their_own_ids_and_lists,
    test_list_cursor_at_the_edges_is_a_value_error,
    test_list_cursor_at_valid_edges_pages_normally,
    test_list_cursor_that_is_not_base64_text,
    test_list_filters,
    test_list_invalid_cursor,
    test_list_newest_first_with_cursor_paging,
    test_list_time_bounds_at_the_valid_edges,
    test_list_time_bounds_utc_cannot_hold_are_value_errors,
    test_purge_finished_before,
    test_reap_stale,
    test_reap_stale_uses_real_clock_by_default,
    test_request_cancel_other_project_or_missing,
    test_request_cancel_transitions,
)

_DATA_TABLES = ("archive_events", "uploads", "api_keys", "tasks")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """One real server for the module; a server that cannot start fails every test here with the reason."""
    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresUnavailableError as exc:
        pytest.fail(f"PostgreSQL server unavailable: {exc}", pytrace=False)
    try:
        yield url
    finally:
        _dispose_engines()
        server.__exit__(None, None, None)


@pytest.fixture
def engine(pg_url: str) -> Engine:
    """The migrated Postgres engine, every data table emptied (each test starts from an empty database)."""
    engine = open_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_DATA_TABLES)} CASCADE"))
    return engine


def test_is_really_postgres_and_migrated_to_head(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version()")).scalar_one().startswith("PostgreSQL")
        tables = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert set(_DATA_TABLES) <= tables
    assert len(version) == 1


def test_migrate_twice_is_a_no_op(engine: Engine, pg_url: str) -> None:
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    migrate(pg_url)
    migrate(pg_url)
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert after == before and len(after) == 1
