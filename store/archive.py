"""The append-only SSE archive of each task: "the archive is the stream".

A task's runner appends the exact bytes of every SSE event it emits; every reader — a live stream, a
reconnect with ``Last-Event-ID: <byte offset>``, a replay after the task ended — reads the same bytes from
a byte offset. Each event is one row carrying its [start_offset, end_offset) range in the stream, so a
read from any offset is an indexed range query plus one slice of the first event.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from contract.errors import ErrorCode, VisionGridError
from store.db import write_transaction
from store.tables import ArchiveEvent, Task

#: Offsets are BIGINT columns: no archive reaches this, and a larger client offset would overflow the driver.
_MAX_OFFSET: Final[int] = 2**63 - 1


class ArchiveTaskMissingError(VisionGridError, LookupError):
    """Appending to a task that does not exist (e.g. deleted while its runner was still writing).

    ``str()`` is the task id, as before it was a :class:`~contract.errors.VisionGridError`.
    """

    def __init__(self, task_id: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, task_id)
        self.task_id = task_id


class Archive:
    """Archived SSE bytes per task. Holds only the engine; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, task_id: str, event: bytes) -> int:
        """Append ``event`` verbatim as the task's next event; the new end offset (= total archived bytes).

        One transaction reads the current end and inserts after it. Only the task's runner writes, but the
        write transaction (and the (task_id, seq) primary key) keep even a stray second writer from
        producing overlapping ranges. Appending b"" stores nothing and returns the current size.
        Raises ArchiveTaskMissingError when the task is gone.
        """
        event = bytes(event)
        try:
            with write_transaction(self._engine) as conn:
                last = conn.execute(
                    sa.select(ArchiveEvent.seq, ArchiveEvent.end_offset)
                    .where(ArchiveEvent.task_id == task_id)
                    .order_by(ArchiveEvent.seq.desc())
                    .limit(1)
                ).first()
                seq, start = (last[0] + 1, int(last[1])) if last is not None else (0, 0)
                if not event:
                    return start
                if last is None and not self._task_exists(conn, task_id):
                    raise ArchiveTaskMissingError(task_id)
                end = start + len(event)
                conn.execute(
                    sa.insert(ArchiveEvent).values(
                        task_id=task_id, seq=seq, start_offset=start, end_offset=end, data=event
                    )
                )
                return end
        except IntegrityError:
            # Foreign key: the task was deleted under us. Anything else (a second writer) is a real error.
            with self._engine.connect() as conn:
                if not self._task_exists(conn, task_id):
                    raise ArchiveTaskMissingError(task_id) from None
            raise

    @staticmethod
    def _task_exists(conn: Connection, task_id: str) -> bool:
        return conn.execute(sa.select(Task.id).where(Task.id == task_id)).first() is not None

    def size(self, task_id: str) -> int:
        """Total archived bytes of the task (0 when nothing is archived)."""
        with self._engine.connect() as conn:
            end = conn.execute(
                sa.select(sa.func.max(ArchiveEvent.end_offset)).where(ArchiveEvent.task_id == task_id)
            ).scalar_one()
        return int(end or 0)

    def read(self, task_id: str, offset: int = 0) -> bytes:
        """Every archived byte from ``offset`` to the current end.

        ``offset`` may fall inside an event (a client's byte count is all we trust): the first event is
        sliced. ``offset`` at or past the end gives b"" (also one beyond int64, which no archive
        reaches); a negative offset is ValueError.
        """
        if offset < 0:
            raise ValueError("offset must be >= 0")
        if offset > _MAX_OFFSET:
            return b""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(ArchiveEvent.start_offset, ArchiveEvent.data)
                .where(ArchiveEvent.task_id == task_id, ArchiveEvent.end_offset > offset)
                .order_by(ArchiveEvent.seq)
            ).all()
        if not rows:
            return b""
        first_start, first_data = rows[0]
        parts = [bytes(first_data)[max(0, offset - int(first_start)) :]]
        parts.extend(bytes(data) for _, data in rows[1:])
        return b"".join(parts)

    def delete(self, task_id: str) -> None:
        """Drop the task's archive (the task row stays)."""
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(ArchiveEvent).where(ArchiveEvent.task_id == task_id))
