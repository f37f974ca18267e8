"""Decoding a task's video in its own thread, into a bounded queue the task's frame loop reads.

PyAV blocks and releases the GIL while decoding, so a thread decodes while the event loop serves the
model calls of this and other tasks. The thread waits on each ``put`` until there is room, so a slow
detector throttles decoding instead of letting decoded frames pile up: a task holds at most
``frame_queue_size`` + ``detector_inflight`` frames whatever the video's length. The thread checks a
``threading.Event`` per frame (and while waiting for room), so it stops within one frame of the runner
deciding to stop, and it is always joined: no task leaves a thread behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Final

from contract.errors import ErrorCode, VisionGridError
from pipelines.decode import DecodedFrame, DecodeStats, VideoDecoder

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
        self, decoder: VideoDecoder, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[QueueItem], name: str
    ) -> None:
        self._decoder = decoder
        self._loop = loop
        self._queue = queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    async def join(self) -> None:
        """Stop and wait for the thread (off the loop: it may be mid-frame). Closes an unstarted decoder."""
        self._stop.set()
        if self._started:
            await asyncio.to_thread(self._thread.join)
        else:
            self._decoder.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _put(self, item: QueueItem) -> bool:
        """Blocking put that gives up when stopped; False means "stop producing"."""
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
