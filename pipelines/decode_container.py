"""Opening an input for decoding: every FFmpeg failure becomes a :class:`VideoDecodeError` with a code.

Which code matters to a client (``not_a_video`` vs ``corrupt_video``), and FFmpeg's own errors do not
tell the two apart, so a failed open sniffs the first bytes: something that *looks* like a container
but will not open is a damaged video. FFmpeg gets open/read timeouts so a stalled input cannot hang
a worker.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import BinaryIO, Final

import av
import av.error
from av.codec.hwaccel import HWAccel
from av.container import InputContainer
from av.video.stream import VideoStream

from pipelines.decode_types import VideoDecodeError, ffmpeg_reason

__all__ = ["check_duration", "estimate_total_frames", "open_container", "pick_video_stream"]

#: Open/read timeouts handed to FFmpeg's interrupt callback so a stalled input cannot hang a worker.
_OPEN_TIMEOUT_S: Final[float] = 20.0
_READ_TIMEOUT_S: Final[float] = 20.0
#: Codecs FFmpeg uses to render *text* as video (the ``tty`` demuxer picks ``.txt``/``.nfo`` by extension).
_TEXT_ART_CODECS: Final[frozenset[str]] = frozenset({"ansi", "bintext", "xbin", "idf"})


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


def open_container(source: str | Path | BinaryIO, hwaccel: str | None = None) -> InputContainer:
    """Open ``source`` for reading, turning every FFmpeg failure into :class:`VideoDecodeError`.

    A missing path is a caller bug rather than bad input, so it stays a plain ``FileNotFoundError``.
    ``hwaccel="cuda"`` decodes on NVDEC (FFmpeg's hwaccel, no software fallback inside FFmpeg): a GPU
    that cannot be opened is ``hwaccel_unavailable``, which ``pipelines.decoder_choice`` turns into a
    CPU decode of the same task.
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
    accel = HWAccel(device_type=hwaccel, allow_software_fallback=False) if hwaccel else None
    try:
        return av.open(
            target,
            mode="r",
            timeout=(_OPEN_TIMEOUT_S, _READ_TIMEOUT_S),
            metadata_errors="ignore",
            hwaccel=accel,
        )
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if accel is not None:
            reason = ffmpeg_reason(exc)
            raise VideoDecodeError("hwaccel_unavailable", f"{hwaccel} decoder could not start: {reason}") from exc
        code = "corrupt_video" if _sniff_container(_read_head(head_source)) else "not_a_video"
        what = "damaged video container" if code == "corrupt_video" else "not a recognised video file"
        raise VideoDecodeError(code, f"{what}: {ffmpeg_reason(exc)}") from exc


def pick_video_stream(container: InputContainer) -> VideoStream:
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


def estimate_total_frames(container: InputContainer, stream: VideoStream, fps: float) -> int | None:
    """Container frame count if stored, else duration × average rate (stream, then container duration)."""
    time_base = float(stream.time_base) if stream.time_base else 0.0
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if fps <= 0:
        return None
    if stream.duration and stream.duration > 0 and time_base > 0:
        return round(stream.duration * time_base * fps)
    if container.duration and container.duration > 0:
        return round(container.duration / av.time_base * fps)
    return None


def check_duration(
    container: InputContainer, total_frames: int | None, fps: float, max_duration_s: float | None
) -> None:
    """Refuse a video longer than ``max_duration_s`` (container duration, or frames / fps)."""
    if max_duration_s is None:
        return
    duration = None
    if container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    elif total_frames and fps > 0:
        duration = total_frames / fps
    if duration is not None and duration > max_duration_s:
        raise VideoDecodeError("video_too_long", f"video lasts {duration:.1f} s, limit is {max_duration_s:g} s")
