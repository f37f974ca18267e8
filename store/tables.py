"""Declarative models of the three tables. Private to ``store/``: callers only ever see ``store.records``.

The schema itself is owned by Alembic (``store/migrations``); these models must match it and are
what the stores build their statements from. ``test_migration_matches_the_models`` (tests/store/test_db.py)
compares the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL keeps the offset (``timestamptz``); SQLite stores a naive string. Values are converted
    to UTC before they are written, so SQLite's strings all share one zone and compare correctly as
    text, and tzinfo=UTC is put back on read. A naive value is taken to be UTC already.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return to_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return to_utc(value)


def to_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as an aware UTC datetime (naive values are read as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Deterministic constraint names: later migrations (SQLite batch mode included) can refer to them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(128), index=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 hex of the secret
    prefix: Mapped[str] = mapped_column(sa.String(16))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    name: Mapped[str] = mapped_column(sa.String(200), server_default="key")
    last4: Mapped[str] = mapped_column(sa.String(4), server_default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # TaskKind.prefix + ULID
    project: Mapped[str] = mapped_column(sa.String(128), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    model: Mapped[str | None] = mapped_column(sa.String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    runner_id: Mapped[str | None] = mapped_column(sa.String(256), nullable=True)
    processed_frames: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    last_frame_index: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    total_frames: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    error_code: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    usage: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    archive_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    staged_media: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    max_processing_time_s: Mapped[float | None] = mapped_column(sa.Float, nullable=True)  # the deadline used
    requested_processing_time_s: Mapped[float | None] = mapped_column(sa.Float, nullable=True)  # as asked
    live: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())  # its own limits


class ArchiveEvent(Base):
    """One appended chunk of a task's SSE stream, with its byte range in the stream."""

    __tablename__ = "archive_events"
    __table_args__ = (sa.Index("ix_archive_events_task_id_end_offset", "task_id", "end_offset"),)

    task_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    start_offset: Mapped[int] = mapped_column(sa.BigInteger)
    end_offset: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Upload(Base):
    """A resumable chunked upload: one S3 multipart upload, chunk ``n`` being part ``n + 1``."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "up_" + ULID
    project: Mapped[str] = mapped_column(sa.String(128), index=True)
    path: Mapped[str] = mapped_column(sa.String(1024))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))  # lowercase hex
    chunk_size: Mapped[int] = mapped_column(sa.Integer)
    content_type: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    s3_upload_id: Mapped[str] = mapped_column(sa.String(1024))
    status: Mapped[str] = mapped_column(sa.String(16))  # open | completed | aborted
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VectorCollection(Base):
    """A project's vector collection: a named bundle of embedding spaces, one Chroma collection each.

    Ownership and names live here (the database is the source of truth for who may see what); the
    vectors themselves live in Chroma, under space names derived from ``id``.
    """

    __tablename__ = "vector_collections"
    __table_args__ = (sa.UniqueConstraint("project", "name", name="uq_vector_collections_project_name"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "vc_" + ULID
    project: Mapped[str] = mapped_column(sa.String(128), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    model: Mapped[str] = mapped_column(sa.String(64))  # the bundle: multimodal, text, image, face
    metric: Mapped[str] = mapped_column(sa.String(16))  # cosine, l2, ip
    spaces: Mapped[list[str]] = mapped_column(sa.JSON)  # e.g. ["text", "image"]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


from store import event_tables as _event_tables  # noqa: E402,F401 - registers the event and webhook tables
from store import platform_tables as _platform_tables  # noqa: E402,F401 - registers the platform tables on Base
