"""The decoder's vocabulary: what to sample, which slice, what comes out, and the one error type.

These are plain frozen values. Validating them is the request contract's job (``contract/``), done
once, before a plan is built, with the client's own field paths; the decoder trusts what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.errors import ErrorCode, VisionGridError

__all__ = [
    "DecodeStats",
    "DecodedFrame",
    "FinishReason",
    "FrameRange",
    "RangeUnit",
    "Sampling",
    "SamplingMode",
    "VideoDecodeError",
    "ffmpeg_reason",
]

SamplingMode = Literal["fps", "keyframe", "interval"]
RangeUnit = Literal["seconds", "frames"]
FinishReason = Literal["stop", "max_frames"]


class VideoDecodeError(VisionGridError):
    """The one error type for input that is corrupt, truncated, not a video, or too large.

    Callers map it to a task failure without having to know FFmpeg's error zoo; ``code`` is stable and
    machine-readable:

    * ``"not_a_video"`` -- no demuxer recognises the bytes, or there is no (real) video stream.
    * ``"corrupt_video"`` -- a recognised container whose data is damaged or cut off.
    * ``"unsupported_codec"`` -- the video stream uses a codec this FFmpeg build cannot decode.
    * ``"frame_too_large"`` -- width × height exceeds ``max_pixels``.
    * ``"video_too_long"`` -- the video lasts longer than ``max_duration_s``.

    ``str()`` keeps the code in front (``corrupt_video: ...``), which is what the CLI prints.
    """

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Sampling:
    """Which source frames to deliver.

    * ``fps``: ``value`` frames per second of *source* time (timestamps, not indices, so VFR works).
    * ``interval``: every ``value``-th source frame (integer ``>= 1``), counted from the range start.
    * ``keyframe``: only keyframes; non-key frames are skipped by the decoder itself. ``value`` is ignored.
    """

    mode: SamplingMode = "fps"
    value: float | None = 1.0


@dataclass(frozen=True)
class FrameRange:
    """Half-open slice of the source: ``start <= t < end`` (seconds) or ``start <= index < end`` (frames).

    Half-open so adjacent ranges never share a frame. ``None`` means "from the beginning" / "to the end".
    """

    start: float | None = None
    end: float | None = None
    unit: RangeUnit = "seconds"


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """One delivered frame. ``eq=False`` because comparing images element-wise is never what you want."""

    frame_index: int
    timestamp_ms: float
    image: np.ndarray
    is_keyframe: bool


@dataclass
class DecodeStats:
    """Live counters, updated while iterating, mirroring the contract's ``stream_info``.

    ``decoded_frames + dropped_frames`` equals the number of source frames considered so far (those inside
    the range that were reached), because the contract defines drops as decode failures plus sampling skips.
    """

    decoded_frames: int = 0
    dropped_frames: int = 0
    total_frames: int | None = None
    fps: float = 0.0
    width: int = 0
    height: int = 0
    reconnects: int = 0  # live sources: connections reopened after a drop
    lag_ms: float | None = None  # live sources: how long the frame waited between arrival and analysis


def ffmpeg_reason(exc: BaseException) -> str:
    """What FFmpeg said, without the file name it appends (a worker's path is nobody else's business)."""
    reason = getattr(exc, "strerror", None)
    return str(reason) if reason else type(exc).__name__
