"""Where a decoded frame sits: its time from PTS, its source frame index, and whether it is in range.

Kept apart from the decoder's demux/decode loop because these are pure rules (see the notes on
``frame_index`` and half-open ranges in :mod:`pipelines.decode`) that the fps, interval and keyframe
loops all apply the same way.
"""

from __future__ import annotations

from typing import Final

from av.packet import Packet
from av.video.frame import VideoFrame

from pipelines.decode_types import FrameRange

__all__ = ["DecodeFailure", "FrameIndexer", "Timeline"]


class DecodeFailure:
    """Marker for a packet the decoder rejected; carries the packet's time so range checks still apply."""

    __slots__ = ("time_s",)

    def __init__(self, time_s: float | None) -> None:
        self.time_s = time_s


class FrameIndexer:
    """Assigns source frame indices in the decode-everything modes and spots frames lost on the way.

    While every timestamp sits on the constant-frame-rate grid (within 0.2 frame of a multiple of
    ``1 / fps``, strictly increasing) the index is ``round(t * fps)``: exact for CFR video even after a seek,
    and a jump reveals frames that were lost (a truncated packet, chunks the demuxer skipped) so they can be
    counted as dropped. The first off-grid timestamp marks the stream as variable-frame-rate and from then on
    the index is a running count, which is the only honest index for VFR.
    """

    _GRID_TOLERANCE: Final[float] = 0.2

    def __init__(self, fps: float, after_seek: bool) -> None:
        self._fps = fps
        self._after_seek = after_seek
        self.on_grid = fps > 0
        self._last: int | None = None  # last index handed out
        self._last_in_range: int | None = None
        self._failed: set[int] = set()  # grid slots of in-range packets that failed, not yet covered by a gap
        self._carried_failures = 0

    def assign(self, t: float) -> int:
        if self.on_grid:
            exact = t * self._fps
            slot = round(exact)
            if abs(exact - slot) <= self._GRID_TOLERANCE and slot >= 0 and (self._last is None or slot > self._last):
                self._last = slot
                return slot
            self.on_grid = False
            self._carried_failures += len(self._failed)  # deferred failures no gap will cover now: count them
            self._failed.clear()
        if self._last is not None:
            index = self._last + 1
        elif self._after_seek and self._fps > 0:
            index = max(0, round(t * self._fps))  # the running count is unknown after a seek: estimate it
        else:
            index = 0
        self._last = index
        return index

    def failure(self, t: float | None) -> int:
        """Record an in-range packet that failed to decode; returns how many drops to count right now."""
        if self.on_grid and t is not None:
            slot = round(t * self._fps)
            if self._last_in_range is None or slot > self._last_in_range:
                self._failed.add(slot)  # counted later, by the gap it leaves or at the end
            return 0
        if self._last is not None:
            self._last += 1  # the lost frame still occupied a slot in the source
        return 1

    def missing_before(self, index: int) -> int:
        """For each in-range frame: how many grid slots since the previous in-range frame never arrived."""
        gap, self._carried_failures = self._carried_failures, 0
        if self.on_grid and self._last_in_range is not None and index > self._last_in_range + 1:
            gap += index - self._last_in_range - 1
        if self._last_in_range is None or index > self._last_in_range:
            self._last_in_range = index
        if self._failed:
            self._failed = {slot for slot in self._failed if slot > index}
        return gap

    def unaccounted_failures(self) -> int:
        """Failed packets after the last in-range frame: no later frame's gap covered them."""
        count = len(self._failed) + self._carried_failures
        self._failed.clear()
        self._carried_failures = 0
        return count


class Timeline:
    """A stream's clock (time base, start time, average rate) and the requested range on it."""

    def __init__(self, fps: float, time_base: float, start_ts: int, frame_range: FrameRange | None) -> None:
        self.fps = fps
        self.time_base = time_base
        self.start_ts = start_ts
        self.frame_range = frame_range

    def range_seconds(self) -> tuple[float | None, float | None]:
        """Range bounds in seconds (frame bounds converted through the average rate), for seeking/stopping."""
        rng = self.frame_range
        if rng is None:
            return None, None
        if rng.unit == "seconds":
            return rng.start, rng.end
        if self.fps <= 0:
            return None, None
        start = rng.start / self.fps if rng.start is not None else None
        end = rng.end / self.fps if rng.end is not None else None
        return start, end

    def before_start(self, t: float, index: int) -> bool:
        rng = self.frame_range
        if rng is None or rng.start is None:
            return False
        if rng.unit == "seconds":
            return t < rng.start - 1e-9
        return index < rng.start

    def past_end(self, t: float, index: int) -> bool:
        rng = self.frame_range
        if rng is None or rng.end is None:
            return False
        if rng.unit == "seconds":
            return t >= rng.end - 1e-9
        return index >= rng.end

    def outside(self, t: float) -> bool:
        """Range test for a failed packet, which has a time but no frame index (index derived from time)."""
        index = self.index_from_time(t)
        return self.before_start(t, index) or self.past_end(t, index)

    def ts_to_seconds(self, ts: int) -> float:
        return (ts - self.start_ts) * self.time_base

    def index_from_time(self, t: float) -> int:
        """``round(t * average_rate)``: exact for CFR, an approximation for VFR (see :mod:`pipelines.decode`)."""
        return max(0, round(t * self.fps)) if self.fps > 0 else 0

    def frame_time(self, frame: VideoFrame, previous: float | None) -> float:
        """Frame time from PTS (falling back to DTS, then to previous + one nominal frame duration)."""
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is not None and self.time_base > 0:
            return self.ts_to_seconds(ts)
        if previous is None:
            return 0.0
        return previous + (1.0 / self.fps if self.fps > 0 else 0.0)

    def packet_time(self, packet: Packet) -> float | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        return self.ts_to_seconds(ts) if ts is not None and self.time_base > 0 else None
