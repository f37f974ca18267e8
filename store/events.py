"""The durable lifecycle event log and its fan-out to webhook deliveries.

:func:`record` is called inside the transaction that makes the change it reports (a task's claim or
finish, an upload's finalize), so an event exists exactly when its change does, and the deliveries
to every matching webhook are created in that same transaction — a crash right after loses none. The
delivery body is frozen then: the bytes later signed and sent are the event as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from ulid import ULID

from contract.events import TERMINAL_TASK_EVENTS, EventType
from store.db import write_transaction
from store.event_tables import Event, Webhook, WebhookDelivery
from store.records import TaskKind, TaskRecord

__all__ = ["EventLog", "epoch_iso", "event_body", "record", "task_event", "task_payload"]

_TERMINAL_TYPES: Final[dict[str, EventType]] = {
    "succeeded": EventType.TASK_SUCCEEDED,
    "failed": EventType.TASK_FAILED,
    "cancelled": EventType.TASK_CANCELLED,
}


def epoch_iso(epoch: float) -> str:
    """An epoch-seconds time (the event and webhook tables') as ISO-8601 UTC with ``Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def event_body(row: Any) -> dict[str, Any]:
    """The public event object of an ``events`` row (SSE data line and webhook body)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return {
        "event_id": m["id"],
        "event_type": m["type"],
        "project": m["project"],
        "task_id": m["task_id"],
        "created_at": epoch_iso(m["created_at"]),
        "payload": m["payload"],
    }


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _wants(webhook: Any, event_type: str, task_id: str | None) -> bool:
    if webhook.task_id is not None:  # a per-request webhook: its own task's end only
        return webhook.task_id == task_id and event_type in TERMINAL_TASK_EVENTS
    return event_type != EventType.WEBHOOK_TEST and ("*" in webhook.events or event_type in webhook.events)


def record(
    conn: Connection,
    project: str,
    event_type: EventType,
    payload: dict[str, Any],
    task_id: str | None = None,
    only_webhook: str | None = None,
) -> int:
    """Append an event and a pending delivery to every webhook that wants it; the event's id.
    ``only_webhook``: deliver to that webhook alone (``webhook.test``)."""
    now = time.time()
    inserted = conn.execute(
        sa.insert(Event).values(
            project=project, type=event_type.value, task_id=task_id, created_at=now, payload=payload
        )
    ).inserted_primary_key
    assert inserted is not None
    event_id = inserted[0]
    body = _encode(
        event_body(
            {
                "id": event_id,
                "type": event_type.value,
                "project": project,
                "task_id": task_id,
                "created_at": now,
                "payload": payload,
            }
        )
    )
    hooks = conn.execute(sa.select(Webhook).where(Webhook.project == project, Webhook.enabled.is_(True))).all()
    for hook in hooks:
        if (hook.id == only_webhook) if only_webhook is not None else _wants(hook, event_type, task_id):
            conn.execute(
                sa.insert(WebhookDelivery).values(
                    id=f"whd_{ULID()}",
                    webhook_id=hook.id,
                    project=project,
                    event_id=event_id,
                    event_type=event_type.value,
                    body=body,
                    status="pending",
                    attempts=0,
                    retry_from=0,
                    next_attempt_at=now,
                    leased_until=None,
                    last_status_code=None,
                    last_error=None,
                    created_at=now,
                    finished_at=None,
                )
            )
    return int(event_id)


def task_payload(task: TaskRecord) -> dict[str, Any]:
    """What a task event says about its task (ids, status, progress, usage, error)."""
    video = task.kind is TaskKind.VIDEO
    base = "/v1/video/tasks" if video else "/v1/vision/batch"
    return {
        "task": {
            "id": task.id,
            "kind": task.kind.value,
            "status": task.status,
            "finish_reason": task.finish_reason,
            "error": {"code": task.error_code, "message": task.error_message} if task.error_code else None,
            "processed": task.processed_frames,
            "total_frames": task.total_frames,
            "usage": task.usage,
            "created_at": task.created_at.isoformat(),
            "started_at": task.started_at.isoformat() if task.started_at else None,
            "finished_at": task.finished_at.isoformat() if task.finished_at else None,
            "url": f"{base}/{task.id}",
            "results_url": f"{base}/{task.id}/results" if video else f"{base}/{task.id}",
        }
    }


def task_event(conn: Connection, task: TaskRecord | None) -> TaskRecord | None:
    """Record the event of ``task``'s new status (started or terminal) in the caller's transaction;
    returns ``task`` so a store method can ``return task_event(conn, fresh)``."""
    if task is None:
        return None
    if task.kind is TaskKind.IMAGE_BATCH:
        if task.is_terminal:
            record(conn, task.project, EventType.BATCH_FINISHED, task_payload(task), task.id)
    elif task.status == "running":
        record(conn, task.project, EventType.TASK_STARTED, task_payload(task), task.id)
    elif task.status in _TERMINAL_TYPES:
        record(conn, task.project, _TERMINAL_TYPES[task.status], task_payload(task), task.id)
    return task


class EventLog:
    """Reads of the log (the events stream) and its retention; writes go through :func:`record`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def emit(
        self,
        project: str,
        event_type: EventType,
        payload: dict[str, Any],
        task_id: str | None = None,
        only_webhook: str | None = None,
    ) -> int:
        """Record one event in a transaction of its own (for changes that have no transaction here)."""
        with write_transaction(self._engine) as conn:
            return record(conn, project, event_type, payload, task_id, only_webhook)

    def latest_id(self, project: str) -> int:
        """The newest event id of ``project`` (0 when there is none): where a live stream starts."""
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(Event.id)).where(Event.project == project)).scalar_one()
        return int(value or 0)

    def since(
        self,
        project: str,
        after_id: int,
        *,
        task_id: str | None = None,
        types: frozenset[str] | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The project's events after ``after_id``, oldest first, filtered by task and type."""
        query = sa.select(Event).where(Event.project == project, Event.id > after_id)
        if task_id is not None:
            query = query.where(Event.task_id == task_id)
        if types is not None:
            query = query.where(Event.type.in_(sorted(types)))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(Event.id).limit(limit)).all()
        return [event_body(row) for row in rows]

    def purge_before(self, cutoff_epoch: float) -> int:
        """Retention: drop events older than ``cutoff_epoch``; how many."""
        with write_transaction(self._engine) as conn:
            return int(conn.execute(sa.delete(Event).where(Event.created_at < cutoff_epoch)).rowcount)
