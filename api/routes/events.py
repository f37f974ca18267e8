"""``GET /v1/processing/events/stream`` (contract: VideoVector's processing event stream): SSE of the
caller's project's task, batch, upload, collection and webhook events from the durable log.

Without ``Last-Event-ID`` the stream starts live (events from now on); with it, it replays every
event after that id still kept (``events_retention_s``), then goes on live — one query, so replay and
live cannot disagree or skip. Each event is ``id: <event_id>`` + ``data: <LifecycleEvent JSON>``;
``: keep-alive`` comments while idle; a failure of the log mid-stream ends it with an
``event: processing.stream_error`` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.deps import ProjectDep, ServicesDep
from api.errors import error_responses
from api.sse import KEEPALIVE, sse_openapi, sse_response
from api.sse import last_event_id as parse_last_event_id
from contract.errors import PlanError
from contract.events import EventType
from store.events import EventLog

router = APIRouter(prefix="/v1/processing", tags=["events"])
logger = logging.getLogger("visiongrid.api")

_EVENTS_OPENAPI: Final = sse_openapi(
    "text/event-stream: `id: <event_id>` + `data: <LifecycleEvent JSON>` per event; `: keep-alive` comments while idle",
    "LifecycleEvent",
)


def _types(value: str | None) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    known = {event.value for event in EventType}
    for index, name in enumerate(names):
        if name not in known:
            raise PlanError(f"event_types[{index}]", f"unknown event type {name!r} (see GET /v1/webhooks/events)")
    return frozenset(names)


def _frame(event: dict[str, object]) -> bytes:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event['event_id']}\ndata: {data}\n\n".encode()


async def event_stream(
    log: EventLog,
    project: str,
    after: int,
    *,
    task_id: str | None,
    types: frozenset[str] | None,
    poll_interval_s: float,
    heartbeat_interval_s: float,
) -> AsyncIterator[bytes]:
    """The project's events after ``after`` (filtered), then live, until the client goes away."""
    last_sent = time.monotonic()
    while True:
        try:
            events = await run_in_threadpool(log.since, project, after, task_id=task_id, types=types)
        except Exception as exc:  # the log went away: say so, as the contract's stream_error event
            logger.exception("events stream of %s failed", project)
            yield f"event: processing.stream_error\ndata: {json.dumps({'error': str(exc)[:200]})}\n\n".encode()
            return
        if events:
            after = int(events[-1]["event_id"])
            last_sent = time.monotonic()
            yield b"".join(_frame(event) for event in events)
            continue
        if time.monotonic() - last_sent >= heartbeat_interval_s:
            last_sent = time.monotonic()
            yield KEEPALIVE
        await asyncio.sleep(poll_interval_s)


@router.get("/events/stream", response_class=StreamingResponse, responses={200: _EVENTS_OPENAPI, **error_responses()})
async def stream_events(
    project: ProjectDep,
    services: ServicesDep,
    task_id: Annotated[str | None, Query(max_length=64, description="only this task's events")] = None,
    event_types: Annotated[
        str | None, Query(max_length=1000, description="comma-separated event names, e.g. task.succeeded,task.failed")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=64, description="resume after this event id")] = None,
) -> StreamingResponse:
    """SSE of the project's lifecycle events; ``Last-Event-ID`` replays from the durable log."""
    types = _types(event_types)
    after = parse_last_event_id(last_event_id, "an event id (a non-negative integer)")
    log = services.events_or_raise()
    if after is None:
        after = await run_in_threadpool(log.latest_id, project)  # live: from now on
    settings = services.settings
    return sse_response(
        event_stream(
            log,
            project,
            after,
            task_id=task_id,
            types=types,
            poll_interval_s=settings.events_poll_interval_s,
            heartbeat_interval_s=settings.sse_heartbeat_interval_s,
        )
    )
