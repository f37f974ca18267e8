"""The SSE response: replay the task's archive from a byte offset, then tail it live.

Every client reads the archive, so replay and live can never disagree. The bytes sent are
exactly the archived event bytes (each carries ``id: <offset after it>``, so a standard
EventSource resumes by itself with ``Last-Event-ID``); keep-alive ``:`` comment lines are
added only while waiting and are neither archived nor counted in offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from contract.errors import PlanError
from pipelines.chunks import DONE_DATA
from store.archive import Archive
from store.tasks import TaskStore

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer
    "Connection": "keep-alive",
}
KEEPALIVE = b": keep-alive\n\n"
_INT64_MAX = 2**63 - 1


def sse_openapi(description: str, model: str) -> dict[str, Any]:
    """The OpenAPI 200 response of an SSE route whose data lines are ``model`` (components/schemas)."""
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": {"type": "string", "description": f"SSE events; each data line is a {model}"},
                "x-sse-data": {"$ref": f"#/components/schemas/{model}"},
            }
        },
    }


#: The OpenAPI 200 response of a task's stream: each ``data:`` line is a Chunk.
SSE_OPENAPI = sse_openapi(
    "text/event-stream: `id: <byte offset after the event>` + `data: <Chunk JSON>` per event, "
    "then `data: [DONE]`; `: keep-alive` comments while waiting",
    "Chunk",
)


def last_event_id(value: str | None, meaning: str) -> int | None:
    """The integer of a ``Last-Event-ID`` header (``None`` without one); else a 400 naming it."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 19 or int(text) > _INT64_MAX:
        raise PlanError("Last-Event-ID", f"must be {meaning}")
    return int(text)


DONE_EVENT_END = f"data: {DONE_DATA}\n\n".encode()


async def archive_stream(
    *,
    task_id: str,
    project: str,
    offset: int,
    tasks: TaskStore,
    archive: Archive,
    poll_interval_s: float,
    heartbeat_interval_s: float,
    terminal_grace_s: float = 5.0,
) -> AsyncIterator[bytes]:
    """Archived bytes from ``offset`` on; ends once the task is terminal and fully sent."""
    last_sent = time.monotonic()
    terminal_since: float | None = None
    while True:
        data = await run_in_threadpool(archive.read, task_id, offset)
        if data:
            offset += len(data)
            last_sent = time.monotonic()
            yield data
            continue
        task = await run_in_threadpool(tasks.get, project, task_id)
        if task is None:  # deleted while streaming
            return
        if task.is_terminal:
            # A runner archives [DONE] before it sets the terminal status, but the reaper
            # sets the status first and then closes the archive: wait a moment for [DONE].
            if await _archive_closed(archive, task_id, offset) or (
                terminal_since is not None and (time.monotonic() - terminal_since >= terminal_grace_s)
            ):
                tail = await run_in_threadpool(archive.read, task_id, offset)
                if tail:
                    yield tail
                return
            terminal_since = terminal_since or time.monotonic()
        if time.monotonic() - last_sent >= heartbeat_interval_s:
            last_sent = time.monotonic()
            yield KEEPALIVE
        await asyncio.sleep(poll_interval_s)


async def _archive_closed(archive: Archive, task_id: str, offset: int) -> bool:
    """Whether the archive ends with the ``[DONE]`` event (read from just before ``offset``)."""
    tail = await run_in_threadpool(archive.read, task_id, max(0, offset - len(DONE_EVENT_END)))
    return tail.endswith(DONE_EVENT_END)


def sse_response(stream: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
