"""A runner's lease on one claimed task: prove it is alive, write the archive at the right offset, end it once.

Whatever a task runs (a video, an image batch), its runner holds the task the same way, and this is
where that is done:

* **Store calls go through** ``asyncio.to_thread``: SQLAlchemy blocks, and a blocked loop would stall every
  other task of the replica.
* **The heartbeat is a separate coroutine** on a fixed period, so a slow detector never makes a healthy
  task look dead to the reaper. It is also how cancellation and a lost claim are noticed: it sets flags
  that the work loop checks at every chunk boundary, and an ``asyncio.Event`` that wakes the loop even
  while it waits on the detector.
* **A lost claim means silence.** If the heartbeat finds the task is no longer ours (reaped, deleted),
  the reaper has already ended the stream, so the runner stops without writing another byte. To keep the
  window where a stalled runner could write after being reaped small, every archive write first checks
  that the last confirmed heartbeat is recent (well inside ``heartbeat_timeout_s``), heart-beating inline
  when it is not.
* **Every other path ends terminal**: a terminal chunk (finish_reason stop / max_frames / cancelled / error)
  and ``[DONE]`` are appended *before* ``tasks.finish``, so a task that reads as terminal always has a
  complete archive. A failure is a :class:`~contract.errors.VisionGridError`; its ``code`` and ``message``
  are what the record and the error chunk carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from contract.errors import ErrorCode, VisionGridError
from contract.events import EventType
from pipelines.chunks import DONE_DATA, error_object, sse_event, terminal_chunk
from pipelines.decode import DecodeStats
from store.archive import Archive, ArchiveTaskMissingError
from store.events import EventLog, task_payload
from store.records import TaskKind, TaskRecord
from store.tasks import TaskStore
from visiongrid.settings import Settings

__all__ = ["CLAIM_LOST", "TaskLease"]

logger = logging.getLogger(__name__)

#: What a run returns when the task stopped being this runner's (reaped or deleted): not a task status,
#: because the runner did not decide the task's fate and wrote nothing more.
CLAIM_LOST: Final[str] = "lost"

#: Re-confirm the claim inline before writing when the last good heartbeat is older than this fraction of
#: ``heartbeat_timeout_s``: the reaper cannot have taken a task whose heartbeat is younger than the timeout.
_LEASE_SAFETY: Final[float] = 0.5


class TaskLease:
    """One task's claim, archive position and progress. One instance per task, so concurrent tasks of a
    replica share no mutable state; the work loops (video, image batch) read and update it."""

    def __init__(
        self,
        task: TaskRecord,
        *,
        tasks: TaskStore,
        archive: Archive,
        settings: Settings,
        runner_id: str,
        events: EventLog | None = None,
        compute: dict[str, str] | None = None,
    ) -> None:
        self.task = task
        self.events = events
        self.compute: dict[str, str] = dict(compute or {})
        self._progress_sent_at = time.monotonic()
        self._progress_sent = 0
        self.tasks = tasks
        self.archive = archive
        self.settings = settings
        self.runner_id = runner_id
        self.model: str | None = task.model  # the model hint echoed in the first chunk
        self.started = time.monotonic()
        self.offset = 0  # archived bytes so far = the start offset of the next event
        self.chunks_written = 0
        self.processed = 0
        self.last_frame_index: int | None = None
        self.last_timestamp_ms: float | None = None
        self.stats: DecodeStats | None = None
        self.last_description: dict[str, Any] | None = None  # a final partial segment, sent in the terminal chunk
        self.terminal_written = False
        self.done_written = False
        self.cancel_requested = False
        self.deadline_exceeded = False
        self.claim_lost = False
        self.stop_event = asyncio.Event()
        self.last_beat_ok = time.monotonic()  # the claim itself set heartbeat_at just now
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def stop_requested(self) -> bool:
        return self.claim_lost or self.cancel_requested or self.deadline_exceeded

    @property
    def stopped_on_purpose(self) -> bool:
        """A cancel or the deadline stopped the work (as opposed to a lost claim): end it terminal."""
        return self.cancel_requested or self.deadline_exceeded

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def usage(self) -> dict[str, int | str]:
        """Frames, time, and where they were computed (backend, runtime, decoder)."""
        return {"processed_frames": self.processed, "processing_time_ms": self.elapsed_ms(), **self.compute}

    async def hold(self, job: Callable[[], Awaitable[str]]) -> str:
        """Run ``job`` while heart-beating, from the archive's current end; the job's status."""
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat-{self.task.id}")
        deadline = self.task.max_processing_time_s
        timer = asyncio.get_running_loop().call_later(deadline, self._deadline_passed) if deadline else None
        try:
            self.offset = await asyncio.to_thread(self.archive.size, self.task.id)
            return await job()
        finally:
            if timer is not None:
                timer.cancel()
            await self.stop_heartbeat()

    def _deadline_passed(self) -> None:
        """``Max-Processing-Time`` is up (counted from the claim): the work loop stops at its next chunk."""
        if not self.stop_requested:
            logger.info("task %s: deadline of %.3g s exceeded", self.task.id, self.task.max_processing_time_s)
            self.deadline_exceeded = True
            self.stop_event.set()

    # ------------------------------------------------------------------ archive and claim

    async def append(self, data: str) -> bool:
        """Archive one event (start offset = bytes so far); False, writing nothing, if the claim is lost."""
        if not await self._confirm_claim():
            return False
        event = sse_event(data, self.offset)
        try:
            end = await asyncio.to_thread(self.archive.append, self.task.id, event)
        except ArchiveTaskMissingError:  # the task was deleted: same as a lost claim
            self.lose_claim("task deleted")
            return False
        if end != self.offset + len(event):
            # Someone else wrote to this task's archive (a reaper that decided we were dead): our ids are off.
            logger.warning("task %s: archive end %d, expected %d", self.task.id, end, self.offset + len(event))
        self.offset = end
        self.chunks_written += 1
        return True

    async def _confirm_claim(self) -> bool:
        if self.claim_lost:
            return False
        if time.monotonic() - self.last_beat_ok >= _LEASE_SAFETY * self.settings.heartbeat_timeout_s:
            await self._beat()
        return not self.claim_lost

    async def _heartbeat_loop(self) -> None:
        """Beat at once (a cancel may predate the run), then every ``heartbeat_interval_s`` until lost."""
        while not self.claim_lost:
            await self._beat()
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def _beat(self) -> None:
        sent = time.monotonic()
        try:
            record = await asyncio.to_thread(
                self.tasks.heartbeat,
                self.task.id,
                self.runner_id,
                processed_frames=self.processed,
                last_frame_index=self.last_frame_index,
                total_frames=self.stats.total_frames if self.stats is not None else None,
                archive_bytes=self.offset,
            )
        except Exception:  # a database hiccup is not a lost claim: try again next period
            logger.warning("task %s: heartbeat failed", self.task.id, exc_info=True)
            return
        if record is None:
            self.lose_claim("reaped, deleted or finished elsewhere")
            return
        self.last_beat_ok = sent  # measured before the call: the stored heartbeat_at is at least this recent
        await self._progress_event(record)
        if record.status == "cancelling" and not self.cancel_requested:
            self.cancel_requested = True
            self.stop_event.set()

    async def _progress_event(self, record: TaskRecord) -> None:
        """``task.progress`` of a video task: when frames advanced, at most once per ``progress_event_interval_s``."""
        if self.events is None or record.kind is not TaskKind.VIDEO or self.processed == self._progress_sent:
            return
        if time.monotonic() - self._progress_sent_at < self.settings.progress_event_interval_s:
            return
        self._progress_sent_at, self._progress_sent = time.monotonic(), self.processed
        try:
            await asyncio.to_thread(
                self.events.emit, record.project, EventType.TASK_PROGRESS, task_payload(record), record.id
            )
        except Exception:  # progress is best-effort; the terminal event is not (it is in finish's transaction)
            logger.warning("task %s: progress event failed", self.task.id, exc_info=True)

    def lose_claim(self, why: str) -> None:
        if not self.claim_lost:
            logger.warning("task %s: claim lost (%s); stopping without writing", self.task.id, why)
        self.claim_lost = True
        self.stop_event.set()

    async def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    # ------------------------------------------------------------------ terminal paths

    async def finish_stopped(self) -> str:
        """A stop: the claim is gone (silence), the deadline passed (``failed``), or the user cancelled."""
        if self.claim_lost:
            return CLAIM_LOST
        if self.deadline_exceeded:
            seconds = self.task.max_processing_time_s
            message = f"processing took longer than Max-Processing-Time ({seconds:g} s)"
            return await self.fail(VisionGridError(ErrorCode.DEADLINE_EXCEEDED, message))
        return await self.finalize(status="cancelled", finish_reason="cancelled")

    async def fail(self, error: VisionGridError) -> str:
        """End the task ``failed`` with ``error``'s code and message (record and error chunk alike)."""
        return await self.finalize(status="failed", finish_reason="error", error=error)

    async def finalize(
        self,
        *,
        status: str,
        finish_reason: str,
        error: VisionGridError | None = None,
        result: dict[str, Any] | None = None,
        usage: dict[str, int | str] | None = None,
    ) -> str:
        """Terminal chunk + ``[DONE]``, then ``tasks.finish``: a terminal task always has a complete archive."""
        await self.stop_heartbeat()
        usage = usage if usage is not None else self.usage()
        if not self.terminal_written:
            if not await self.append(self._terminal_text(finish_reason, usage, error)):
                return CLAIM_LOST
            self.terminal_written = True
        if not self.done_written:
            if not await self.append(DONE_DATA):
                return CLAIM_LOST
            self.done_written = True
        applied = await asyncio.to_thread(
            self.tasks.finish,
            self.task.id,
            self.runner_id,
            status=status,
            finish_reason=finish_reason,
            usage=usage,
            result=result,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            processed_frames=self.processed,
            archive_bytes=self.offset,
        )
        if not applied:
            logger.warning("task %s: finish(%s) did not apply; the claim was lost", self.task.id, status)
            return CLAIM_LOST
        return status

    def _terminal_text(self, finish_reason: str, usage: dict[str, int | str], error: VisionGridError | None) -> str:
        return terminal_chunk(
            self.task.id,
            finish_reason=finish_reason,
            usage=usage,
            stats=self.stats,
            elapsed_ms=int(usage["processing_time_ms"]),
            error=error_object(error) if error is not None else None,
            model=self.model,
            first=self.chunks_written == 0,
            frame_index=self.last_frame_index,
            timestamp_ms=self.last_timestamp_ms,
            description=self.last_description,
        )

    async def fail_internal(self, exc: BaseException) -> str:
        """Last resort after an unexpected exception: end the task ``failed`` if the store still works."""
        try:
            await self.stop_heartbeat()
            if self.claim_lost:
                return CLAIM_LOST
            message = f"internal error: {type(exc).__name__}: {exc}"
            return await self.fail(VisionGridError(ErrorCode.INTERNAL_ERROR, message))
        except Exception:
            logger.exception("task %s: could not record the internal error; the reaper will end it", self.task.id)
            return "failed"
