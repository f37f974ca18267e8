"""Cluster-wide sliding-window rate limits, kept in the database every ingress replica shares.

Why a sliding log in the database: the limit must be exact across replicas, so the count and the
insert happen in one write transaction (``store.db.write_transaction``: ``BEGIN IMMEDIATE`` on SQLite,
a per project+category advisory lock on PostgreSQL). Two replicas can therefore never both take the
last slot. The same transaction prunes the project's rows that left the window, so the log of a
project and category never holds more than its limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Final, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.db import write_transaction
from store.platform_tables import RateLimitHit, RateLimitOverride

_RATE_LIMIT_HIT: Final[sa.Table] = cast(sa.Table, RateLimitHit.__table__)
_RATE_LIMIT_OVERRIDE: Final[sa.Table] = cast(sa.Table, RateLimitOverride.__table__)
__all__ = ["Decision", "RateLimitStore"]


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: counted or refused, and the numbers of the RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the oldest counted request leaves the window (one slot frees), >= 1


def _lock_key(project: str, category: str) -> int:
    """A signed 64-bit advisory-lock key per project and category (PostgreSQL)."""
    digest = hashlib.sha256(f"ratelimit:{project}:{category}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RateLimitStore:
    """Counts requests per project and category; limits come from overrides or the caller's default."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def set_limit(self, project: str, category: str, limit: int | None) -> None:
        """Give ``project`` its own limit of ``category`` (``None``: back to the default)."""
        if limit is not None and limit < 1:
            raise ValueError("a rate limit is at least 1")
        table = _RATE_LIMIT_OVERRIDE
        key = (table.c.project == project) & (table.c.category == category)
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(table).where(key))
            if limit is not None:
                conn.execute(sa.insert(table).values(project=project, category=category, limit=limit))

    def limit_of(self, project: str, category: str, default: int) -> int:
        with self._engine.connect() as conn:
            return _limit(conn, project, category, default)

    def hit(self, project: str, category: str, default: int, window_s: float, now: float | None = None) -> Decision:
        """Count one request if the window has room (one transaction: prune, read, count, insert)."""
        now = time.time() if now is None else now
        table = _RATE_LIMIT_HIT
        mine = (table.c.project == project) & (table.c.category == category)
        with write_transaction(self._engine, pg_lock_key=_lock_key(project, category)) as conn:
            limit = _limit(conn, project, category, default)
            conn.execute(sa.delete(table).where(mine & (table.c.at <= now - window_s)))
            count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(table.c.at)).where(mine)).one()
            allowed = count < limit
            if allowed:
                conn.execute(sa.insert(table).values(project=project, category=category, at=now))
                count += 1
                oldest = now if oldest is None else oldest
        reset = max(1, math.ceil(float(oldest) + window_s - now))
        return Decision(allowed, limit, max(0, limit - count), reset)


def _limit(conn: Connection, project: str, category: str, default: int) -> int:
    table = _RATE_LIMIT_OVERRIDE
    query = sa.select(table.c.limit).where((table.c.project == project) & (table.c.category == category))
    value = conn.execute(query).scalar_one_or_none()
    return default if value is None else int(value)
