"""Idempotency-Key records: the first response of a key, kept durably so any replica can replay it.

Why in the database: a retry may reach another ingress replica, or the same one after a restart.
Claiming a key is one write transaction (look up, then insert an in-flight row), so two concurrent
first attempts cannot both run: the second sees the in-flight row. A failed attempt (5xx, an
exception, a client gone) releases the key so a retry runs again; an in-flight row older than the
lease (a replica that died mid-request) may be claimed again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.db import write_transaction
from store.platform_tables import IdempotencyRecord

_IDEMPOTENCY_RECORD: Final[sa.Table] = cast(sa.Table, IdempotencyRecord.__table__)
__all__ = ["Claim", "IdempotencyStore", "StoredResponse"]

#: How long an in-flight claim holds before it is taken to be abandoned (the replica died).
DEFAULT_LEASE_S = 600.0


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """``proceed``: run the request; ``replay``: send ``response``; ``in_progress`` / ``reused``: refuse."""

    outcome: Literal["proceed", "replay", "in_progress", "reused"]
    response: StoredResponse | None = None


class IdempotencyStore:
    def __init__(self, engine: Engine, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._engine = engine
        self._lease_s = lease_s

    def claim(
        self, project: str, route: str, key: str, fingerprint: str, ttl_s: float, now: float | None = None
    ) -> Claim:
        """Claim ``key`` for this request, or say why not (expired records are pruned on the way)."""
        now = time.time() if now is None else now
        table = _IDEMPOTENCY_RECORD
        mine = (table.c.project == project) & (table.c.route == route) & (table.c.key == key)
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(table).where(table.c.expires_at <= now))
            row = conn.execute(sa.select(table).where(mine)).one_or_none()
            if row is not None and row.status is None and row.created_at + self._lease_s <= now:
                conn.execute(sa.delete(table).where(mine))
                row = None
            if row is None:
                values = {"project": project, "route": route, "key": key, "fingerprint": fingerprint}
                conn.execute(sa.insert(table).values(**values, created_at=now, expires_at=now + ttl_s))
                return Claim("proceed")
        if row.fingerprint != fingerprint:
            return Claim("reused")
        if row.status is None:
            return Claim("in_progress")
        headers = [(str(name), str(value)) for name, value in row.headers or []]
        return Claim("replay", StoredResponse(int(row.status), headers, bytes(row.body or b"")))

    def complete(self, project: str, route: str, key: str, response: StoredResponse) -> None:
        """Store the first response of ``key`` (the claim becomes replayable)."""
        table = _IDEMPOTENCY_RECORD
        mine = (table.c.project == project) & (table.c.route == route) & (table.c.key == key)
        values = {"status": response.status, "headers": [list(pair) for pair in response.headers]}
        with write_transaction(self._engine) as conn:
            conn.execute(sa.update(table).where(mine & table.c.status.is_(None)).values(**values, body=response.body))

    def release(self, project: str, route: str, key: str) -> None:
        """Forget an in-flight claim (the attempt failed: a retry should run again)."""
        table = _IDEMPOTENCY_RECORD
        mine = (table.c.project == project) & (table.c.route == route) & (table.c.key == key)
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(table).where(mine & table.c.status.is_(None)))
