"""Observed processing latency per media unit, read from what finished tasks recorded (read-only).

Nothing is measured twice: a task's runner already stores ``usage.processing_time_ms`` (from its claim
to its end) on the task row, and the terminal chunk of its archive carries the decoder's
``stream_info``. Those are the measurements:

* **video** (``vt_`` tasks): processing milliseconds per second of video, where the seconds are the
  source frames the decoder went through (``decoded_frames + dropped_frames``: sampling skips included,
  since the video's time passed under them) over the source ``fps`` of the terminal chunk;
* **image** (``ib_`` batches): processing milliseconds per image, ``usage.processed_frames`` being the
  images the batch went through.

Only ``succeeded`` tasks finished inside the window count: a cancelled or failed task's time says how
quickly it stopped, not how fast media are processed. The aggregate is total time over total units (a
long video weighs more than a short one, as it does on the cluster).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from store.records import TaskKind
from store.tables import ArchiveEvent, Task, utcnow
from store.tasks import TaskStore

__all__ = ["LatencySample", "LatencyStore", "latency_store", "video_seconds"]

#: At most this many of the most recent tasks are read per query: enough for a stable figure, bounded work.
MAX_SAMPLES: Final[int] = 1000


@dataclass(frozen=True)
class LatencySample:
    """The aggregate of one media type's measurements in the window."""

    sample_count: int  # tasks measured
    units: float  # seconds of video or images
    processing_ms: float  # their processing time, summed

    @property
    def ms_per_unit(self) -> float | None:
        return self.processing_ms / self.units if self.sample_count and self.units > 0 else None


def _event_payload(data: bytes) -> dict[str, Any] | None:
    """The JSON of one archived SSE event (``id: N\\ndata: {...}\\n\\n``); None for ``[DONE]`` or junk."""
    for line in bytes(data).decode("utf-8", "replace").splitlines():
        if line.startswith("data: "):
            try:
                payload = json.loads(line[len("data: ") :])
            except ValueError:
                return None
            return payload if isinstance(payload, dict) else None
    return None


def video_seconds(stream_info: dict[str, Any]) -> float | None:
    """Seconds of source video a task went through, from its terminal chunk's ``stream_info``."""
    try:
        fps = float(stream_info.get("fps") or 0.0)
        frames = int(stream_info.get("decoded_frames") or 0) + int(stream_info.get("dropped_frames") or 0)
    except (TypeError, ValueError):
        return None
    if fps <= 0 or frames <= 0:
        return None
    return frames / fps


class LatencyStore:
    """Read-only queries over ``tasks`` and ``archive_events``. Holds only the engine; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _finished(self, kind: TaskKind, window_s: float, now: dt.datetime | None) -> sa.Select[Any]:
        cutoff = (now or utcnow()) - dt.timedelta(seconds=window_s)
        return (
            sa.select(Task.id, Task.usage, Task.processed_frames)
            .where(Task.status == "succeeded", Task.id.startswith(kind.prefix), Task.finished_at >= cutoff)
            .order_by(Task.finished_at.desc())
            .limit(MAX_SAMPLES)
        )

    def image(self, window_s: float, now: dt.datetime | None = None) -> LatencySample:
        """Milliseconds per image of the image batches that succeeded in the last ``window_s`` seconds."""
        with self._engine.connect() as conn:
            rows = conn.execute(self._finished(TaskKind.IMAGE_BATCH, window_s, now)).all()
        count, units, total = 0, 0.0, 0.0
        for _, usage, processed in rows:
            images = int((usage or {}).get("processed_frames", processed) or 0)
            elapsed = (usage or {}).get("processing_time_ms")
            if images > 0 and isinstance(elapsed, int | float):
                count, units, total = count + 1, units + images, total + float(elapsed)
        return LatencySample(count, units, total)

    def video(self, window_s: float, now: dt.datetime | None = None) -> LatencySample:
        """Milliseconds per second of video of the video tasks that succeeded in the last ``window_s`` s."""
        finished = self._finished(TaskKind.VIDEO, window_s, now).subquery()
        inner = aliased(ArchiveEvent)
        last_seq = (
            sa.select(sa.func.max(inner.seq))
            .where(inner.task_id == finished.c.id)
            .correlate(finished)
            .scalar_subquery()
        )
        # the terminal chunk is the last event but [DONE]: read the last two and keep the one with usage
        query = sa.select(finished.c.id, finished.c.usage, ArchiveEvent.data).join(
            ArchiveEvent, sa.and_(ArchiveEvent.task_id == finished.c.id, ArchiveEvent.seq >= last_seq - 1)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        seconds: dict[str, float] = {}
        elapsed: dict[str, float] = {}
        for task_id, usage, data in rows:
            payload = _event_payload(data)
            if payload is None or payload.get("finish_reason") is None:
                continue
            span = video_seconds(payload.get("stream_info") or {})
            time_ms = (usage or {}).get("processing_time_ms")
            if span is not None and isinstance(time_ms, int | float):
                seconds[task_id], elapsed[task_id] = span, float(time_ms)
        return LatencySample(len(seconds), sum(seconds.values()), sum(elapsed.values()))


def latency_store(tasks: TaskStore) -> LatencyStore:
    """A latency reader over the task store's own engine (the same database, no second pool)."""
    return LatencyStore(tasks._engine)
