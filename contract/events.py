"""Lifecycle events (contract: VideoVector's processing event stream and webhook event model).

One event object is what ``GET /v1/processing/events/stream`` sends as an SSE data line and exactly
the bytes a webhook delivery signs and sends: ``{event_id, event_type, project, task_id, created_at,
payload}``. Names are dotted; :data:`CATALOGUE` is ``GET /v1/webhooks/events``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, Field

__all__ = ["CATALOGUE", "TERMINAL_TASK_EVENTS", "EventCatalogue", "EventInfo", "EventType", "LifecycleEvent"]


class EventType(StrEnum):
    TASK_STARTED = "task.started"
    TASK_PROGRESS = "task.progress"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_CANCELLED = "task.cancelled"
    BATCH_FINISHED = "batch.finished"
    UPLOAD_FINALIZED = "upload.finalized"
    COLLECTION_INDEXED = "collection.indexed"
    WEBHOOK_TEST = "webhook.test"


CATALOGUE: Final[dict[EventType, str]] = {
    EventType.TASK_STARTED: "a video task was claimed by a runner and started processing",
    EventType.TASK_PROGRESS: "a running video task's progress (at most one per progress_event_interval_s)",
    EventType.TASK_SUCCEEDED: "a video task finished; its results are ready",
    EventType.TASK_FAILED: "a video task failed (payload.task.error says why)",
    EventType.TASK_CANCELLED: "a video task was cancelled",
    EventType.BATCH_FINISHED: "an image batch reached a terminal status (payload.task.status)",
    EventType.UPLOAD_FINALIZED: "a resumable upload was assembled and verified",
    EventType.COLLECTION_INDEXED: "items were indexed into a vector collection",
    EventType.WEBHOOK_TEST: "sent by POST /v1/webhooks/{id}/test to that webhook only",
}

#: What a per-request webhook (``webhook: {url, secret}`` on a task) receives: the task's end.
TERMINAL_TASK_EVENTS: Final[frozenset[str]] = frozenset(
    {EventType.TASK_SUCCEEDED, EventType.TASK_FAILED, EventType.TASK_CANCELLED, EventType.BATCH_FINISHED}
)


class LifecycleEvent(BaseModel):
    """One event of the durable log: an SSE data line and a webhook body alike."""

    event_id: int = Field(description="increasing; the SSE id, send it back as Last-Event-ID to resume")
    event_type: EventType
    project: str
    task_id: str | None = None
    created_at: str = Field(description="ISO-8601 UTC")
    payload: dict[str, Any]


class EventInfo(BaseModel):
    name: EventType
    description: str


class EventCatalogue(BaseModel):
    object: str = "list"
    data: list[EventInfo]
