"""Tables of the platform features (rate limits, idempotency keys), on the same ``Base`` as the rest.

Kept apart from ``store/tables.py`` so the schema of each feature reads on its own; migration 0005
creates them. Times are epoch seconds (floats): every ingress replica compares them against its own
``time.time()``, and a float compares exactly on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from store.tables import Base

__all__ = ["IdempotencyRecord", "RateLimitHit", "RateLimitOverride"]


class RateLimitHit(Base):
    """One counted request: the sliding log of a project's category (pruned past the window)."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (sa.Index("ix_rate_limit_hits_project_category_at", "project", "category", "at"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(128))
    category: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[float] = mapped_column(sa.Float)


class RateLimitOverride(Base):
    """A project's own limit of a category (absent: the settings' default)."""

    __tablename__ = "rate_limit_overrides"

    project: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    limit: Mapped[int] = mapped_column(sa.Integer)


class IdempotencyRecord(Base):
    """An Idempotency-Key of a project and route: in flight (``status`` NULL) or its stored response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.Index("ix_idempotency_keys_expires_at", "expires_at"),)

    project: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    route: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(80))
    created_at: Mapped[float] = mapped_column(sa.Float)
    expires_at: Mapped[float] = mapped_column(sa.Float)
    status: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    headers: Mapped[Any | None] = mapped_column(sa.JSON, nullable=True)
    body: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
