"""The video task queue and its lifecycle, in the database so every replica sees one queue.

Life of a task: ``pending`` -> (claimed by a runner) ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``;
a cancel request on a running task passes through ``cancelling`` until its runner stops. A runner proves it is
alive with heartbeats; the reaper fails tasks whose runner went silent (``runner_lost``).

Every state change is a conditional ``UPDATE ... WHERE status IN (...)`` (and ``runner_id = ...`` where a runner
acts), so a late or duplicate actor changes nothing. The claim additionally runs in a write transaction
(``store.db.write_transaction``) because the concurrency limits are a read-then-write decision.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from ulid import ULID

from contract.errors import ErrorCode
from store import task_claims
from store.db import write_transaction
from store.events import task_event
from store.records import ACTIVE_STATUSES, TASK_STATUSES, TERMINAL_STATUSES, TaskKind, TaskRecord
from store.tables import ArchiveEvent, Task, to_utc, utcnow
from store.task_claims import ClaimLimits
from store.task_cursor import TaskQueryError, decode_cursor, encode_cursor, utc_bound
from store.webhooks import insert_task_webhook

__all__ = ["TaskKind", "TaskQueryError", "TaskStore"]

_ACTIVE: Final[tuple[str, ...]] = tuple(sorted(ACTIVE_STATUSES))
_TERMINAL: Final[tuple[str, ...]] = tuple(sorted(TERMINAL_STATUSES))
_MAX_LIST_LIMIT: Final[int] = 1000
#: Id prefixes of the two kinds of task sharing the queue (kept for callers not yet on :class:`TaskKind`).


#: Every column a record carries, by the record's own field names (the table uses the same names).
_RECORD_FIELDS: Final[tuple[str, ...]] = tuple(item.name for item in dataclasses.fields(TaskRecord))


def _record(row: Row[Any]) -> TaskRecord:
    """A row of ``select(Task)`` as the immutable record callers get."""
    m = row._mapping
    values = {name: m[name] for name in _RECORD_FIELDS}
    values["staged_media"] = builtins.list(m["staged_media"] or [])
    return TaskRecord(**values)


def _is_live(request: dict[str, Any]) -> bool:
    """A live source (the submit stores ``type: "live"`` for every live input): it has its own limits."""
    inputs = request.get("input") if isinstance(request, dict) else None
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    return isinstance(first, dict) and first.get("type") == "live"


def _fetch(conn: Connection, task_id: str) -> TaskRecord | None:
    row = conn.execute(sa.select(Task).where(Task.id == task_id)).first()
    return _record(row) if row is not None else None


class TaskStore:
    """Tasks of every project. One instance per process is enough; it holds only the engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- submit / read ----------------------------------------------------------------------------

    def create(
        self,
        project: str,
        request: dict[str, Any],
        model: str | None,
        staged_media: builtins.list[str] | None = None,
        kind: TaskKind | str = TaskKind.VIDEO,
        deadline: tuple[float | None, float | None] = (None, None),
        webhook: tuple[str, str | None] | None = None,
    ) -> TaskRecord:
        """A new pending task of ``kind``: its prefix + ULID, so ids sort by creation time. Both kinds go
        through the same queue and runners. ``kind`` may still be given as an id prefix (``"ib_"``).
        ``deadline`` is (seconds of processing allowed, seconds the client asked for); ``webhook`` (url,
        secret) is the task's per-request webhook, stored in the same transaction."""
        task_id = f"{TaskKind.coerce(kind).prefix}{ULID()}"
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(Task).values(
                    id=task_id,
                    project=project,
                    status="pending",
                    request=request,
                    model=model,
                    created_at=utcnow(),
                    staged_media=builtins.list(staged_media or []),
                    processed_frames=0,
                    archive_bytes=0,
                    cancel_requested=False,
                    max_processing_time_s=deadline[0],
                    requested_processing_time_s=deadline[1],
                    live=_is_live(request),
                )
            )
            if webhook is not None:
                insert_task_webhook(conn, project, task_id, *webhook)
            record = _fetch(conn, task_id)
        assert record is not None
        return record

    def get(self, project: str, task_id: str) -> TaskRecord | None:
        """The task, or None when it does not exist or belongs to another project (same answer: no leak)."""
        record = self.get_any(task_id)
        if record is None or record.project != project:
            return None
        return record

    def get_any(self, task_id: str) -> TaskRecord | None:
        """The task whatever its project (runners and the reaper act across projects)."""
        with self._engine.connect() as conn:
            return _fetch(conn, task_id)

    def list(
        self,
        project: str,
        *,
        status: str | None = None,
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = 20,
        kind: TaskKind | str = TaskKind.VIDEO,
    ) -> tuple[builtins.list[TaskRecord], str | None]:
        """One page of the project's tasks of ``kind``, newest first, and the next page's cursor (None at the end).

        ``created_from`` is inclusive and ``created_to`` exclusive. The cursor encodes the last row's
        (created_at, id), so paging stays exact while new tasks arrive and after rows are deleted. A bad
        cursor, or a bound whose UTC value no ``datetime`` holds, is a :class:`TaskQueryError` (ValueError)
        naming the parameter.
        """
        if limit < 1:
            raise ValueError("limit")
        limit = min(limit, _MAX_LIST_LIMIT)
        task_kind = TaskKind.coerce(kind)
        created_from = utc_bound(created_from, "created_from")
        created_to = utc_bound(created_to, "created_to")
        query = sa.select(Task).where(Task.project == project, Task.id.startswith(task_kind.prefix, autoescape=True))
        if status is not None:
            query = query.where(Task.status == status)
        if created_from is not None:
            query = query.where(Task.created_at >= created_from)
        if created_to is not None:
            query = query.where(Task.created_at < created_to)
        if cursor is not None:
            after_created, after_id = decode_cursor(cursor, task_kind)
            query = query.where(
                sa.or_(
                    Task.created_at < after_created,
                    sa.and_(Task.created_at == after_created, Task.id < after_id),
                )
            )
        query = query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
        with self._engine.connect() as conn:
            records = [_record(row) for row in conn.execute(query)]
        if len(records) > limit:
            page = records[:limit]
            return page, encode_cursor(page[-1])
        return records, None

    def counts_by_status(self, project: str | None = None) -> dict[str, int]:
        """Tasks per status, every status present (zeros included): ``project``'s tasks only (what
        ``/v1/status`` shows a caller), or every project's when None (the worker's queue metrics)."""
        counts = dict.fromkeys(TASK_STATUSES, 0)
        query = sa.select(Task.status, sa.func.count()).group_by(Task.status)
        if project is not None:
            query = query.where(Task.project == project)
        with self._engine.connect() as conn:
            for status, count in conn.execute(query):
                counts[status] = int(count)
        return counts

    def pending_count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(Task.status == "pending")).scalar_one())

    # --- runners ----------------------------------------------------------------------------------

    def add_staged(self, task_id: str, url: str) -> None:
        """Record one more ``storage://`` object to delete with the task (e.g. a spooled copy of its
        video), so it goes at the task's deletion or retention even if the runner dies first."""
        with write_transaction(self._engine) as conn:
            current = conn.execute(sa.select(Task.staged_media).where(Task.id == task_id)).scalar_one_or_none()
            if current is None:
                return
            conn.execute(sa.update(Task).where(Task.id == task_id).values(staged_media=[*current, url]))

    def running_live(self, project: str | None) -> int:
        """Live-source tasks running (or cancelling) now, of ``project`` or (None) of every project."""
        query = sa.select(sa.func.count()).select_from(Task).where(Task.status.in_(_ACTIVE), Task.live.is_(True))
        if project is not None:
            query = query.where(Task.project == project)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def claim_next(
        self,
        runner_id: str,
        *,
        max_running: int,
        max_running_per_project: int,
        max_live: int = 0,
        max_live_per_project: int = 0,
        file_room: bool = True,
        live_room: bool = False,
    ) -> TaskRecord | None:
        """Atomically take the oldest pending task the limits allow, or None (``store.task_claims``):
        file tasks under ``max_running``/``max_running_per_project``, live tasks under their own
        ``max_live``/``max_live_per_project``, each only where the worker has room for that kind."""
        limits = ClaimLimits(max_running, max_running_per_project, max_live, max_live_per_project, file_room, live_room)
        return task_claims.claim_next(self._engine, runner_id, limits, task_event, _fetch)

    def heartbeat(
        self,
        task_id: str,
        runner_id: str,
        *,
        processed_frames: int,
        last_frame_index: int | None,
        total_frames: int | None,
        archive_bytes: int,
    ) -> TaskRecord | None:
        """Record progress and liveness; the fresh record tells the runner whether to stop.

        None means the task is no longer this runner's (reaped, deleted, finished, claimed by another):
        the runner must stop without writing anything more. ``status == "cancelling"`` means: wind down.
        """
        with write_transaction(self._engine) as conn:
            updated = conn.execute(
                sa.update(Task)
                .where(Task.id == task_id, Task.runner_id == runner_id, Task.status.in_(_ACTIVE))
                .values(
                    heartbeat_at=utcnow(),
                    processed_frames=processed_frames,
                    last_frame_index=last_frame_index,
                    total_frames=total_frames,
                    archive_bytes=archive_bytes,
                )
            )
            if updated.rowcount != 1:
                return None
            return _fetch(conn, task_id)

    def finish(
        self,
        task_id: str,
        runner_id: str,
        *,
        status: str,
        finish_reason: str | None,
        usage: dict[str, Any] | None,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        processed_frames: int | None = None,
        archive_bytes: int | None = None,
    ) -> bool:
        """Move the runner's running/cancelling task to a terminal status; whether it applied.

        False when the task is gone, already terminal (e.g. reaped) or held by another runner: a task
        finishes exactly once, and only its owner finishes it.
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish status must be one of {sorted(TERMINAL_STATUSES)}, not {status!r}")
        values: dict[str, Any] = {
            "status": status,
            "finished_at": utcnow(),
            "finish_reason": finish_reason,
            "usage": usage,
            "result": result,
            "error_code": error_code,
            "error_message": error_message,
        }
        if processed_frames is not None:
            values["processed_frames"] = processed_frames
        if archive_bytes is not None:
            values["archive_bytes"] = archive_bytes
        with write_transaction(self._engine) as conn:
            updated = conn.execute(
                sa.update(Task)
                .where(Task.id == task_id, Task.runner_id == runner_id, Task.status.in_(_ACTIVE))
                .values(**values)
            )
            if updated.rowcount == 1:
                task_event(conn, _fetch(conn, task_id))
            return updated.rowcount == 1

    # --- clients ----------------------------------------------------------------------------------

    def request_cancel(self, project: str, task_id: str) -> TaskRecord | None:
        """Ask a task to stop; the fresh record, or None when not found / another project's.

        pending -> cancelled at once (no runner to tell); running -> cancelling (its runner sees it on its next
        heartbeat and finishes it as cancelled); cancelling and terminal tasks are left as they are.
        """
        for _ in range(5):  # a concurrent claim/finish can move the task between our read and write
            with write_transaction(self._engine) as conn:
                record = _fetch(conn, task_id)
                if record is None or record.project != project:
                    return None
                if record.status == "pending":
                    values: dict[str, Any] = {
                        "status": "cancelled",
                        "finished_at": utcnow(),
                        "finish_reason": "cancelled",
                        "cancel_requested": True,
                    }
                elif record.status == "running":
                    values = {"status": "cancelling", "cancel_requested": True}
                else:
                    return record
                updated = conn.execute(
                    sa.update(Task).where(Task.id == task_id, Task.status == record.status).values(**values)
                )
                if updated.rowcount == 1:
                    return task_event(conn, _fetch(conn, task_id))  # pending → cancelled is an event
        return self.get(project, task_id)

    def delete(self, project: str, task_id: str) -> TaskRecord | None:
        """Delete the task and its archive; the deleted record (the caller removes its staged media) or None.

        A running task may be deleted: its runner's next heartbeat returns None and it stops.
        """
        with write_transaction(self._engine) as conn:
            record = _fetch(conn, task_id)
            if record is None or record.project != project:
                return None
            self._delete_rows(conn, [task_id])
            return record

    # --- reaper -----------------------------------------------------------------------------------

    def reap_stale(self, *, stale_after_s: float, now: dt.datetime | None = None) -> builtins.list[TaskRecord]:
        """End every running/cancelling task whose runner stopped heartbeating; the reaped records (fresh).

        A stale running task becomes ``failed`` (error_code ``runner_lost``, finish_reason ``error``); a stale
        cancelling task becomes ``cancelled`` — the client asked for that and nothing more will come.
        ``now`` is for tests and the reaper's own clock.
        """
        now = to_utc(now) if now is not None else utcnow()
        cutoff = now - dt.timedelta(seconds=stale_after_s)
        stale = sa.or_(Task.heartbeat_at < cutoff, Task.heartbeat_at.is_(None))
        reaped: builtins.list[TaskRecord] = []
        with write_transaction(self._engine) as conn:
            candidates = conn.execute(sa.select(Task.id, Task.status).where(Task.status.in_(_ACTIVE), stale)).all()
            for task_id, status in candidates:
                if status == "cancelling":
                    values: dict[str, Any] = {"status": "cancelled", "finish_reason": "cancelled"}
                else:
                    values = {
                        "status": "failed",
                        "finish_reason": "error",
                        "error_code": ErrorCode.RUNNER_LOST.value,
                        "error_message": (
                            f"the task's runner stopped heartbeating (no heartbeat for over {stale_after_s:g} s)"
                        ),
                    }
                updated = conn.execute(
                    sa.update(Task)
                    .where(Task.id == task_id, Task.status == status, stale)
                    .values(finished_at=now, **values)
                )
                if updated.rowcount == 1:
                    record = task_event(conn, _fetch(conn, task_id))
                    if record is not None:
                        reaped.append(record)
        return reaped

    def purge_finished_before(self, cutoff: dt.datetime) -> builtins.list[TaskRecord]:
        """Retention: delete terminal tasks finished before ``cutoff`` (and their archives); the deleted records."""
        with write_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(Task).where(Task.status.in_(_TERMINAL), Task.finished_at < cutoff).order_by(Task.finished_at)
            ).all()
            records = [_record(row) for row in rows]
            if records:
                self._delete_rows(conn, [record.id for record in records])
        return records

    @staticmethod
    def _delete_rows(conn: Connection, task_ids: builtins.list[str]) -> None:
        """Delete tasks and, explicitly, their archive events (also correct where foreign keys are off)."""
        for start in range(0, len(task_ids), 500):  # stay under SQLite's bound-parameter limit
            batch = task_ids[start : start + 500]
            conn.execute(sa.delete(ArchiveEvent).where(ArchiveEvent.task_id.in_(batch)))
            conn.execute(sa.delete(Task).where(Task.id.in_(batch)))
