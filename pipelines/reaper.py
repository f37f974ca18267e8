"""Periodic housekeeping: end tasks whose runner died, and purge tasks past retention.

A runner that crashes (replica killed, node lost) cannot write its own terminal chunk, so live streams of
its task would wait forever. The reaper ends such a task in the store *and* closes its stream the way a
runner would -- a terminal chunk plus ``[DONE]`` -- so every client sees the same end-of-stream shape
whatever killed the task. It is synchronous (plain store calls); the caller runs it off its event loop.
"""

from __future__ import annotations

import datetime as dt
import logging

from contract.errors import ErrorCode, VisionGridError
from pipelines.chunks import DONE_DATA, error_object, sse_event, terminal_chunk
from pipelines.decode import DecodeStats
from store import media
from store.archive import Archive
from store.records import TaskRecord
from store.tasks import TaskStore
from visiongrid.settings import Settings

__all__ = ["sweep"]

logger = logging.getLogger(__name__)

_RUNNER_LOST_MESSAGE = "the task's runner stopped heartbeating"


def _elapsed_ms(record: TaskRecord) -> int:
    if record.started_at is None or record.finished_at is None:
        return 0
    return max(0, int((record.finished_at - record.started_at).total_seconds() * 1000))


def _close_stream(archive: Archive, record: TaskRecord) -> None:
    """Append the terminal chunk and ``[DONE]`` for a reaped task, from what its last heartbeat recorded."""
    usage = {"processed_frames": record.processed_frames, "processing_time_ms": _elapsed_ms(record)}
    error = None
    if record.status == "cancelled":
        finish_reason = "cancelled"
    else:
        finish_reason = "error"
        code = record.error_code or ErrorCode.RUNNER_LOST
        error = error_object(VisionGridError(code, record.error_message or _RUNNER_LOST_MESSAGE))
    # Only the counters the heartbeat stored are known; decoded_frames is at least the processed count.
    stats = DecodeStats(decoded_frames=record.processed_frames, total_frames=record.total_frames)
    offset = archive.size(record.id)
    text = terminal_chunk(
        record.id,
        finish_reason=finish_reason,
        usage=usage,
        stats=stats,
        elapsed_ms=usage["processing_time_ms"],
        error=error,
        model=record.model,
        first=offset == 0,
        frame_index=record.last_frame_index,
    )
    offset = archive.append(record.id, sse_event(text, offset))
    archive.append(record.id, sse_event(DONE_DATA, offset))


def sweep(tasks: TaskStore, archive: Archive, settings: Settings, *, now: dt.datetime | None = None) -> list[str]:
    """Reap stale running tasks (closing their streams), then apply retention; the ids touched.

    Each task is handled on its own: one task's archive failing to accept the terminal chunk must not
    keep the others from being closed or purged.
    """
    touched: list[str] = []
    for record in tasks.reap_stale(stale_after_s=settings.heartbeat_timeout_s, now=now):
        touched.append(record.id)
        logger.warning("reaped task %s (%s, %s)", record.id, record.status, record.error_code)
        try:
            _close_stream(archive, record)
        except Exception:
            logger.exception("could not close the stream of reaped task %s", record.id)

    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=settings.task_retention_s)
    for record in tasks.purge_finished_before(cutoff):
        touched.append(record.id)
        try:
            archive.delete(record.id)  # the store deletes events with the task; this is belt and braces
            if record.staged_media:
                media.delete_staged(list(record.staged_media), settings, record.project)
        except Exception:
            logger.exception("could not clean up purged task %s", record.id)
    return touched
