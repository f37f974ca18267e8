"""Decoding a task's video in its own thread, into a bounded queue the task's frame loop reads.

PyAV blocks and releases the GIL while decoding, so a thread decodes while the event loop serves the
model calls of this and other tasks. The thread waits on each ``put`` until there is room, so a slow
detector throttles decoding instead of letting decoded frames pile up: a task holds at most
``frame_queue_size`` + ``detector_inflight`` frames whatever the video's length. The thread checks a
``threading.Event`` per frame (and while waiting for room), so it stops within one frame of the runner
deciding to stop, and it is always joined: no task leaves a thread behind.

A live source cannot be throttled (it does not wait for us), so for it the thread never waits: when
the queue is full the *oldest* queued frame is dropped for the new one ("latest frame" policy) and
counted in ``dropped_frames``. Analysis then trails the source by at most the queue's length, and no
frame is analysed twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from contract.errors import ErrorCode, VisionGridError
from pipelines.decode import DecodedFrame, DecodeStats

__all__ = ["DecodeThread", "EndItem", "ErrorItem", "FrameItem", "QueueItem"]

logger = logging.getLogger(__name__)

#: How long the decode thread waits for queue room before re-checking its stop flag.
_PUT_POLL_S: Final[float] = 0.05


@dataclass(frozen=True, eq=False)
class FrameItem:
    """A decoded frame and a *snapshot* of the decoder's counters at that frame.

    A snapshot, because the decoder runs ahead of the chunk being written and its live stats would
    otherwise report frames the client has not been sent yet.
    """

    frame: DecodedFrame
    stats: DecodeStats
    arrived: float = field(default_factory=time.monotonic)  # when the frame came out of the decoder


class FrameSource(Protocol):
    """A file or live decoder: iterate frames once, live counters, why it ended, close."""

    @property
    def stats(self) -> DecodeStats: ...

    @property
    def finish_reason(self) -> str | None: ...

    def __iter__(self) -> Iterator[DecodedFrame]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EndItem:
    """The video ended normally (``stop`` or ``max_frames``)."""

    finish_reason: str
    stats: DecodeStats


@dataclass(frozen=True)
class ErrorItem:
    """Decoding failed; ``error`` is what the task fails with."""

    error: VisionGridError
    stats: DecodeStats


QueueItem = FrameItem | EndItem | ErrorItem


class DecodeThread:
    """Iterates a :class:`VideoDecoder` in a dedicated thread into a bounded asyncio queue.

    A dedicated thread rather than the loop's default executor: it lives as long as the video, and
    parking it in the shared pool would starve the short store calls that need that pool.
    """

    def __init__(
        self,
        decoder: FrameSource,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[QueueItem],
        name: str,
        *,
        stop: threading.Event | None = None,
        latest_only: bool = False,
    ) -> None:
        self._decoder = decoder
        self._loop = loop
        self._queue = queue
        self._stop = stop or threading.Event()  # a live decoder waits on the same event between reconnects
        self._latest_only = latest_only
        self.late_drops = 0  # frames dropped because analysis fell behind a live source
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    async def join(self, timeout: float | None = None) -> None:
        """Stop and wait for the thread (off the loop: it may be mid-frame). Closes an unstarted decoder.

        ``timeout`` (live sources): FFmpeg may sit in a network read of a silent source until its own
        read timeout; the task does not wait for that — the daemon thread closes its decoder and exits
        by itself, producing nothing more."""
        self._stop.set()
        if self._started:
            await asyncio.to_thread(self._thread.join, timeout)
            if self._thread.is_alive():
                logger.info("decode thread %s still in a network read; it ends on its own", self._thread.name)
        else:
            self._decoder.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _offer(self, item: QueueItem) -> None:
        """(On the loop) put ``item``, dropping the oldest queued frame when there is no room."""
        if self._queue.full():
            oldest = self._queue.get_nowait()
            if isinstance(oldest, FrameItem):
                self.late_drops += 1
        item.stats.dropped_frames += self.late_drops  # snapshots: the counts up to this item
        self._queue.put_nowait(item)

    def _put(self, item: QueueItem) -> bool:
        """Blocking put that gives up when stopped; False means "stop producing"."""
        if self._latest_only:
            try:
                self._loop.call_soon_threadsafe(self._offer, item)
            except RuntimeError:  # loop closed
                return False
            return not self._stop.is_set()
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        except RuntimeError:  # loop closed: nobody is listening any more
            return False
        while True:
            try:
                future.result(timeout=_PUT_POLL_S)
                return True
            except TimeoutError:
                if self._stop.is_set():
                    future.cancel()
                    return False
            except Exception:  # cancelled with the loop
                return False

    def _run(self) -> None:
        decoder = self._decoder
        try:
            for frame in decoder:
                if self._stop.is_set():
                    return
                if not self._put(FrameItem(frame, dataclasses.replace(decoder.stats))):
                    return
            if not self._stop.is_set():
                self._put(EndItem(decoder.finish_reason or "stop", dataclasses.replace(decoder.stats)))
        except VisionGridError as exc:  # the video's errors, and the transfer's when read while decoding
            if not self._stop.is_set():
                self._put(ErrorItem(exc, dataclasses.replace(decoder.stats)))
        except Exception as exc:  # a bug or an unexpected PyAV error: fail the task, never kill silently
            logger.exception("decode thread failed")
            if not self._stop.is_set():
                error = VisionGridError(ErrorCode.INTERNAL_ERROR, f"decoding failed: {exc}")
                self._put(ErrorItem(error, dataclasses.replace(decoder.stats)))
        finally:
            decoder.close()
