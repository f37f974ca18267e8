"""Streaming video decoder implementing the VisoWork video contract's sampling, range and limits.

The worker feeds every sampled frame to the model steps and reports ``stream_info`` per frame
(``frame_index``, ``total_frames``, ``decoded_frames``, ``dropped_frames``, ``fps``), so this module
exposes exactly those numbers on :class:`DecodeStats` while iterating.

Design notes (the *why* behind the behaviour):

* **Streaming.** :class:`VideoDecoder` demuxes packet by packet and yields frames as they come out of the
  decoder; it never holds more than the decoder's own reorder buffer, so a two-hour video costs the same
  memory as a two-second one.
* **Colour conversion only for sampled frames.** Decoding 640×480 H.264 runs at ≈3,000 fps but RGB
  conversion caps it near 1,000 fps, so frames that sampling skips are never converted.
* **Timestamps come from PTS** (``pts * time_base`` relative to the stream's ``start_time``), because
  variable-frame-rate sources are real and an index divided by a nominal rate would lie.
* **frame_index** is the frame's position in the source, in presentation order. In the decode-everything
  modes (``fps``, ``interval``), while timestamps sit on the constant-frame-rate grid of the average rate
  it is ``round(t * average_rate)`` -- exact for CFR video, right after a seek, and across frames lost to
  damage (which are then counted as dropped); at the first off-grid timestamp the stream is treated as
  variable-frame-rate and the index becomes a running count of decoded frames. In ``keyframe`` mode the
  non-key frames are never decoded, so the index is always ``round(t * average_rate)``: exact for CFR,
  an approximation for VFR.
* **Ranges are half-open**: a frame is in range when ``start <= t < end`` (seconds) or
  ``start <= frame_index < end`` (frames). Half-open ranges tile without overlap, so ``[0, 10)`` and
  ``[10, 20)`` split a clip cleanly.
* **Seek policy.** A range start more than :data:`SEEK_THRESHOLD_S` seconds into the video is reached by
  seeking backward to the nearest keyframe (with a safety margin) and decoding forward, discarding frames
  before the start. Between samples we never seek: measured seeking to every 5-fps sample was ~6× slower
  than decoding straight through, and only pays off when samples are at least a keyframe interval apart,
  which the caller's sampling rarely is; decoding straight through is never pathological.
* **Errors.** Everything that is wrong with the *input* surfaces as one typed :class:`VideoDecodeError`
  with a ``code``; no raw ``av`` exception escapes. An individual packet the decoder rejects (or a frame
  it flags as corrupt) is a *decode failure*: it is counted in ``dropped_frames`` (as the contract
  defines) and decoding continues, because one damaged frame should not fail a long video. Too many
  consecutive failures, a stream that yields no intact frame at all, or a demuxer error raise
  ``corrupt_video``. A truncated file whose demuxer simply hits end-of-file ends normally after the frames
  that survived. FFmpeg gets open/read timeouts so a stalled input cannot hang a worker.
* **Threading** stays at the codec default (slice threads): frame threading measured slower on the
  2-core worker shape and adds latency, and workers already run several decoders in parallel.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Literal

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

__all__ = [
    "SEEK_THRESHOLD_S",
    "DecodeStats",
    "DecodedFrame",
    "FrameRange",
    "Sampling",
    "SamplingMode",
    "VideoDecodeError",
    "VideoDecoder",
]

SamplingMode = Literal["fps", "keyframe", "interval"]
RangeUnit = Literal["seconds", "frames"]
FinishReason = Literal["stop", "max_frames"]

#: Range starts further in than this are reached by seeking; closer ones are cheaper to decode through
#: (a couple of seconds is about one typical keyframe interval).
SEEK_THRESHOLD_S: Final[float] = 2.0
#: Seek this much before the range start: containers seek by DTS, and a keyframe whose DTS is just before
#: the target can have a PTS just after it, which would silently lose the first in-range frames.
_SEEK_MARGIN_S: Final[float] = 1.0
#: Open/read timeouts handed to FFmpeg's interrupt callback so a stalled input cannot hang a worker.
_OPEN_TIMEOUT_S: Final[float] = 20.0
_READ_TIMEOUT_S: Final[float] = 20.0
#: This many decode failures in a row means the stream is garbage, not a damaged frame or two.
_MAX_CONSECUTIVE_DECODE_FAILURES: Final[int] = 50
#: Codecs FFmpeg uses to render *text* as video (the ``tty`` demuxer picks ``.txt``/``.nfo`` by extension).
_TEXT_ART_CODECS: Final[frozenset[str]] = frozenset({"ansi", "bintext", "xbin", "idf"})
_MODES: Final[tuple[str, ...]] = ("fps", "keyframe", "interval")
_UNITS: Final[tuple[str, ...]] = ("seconds", "frames")


class VideoDecodeError(Exception):
    """The one error type for input that is corrupt, truncated, not a video, or too large.

    Callers map it to a task failure without having to know FFmpeg's error zoo; ``code`` is stable and
    machine-readable:

    * ``"not_a_video"`` -- no demuxer recognises the bytes, or there is no (real) video stream.
    * ``"corrupt_video"`` -- a recognised container whose data is damaged or cut off.
    * ``"unsupported_codec"`` -- the video stream uses a codec this FFmpeg build cannot decode.
    * ``"frame_too_large"`` -- width × height exceeds ``max_pixels``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _is_number(value: object) -> bool:
    """True for real numbers but not ``bool`` (``True`` as a frame rate is a bug, not 1 fps)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Sampling:
    """Which source frames to deliver.

    * ``fps``: ``value`` frames per second of *source* time (timestamps, not indices, so VFR works).
    * ``interval``: every ``value``-th source frame (integer ``>= 1``), counted from the range start.
    * ``keyframe``: only keyframes; non-key frames are skipped by the decoder itself. ``value`` is ignored.

    Validated eagerly so a bad request fails at parse time with the offending field named.
    """

    mode: SamplingMode = "fps"
    value: float | None = 1.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"sampling.mode must be one of {_MODES}, got {self.mode!r}")
        if self.mode == "keyframe":
            return
        value = self.value
        if value is None or not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"sampling.value must be a finite number for mode {self.mode!r}, got {value!r}")
        if self.mode == "fps" and value <= 0:
            raise ValueError(f"sampling.value (frames per second) must be > 0, got {value!r}")
        if self.mode == "interval" and (value < 1 or float(value) != int(value)):
            raise ValueError(f"sampling.value (frame interval) must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class FrameRange:
    """Half-open slice of the source: ``start <= t < end`` (seconds) or ``start <= index < end`` (frames).

    Half-open so adjacent ranges never share a frame. ``None`` means "from the beginning" / "to the end".
    """

    start: float | None = None
    end: float | None = None
    unit: RangeUnit = "seconds"

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ValueError(f"range.unit must be one of {_UNITS}, got {self.unit!r}")
        for name in ("start", "end"):
            bound = getattr(self, name)
            if bound is None:
                continue
            if not _is_number(bound) or not math.isfinite(bound) or bound < 0:
                raise ValueError(f"range.{name} must be a finite number >= 0, got {bound!r}")
            if self.unit == "frames" and float(bound) != int(bound):
                raise ValueError(f"range.{name} must be an integer when unit is 'frames', got {bound!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"range.end ({self.end!r}) must be greater than range.start ({self.start!r})")


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


def _sniff_container(head: bytes) -> bool:
    """True when ``head`` starts like a known video container.

    Used only to choose the error code when FFmpeg cannot open the input: a file that *looks* like an
    MP4/AVI/MKV but fails to open is a damaged (e.g. truncated, ``moov`` atom lost) video, not random bytes.
    """
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return True
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX"):
        return True
    return head.startswith(
        (
            b"\x1a\x45\xdf\xa3",  # EBML: Matroska / WebM
            b"FLV",
            b"OggS",
            b"\x00\x00\x01\xba",  # MPEG program stream
            b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF / WMV
        )
    ) or (len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47)  # MPEG transport stream


def _read_head(source: Path | BinaryIO) -> bytes:
    """First bytes of the input for :func:`_sniff_container`; leaves a file object where it was."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return fh.read(192)
    try:
        pos = source.tell()
        head = source.read(192)
        source.seek(pos)
    except (OSError, AttributeError, ValueError):
        return b""  # not seekable: we simply lose the finer error code
    return bytes(head) if head else b""


