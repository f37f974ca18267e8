"""Claiming the next pending task under the concurrency limits: file tasks and live tasks apart.

A live task holds its runner for as long as its camera plays, so live tasks have limits of their
own (``max_live_tasks``, ``max_live_tasks_per_project``) and never count against the file limits
(``max_running_tasks``, ``max_running_tasks_per_project``): cameras cannot starve file tasks, and a
queue of files cannot keep a camera from starting. A worker says which kinds it has room for.

The decision and the flip to ``running`` happen in one write transaction (SQLite: the write lock;
PostgreSQL: an advisory lock), so concurrent claimers can neither take the same task nor overshoot
a limit; the ``WHERE status = 'pending'`` + rowcount check is a second guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.db import write_transaction
from store.records import ACTIVE_STATUSES, TaskRecord
from store.tables import Task, utcnow

__all__ = ["ClaimLimits", "active_counts", "claim_next"]

_CLAIM_LOCK_KEY: Final[int] = 0x5647_434C  # "VGCL": PostgreSQL advisory lock serialising claims
_CLAIM_BATCH: Final[int] = 16
_ACTIVE: Final[tuple[str, ...]] = tuple(sorted(ACTIVE_STATUSES))


@dataclass(frozen=True)
class ClaimLimits:
    """What the cluster allows, and what the claiming worker has room for."""

    max_running: int
    max_running_per_project: int
    max_live: int = 0
    max_live_per_project: int = 0
    file_room: bool = True  # the worker has a free file-task slot
    live_room: bool = False  # ... a free live-task slot


def active_counts(conn: Connection) -> dict[tuple[str, bool], int]:
    """Running/cancelling tasks per (project, live)."""
    rows = conn.execute(
        sa.select(Task.project, Task.live, sa.func.count())
        .where(Task.status.in_(_ACTIVE))
        .group_by(Task.project, Task.live)
    )
    return {(project, bool(live)): int(count) for project, live, count in rows}


def _kind_filter(
    counts: dict[tuple[str, bool], int], live: bool, room: bool, total: int, per_project: int
) -> sa.ColumnElement[bool] | None:
    """Pending tasks of one kind (file or live) the limits allow now, or None for none."""
    if not room or sum(count for (_, kind), count in counts.items() if kind == live) >= total:
        return None
    full = [project for (project, kind), count in counts.items() if kind == live and count >= per_project]
    condition = Task.live.is_(live) if live else sa.or_(Task.live.is_(False), Task.live.is_(None))
    return sa.and_(condition, Task.project.not_in(full)) if full else condition


def claim_next(
    engine: Engine,
    runner_id: str,
    limits: ClaimLimits,
    on_claim: Callable[[Connection, TaskRecord | None], TaskRecord | None],
    fetch: Callable[[Connection, str], TaskRecord | None],
) -> TaskRecord | None:
    """Atomically take the oldest pending task the limits allow (FIFO by creation), or None."""
    with engine.connect() as conn:  # idle workers poll: answer "nothing to do" with a plain read, no lock
        if conn.execute(sa.select(Task.id).where(Task.status == "pending").limit(1)).first() is None:
            return None
    with write_transaction(engine, pg_lock_key=_CLAIM_LOCK_KEY) as conn:
        counts = active_counts(conn)
        kinds = [
            _kind_filter(counts, False, limits.file_room, limits.max_running, limits.max_running_per_project),
            _kind_filter(counts, True, limits.live_room, limits.max_live, limits.max_live_per_project),
        ]
        allowed = [kind for kind in kinds if kind is not None]
        if not allowed:
            return None
        tried: set[str] = set()
        while True:
            query = sa.select(Task.id).where(Task.status == "pending", sa.or_(*allowed))
            if tried:
                query = query.where(Task.id.not_in(tried))
            candidates = conn.execute(query.order_by(Task.created_at, Task.id).limit(_CLAIM_BATCH)).scalars().all()
            if not candidates:
                return None
            for task_id in candidates:
                tried.add(task_id)
                now = utcnow()
                claimed = conn.execute(
                    sa.update(Task)
                    .where(Task.id == task_id, Task.status == "pending")
                    .values(status="running", runner_id=runner_id, started_at=now, heartbeat_at=now)
                )
                if claimed.rowcount == 1:
                    return on_claim(conn, fetch(conn, task_id))