def _open_container(source: str | Path | BinaryIO) -> InputContainer:
    """Open ``source`` for reading, turning every FFmpeg failure into :class:`VideoDecodeError`.

    A missing path is a caller bug rather than bad input, so it stays a plain ``FileNotFoundError``.
    """
    target: str | BinaryIO
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "video file not found", str(path))
        head_source: Path | BinaryIO = path
        target = str(path)
    else:
        head_source = source
        target = source
    try:
        return av.open(
            target,
            mode="r",
            timeout=(_OPEN_TIMEOUT_S, _READ_TIMEOUT_S),
            metadata_errors="ignore",
        )
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        code = "corrupt_video" if _sniff_container(_read_head(head_source)) else "not_a_video"
        what = "damaged video container" if code == "corrupt_video" else "not a recognised video file"
        raise VideoDecodeError(code, f"{what}: {exc}") from exc


def _pick_video_stream(container: InputContainer) -> VideoStream:
    """First real video stream: cover-art pictures and text rendered as video do not count."""
    attached_pic = av.stream.Disposition.attached_pic
    for stream in container.streams.video:
        if stream.disposition & attached_pic:
            continue
        if stream.codec_context is None:
            raise VideoDecodeError("unsupported_codec", "no decoder available for the video stream")
        if stream.codec_context.name in _TEXT_ART_CODECS:
            raise VideoDecodeError("not_a_video", f"text rendered as video ({stream.codec_context.name})")
        return stream
    raise VideoDecodeError("not_a_video", f"no video stream in {container.format.name!r} input")


class _DecodeFailure:
    """Marker for a packet the decoder rejected; carries the packet's time so range checks still apply."""

    __slots__ = ("time_s",)

    def __init__(self, time_s: float | None) -> None:
        self.time_s = time_s


class _FrameIndexer:
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


class VideoDecoder:
    """Decode a video file or file object into sampled RGB frames, streaming.

    ``source`` is a local path (``str``/``Path``; URLs are the fetcher's job, not this module's) or a binary
    file object such as ``BytesIO``. Opening problems (not a video, no video stream, damaged header, too many
    pixels) raise :class:`VideoDecodeError` from ``__init__`` so a worker can reject a task before it starts
    streaming.
    Iterate once; ``stats`` is live during iteration and ``finish_reason`` is set when iteration ends
    normally (it stays ``None`` if iteration raised or was abandoned).
    """

    def __init__(
        self,
        source: str | Path | BinaryIO,
        *,
        sampling: Sampling = Sampling(),  # frozen dataclass, so a shared default is safe
        frame_range: FrameRange | None = None,
        max_frames: int | None = None,
        max_pixels: int | None = None,
        max_duration_s: float | None = None,
    ) -> None:
        self.max_duration_s = max_duration_s
        if max_frames is not None and (not isinstance(max_frames, int) or isinstance(max_frames, bool)):
            raise ValueError(f"max_frames must be an int or None, got {max_frames!r}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames!r}")
        if max_pixels is not None and (not _is_number(max_pixels) or max_pixels < 1):
            raise ValueError(f"max_pixels must be a number >= 1, got {max_pixels!r}")
        self.sampling = sampling
        self.frame_range = frame_range
        self.max_frames = max_frames
        self.max_pixels = max_pixels
        self.stats = DecodeStats()
        self.finish_reason: FinishReason | None = None
        self._iterated = False
        self._closed = False
        self._seeked = False  # set by _packets(): after a seek the running frame count is unknown
        self._good_frames = 0  # intact frames out of the decoder (any range), to tell "corrupt" from "empty"
        self._failures = 0  # packets the decoder rejected plus frames it flagged corrupt
        self._pending_keys = 0  # keyframe mode: in-range keyframe packets whose frame has not come out yet
        self._container = _open_container(source)
        try:
            self._stream = _pick_video_stream(self._container)
            self._init_stream_facts()
        except BaseException:
            self._container.close()
            self._closed = True
            raise

    # ------------------------------------------------------------------ setup

    def _init_stream_facts(self) -> None:
        """Fill static stats and refuse oversize video before a single frame is decoded."""
        stream = self._stream
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else 0.0
        self._tb = float(stream.time_base) if stream.time_base else 0.0
        self._t0 = stream.start_time or 0
        self.stats.fps = self._fps
        self.stats.width = int(ctx.width or 0)
        self.stats.height = int(ctx.height or 0)
        self.stats.total_frames = self._estimate_total_frames()
        self._check_pixels(self.stats.width, self.stats.height)
        self._check_duration()

    def _estimate_total_frames(self) -> int | None:
        """Container frame count if stored, else duration × average rate (stream, then container duration)."""
        stream = self._stream
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        if self._fps <= 0:
            return None
        if stream.duration and stream.duration > 0 and self._tb > 0:
            return round(stream.duration * self._tb * self._fps)
        if self._container.duration and self._container.duration > 0:
            return round(self._container.duration / av.time_base * self._fps)
        return None

    def _check_duration(self) -> None:
        """Refuse a video longer than ``max_duration_s`` (container duration, or frames / fps)."""
        if self.max_duration_s is None:
            return
        duration = None
        if self._container.duration and self._container.duration > 0:
            duration = self._container.duration / av.time_base
        elif self.stats.total_frames and self._fps > 0:
            duration = self.stats.total_frames / self._fps
        if duration is not None and duration > self.max_duration_s:
            raise VideoDecodeError(
                "video_too_long", f"video lasts {duration:.1f} s, limit is {self.max_duration_s:g} s"
            )

    def _check_pixels(self, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise VideoDecodeError(
                "frame_too_large", f"frame is {width}x{height} = {width * height} pixels, limit is {self.max_pixels}"
            )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the container (file handle, decoder threads). Idempotent."""
        if not self._closed:
            self._closed = True
            self._container.close()

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ range / time helpers

    def _range_seconds(self) -> tuple[float | None, float | None]:
        """Range bounds in seconds (frame bounds converted through the average rate), for seeking/stopping."""
        rng = self.frame_range
        if rng is None:
            return None, None
        if rng.unit == "seconds":
            return rng.start, rng.end
        if self._fps <= 0:
            return None, None
        start = rng.start / self._fps if rng.start is not None else None
        end = rng.end / self._fps if rng.end is not None else None
        return start, end

    def _before_start(self, t: float, index: int) -> bool:
        rng = self.frame_range
        if rng is None or rng.start is None:
            return False
        if rng.unit == "seconds":
            return t < rng.start - 1e-9
        return index < rng.start

    def _past_end(self, t: float, index: int) -> bool:
        rng = self.frame_range
        if rng is None or rng.end is None:
            return False
        if rng.unit == "seconds":
            return t >= rng.end - 1e-9
        return index >= rng.end

    def _ts_to_seconds(self, ts: int) -> float:
        return (ts - self._t0) * self._tb

    def _index_from_time(self, t: float) -> int:
        """``round(t * average_rate)``: exact for CFR, an approximation for VFR (see module docstring)."""
        return max(0, round(t * self._fps)) if self._fps > 0 else 0

    def _frame_time(self, frame: VideoFrame, previous: float | None) -> float:
        """Frame time from PTS (falling back to DTS, then to previous + one nominal frame duration)."""
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is not None and self._tb > 0:
            return self._ts_to_seconds(ts)
        if previous is None:
            return 0.0
        return previous + (1.0 / self._fps if self._fps > 0 else 0.0)

    def _packet_time(self, packet: Packet) -> float | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        return self._ts_to_seconds(ts) if ts is not None and self._tb > 0 else None

    # ------------------------------------------------------------------ demux / seek

    def _seek(self, seconds: float) -> None:
        target_s = max(0.0, seconds)
        offset = self._t0 + int(target_s / self._tb)
        self._container.seek(offset, backward=True, any_frame=False, stream=self._stream)
        self._stream.codec_context.flush_buffers()

    def _packets(self) -> Iterator[Packet]:
        """Video packets from the range start on (seeking when worthwhile), ending with the flush packet.

        Sets ``self._seeked`` when a seek happened, because the running frame count is then unknown.
        """
        self._seeked = False
        start_s, _ = self._range_seconds()
        if start_s is None or start_s <= SEEK_THRESHOLD_S or self._tb <= 0:
            yield from self._container.demux(self._stream)
            return
        try:
            self._seek(start_s - _SEEK_MARGIN_S)
        except av.error.FFmpegError:
            yield from self._container.demux(self._stream)  # unseekable input: decode through instead
            return
        packets = self._container.demux(self._stream)
        first = next(packets, None)
        first_t = self._packet_time(first) if first is not None else None
        if first_t is not None and first_t > start_s + 1e-6:
            # The seek overshot the range start (odd index / huge reorder delay): frames would be lost.
            # Correctness beats speed here, so start over from the beginning with exact counting.
            del packets
            self._seek(0.0)
            yield from self._container.demux(self._stream)
            return
        self._seeked = True
        if first is not None:
            yield first
        yield from packets

    def _decode_packets(self, packets: Iterator[Packet]) -> Iterator[VideoFrame | _DecodeFailure]:
        """Decode each packet; a rejected packet becomes a :class:`_DecodeFailure` instead of an exception."""
        ctx = self._stream.codec_context
        consecutive = 0
        for packet in packets:
            try:
                frames = ctx.decode(packet)
            except av.error.EOFError:
                continue
            except (av.error.InvalidDataError, av.error.UndefinedError, av.error.BugError) as exc:
                consecutive += 1
                if consecutive >= _MAX_CONSECUTIVE_DECODE_FAILURES:
                    raise VideoDecodeError(
                        "corrupt_video", f"{consecutive} consecutive packets failed to decode: {exc}"
                    ) from exc
                yield _DecodeFailure(self._packet_time(packet))
                continue
            consecutive = 0
            yield from frames

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[DecodedFrame]:
        """Yield sampled frames in presentation order. Single use: the container is read once."""
        if self._closed:
            raise RuntimeError("VideoDecoder is closed")
        if self._iterated:
            raise RuntimeError("VideoDecoder can only be iterated once")
        self._iterated = True
        try:
            if self.sampling.mode == "keyframe":
                yield from self._iter_keyframes()
            else:
                yield from self._iter_all()
        except av.error.FFmpegError as exc:
            raise VideoDecodeError("corrupt_video", f"decoding failed: {exc}") from exc
        if self._good_frames == 0 and not self._seeked:
            # Decoding from the beginning, a real video always yields at least one frame, so "nothing at all"
            # means a damaged index or damaged data. (After a seek, nothing can simply mean "range past the end".)
            raise VideoDecodeError(
                "corrupt_video", f"no intact frame could be decoded ({self._failures} decode failures)"
            )
        if self.finish_reason is None:
            self.finish_reason = "stop"

    def _count_frame(self, frame: VideoFrame) -> None:
        if frame.is_corrupt:
            self._failures += 1
        else:
            self._good_frames += 1

    def _to_decoded(self, frame: VideoFrame, index: int, t: float) -> DecodedFrame:
        """Colour-convert a *sampled* frame; done here and only here because conversion dominates cost."""
        self._check_pixels(frame.width, frame.height)
        if not self.stats.width:
            self.stats.width, self.stats.height = frame.width, frame.height
        image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
        return DecodedFrame(frame_index=index, timestamp_ms=t * 1000.0, image=image, is_keyframe=bool(frame.key_frame))

    def _deliver(self, decoded: DecodedFrame) -> bool:
        """Count a delivered frame; True when ``max_frames`` is reached and iteration must stop."""
        self.stats.decoded_frames += 1
        if self.max_frames is not None and self.stats.decoded_frames >= self.max_frames:
            self.finish_reason = "max_frames"
            return True
        return False

    def _iter_all(self) -> Iterator[DecodedFrame]:
        """``fps`` / ``interval`` modes: decode every frame, convert only the sampled ones."""
        mode = self.sampling.mode
        value = float(self.sampling.value or 1.0)
        interval = int(value)
        eps = min(1e-3, 0.25 / value)  # timestamps are rounded to the time base; don't miss a sample by 1 tick
        indexer: _FrameIndexer | None = None
        previous_t: float | None = None
        origin_t: float | None = None
        origin_index = 0
        next_sample_t = 0.0
        rng = self.frame_range
        for item in self._decode_packets(self._packets()):
            if indexer is None:  # created lazily: whether _packets() seeked is only known once it has run
                indexer = _FrameIndexer(self._fps, self._seeked)
            if isinstance(item, _DecodeFailure):
                self._failures += 1
                if item.time_s is None or not self._packet_outside_range(item.time_s):
                    self.stats.dropped_frames += indexer.failure(item.time_s)
                continue
            frame = item
            self._count_frame(frame)
            t = self._frame_time(frame, previous_t)
            previous_t = t
            index = indexer.assign(t)
            if self._before_start(t, index):
                continue
            if self._past_end(t, index):
                break
            self.stats.dropped_frames += indexer.missing_before(index)
            if origin_t is None:
                # fps samples sit at k / value seconds from the range start (seconds ranges), else from the
                # first in-range frame.
                origin_t = float(rng.start) if rng is not None and rng.unit == "seconds" and rng.start else t
                origin_index = index
                next_sample_t = origin_t
            if frame.is_corrupt:
                self.stats.dropped_frames += 1
                continue
            sampled = t + eps >= next_sample_t if mode == "fps" else (index - origin_index) % interval == 0
            if not sampled:
                self.stats.dropped_frames += 1
                continue
            decoded = self._to_decoded(frame, index, t)
            if mode == "fps":
                next_sample_t = origin_t + (math.floor((t + eps - origin_t) * value) + 1) / value
            stop = self._deliver(decoded)
            yield decoded
            if stop:
                return
        if indexer is not None:
            self.stats.dropped_frames += indexer.unaccounted_failures()

    def _packet_outside_range(self, t: float) -> bool:
        """Range test for a failed packet, which has a time but no frame index (index derived from time)."""
        index = self._index_from_time(t)
        return self._before_start(t, index) or self._past_end(t, index)

    def _iter_keyframes(self) -> Iterator[DecodedFrame]:
        """``keyframe`` mode: the decoder discards non-key packets unparsed (``skip_frame = NONKEY``).

        Skips are counted at the packet level (demuxing is cheap): every in-range non-key packet is one
        dropped frame; a keyframe packet that never produces a frame is a decode failure, also dropped.
        """
        self._stream.codec_context.skip_frame = "NONKEY"
        _, end_s = self._range_seconds()
        self._pending_keys = 0
        previous_t: float | None = None
        for item in self._decode_packets(self._count_keyframe_packets(self._packets(), end_s)):
            if isinstance(item, _DecodeFailure):
                self._failures += 1
                continue  # accounted for through _pending_keys
            frame = item
            self._count_frame(frame)
            t = self._frame_time(frame, previous_t)
            previous_t = t
            index = self._index_from_time(t)
            if self._before_start(t, index):
                continue
            if self._past_end(t, index):
                break
            self._pending_keys = max(0, self._pending_keys - 1)
            if frame.is_corrupt:
                self.stats.dropped_frames += 1
                continue
            decoded = self._to_decoded(frame, index, t)
            stop = self._deliver(decoded)
            yield decoded
            if stop:
                return
        # Keyframe packets in range that never produced a frame failed to decode.
        self.stats.dropped_frames += self._pending_keys
        self._pending_keys = 0

    def _count_keyframe_packets(self, packets: Iterator[Packet], end_s: float | None) -> Iterator[Packet]:
        """Pass packets through while counting in-range skips; stop demuxing once DTS passes the range end.

        DTS never decreases and PTS >= DTS, so once a packet's DTS is past the end no later packet can be in
        range -- the rest of the file is not read. The decoder is then flushed for frames still buffered.
        """
        for packet in packets:
            if packet.size == 0:
                yield packet  # flush packet at end of stream
                continue
            if end_s is not None and packet.dts is not None and self._ts_to_seconds(packet.dts) >= end_s - 1e-9:
                yield Packet()  # empty packet = flush, so buffered in-range keyframes still come out
                return
            t = self._packet_time(packet)
            if t is None or not self._packet_outside_range(t):
                if packet.is_keyframe:
                    self._pending_keys += 1
                else:
                    self.stats.dropped_frames += 1
            yield packet
