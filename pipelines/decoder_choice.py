"""Which decoder a task's video gets: NVDEC (the GPU's hardware decoder) or PyAV on CPU, per task.

NVDEC is reached through the same PyAV/FFmpeg code as the CPU path (FFmpeg's ``cuda`` hwaccel, in
PyAV's wheels), so sampling, ranges, variable frame rates, damaged packets and limits behave exactly as
on CPU (``pipelines/decode.py``); only the bitstream decoding moves to the GPU. It serves H.264 and
HEVC. Anything else — another codec, no GPU visible, a hwaccel that cannot start — falls back to CPU
decoding for that task, and the task's ``usage`` says which decoder ran and why (``decoder``,
``decoder_note``).

Not measured yet: no GPU machine has run this (see the README's "Compute backend"). Decoded frames
are copied back to host memory by FFmpeg; DALI-style frames that stay on the device into the
preprocessing kernels (``kernels/torch_ops.py``) are the next step there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import av
import av.error

from models.runtime.backend import gpu_visible
from pipelines.decode import VideoDecoder
from pipelines.decode_types import VideoDecodeError

__all__ = ["NVDEC_CODECS", "DecoderChoice", "DecoderPreference", "choose_decoder", "open_video_decoder"]

logger = logging.getLogger("visiongrid.decode")

DecoderPreference = Literal["auto", "pyav", "nvdec"]

#: Codecs NVDEC decodes that FFmpeg's cuda hwaccel exposes and VisionGrid sends there.
NVDEC_CODECS: Final[frozenset[str]] = frozenset({"h264", "hevc"})


@dataclass(frozen=True)
class DecoderChoice:
    name: Literal["pyav", "nvdec"]
    note: str | None = None  # why the CPU decoder serves where the GPU one was possible or asked for

    def as_usage(self) -> dict[str, str]:
        return {"decoder": self.name, **({"decoder_note": self.note} if self.note else {})}


def choose_decoder(preference: DecoderPreference, *, codec: str, gpu: bool) -> DecoderChoice:
    """The decoder for a stream of ``codec`` on a machine with (or without) a visible GPU."""
    if preference == "pyav":
        return DecoderChoice("pyav")
    if not gpu:
        return DecoderChoice("pyav", "no GPU visible: CPU decode" if preference == "nvdec" else None)
    if codec not in NVDEC_CODECS:
        return DecoderChoice("pyav", f"codec {codec}: NVDEC serves H.264 and HEVC, decoded on CPU")
    return DecoderChoice("nvdec")


def _codec_of(source: Path | BinaryIO) -> str:
    target: str | BinaryIO = str(source) if isinstance(source, Path) else source
    try:
        with av.open(target, metadata_errors="ignore") as container:
            stream = next((s for s in container.streams.video), None)
            return stream.codec_context.name if stream is not None and stream.codec_context is not None else ""
    except (av.error.FFmpegError, UnicodeDecodeError):
        return ""  # the decoder itself will say what is wrong, with its own error code
    finally:
        if not isinstance(source, Path):
            source.seek(0)  # a stream read while it downloads: the decoder starts from the top again


def open_video_decoder(
    source: Path | BinaryIO, preference: DecoderPreference, *, gpu: bool | None = None, **options: Any
) -> tuple[VideoDecoder, DecoderChoice]:
    """A :class:`VideoDecoder` on NVDEC where it applies and starts, else on CPU, with the choice made.

    ``options`` are the decoder's (sampling, range, limits). Input errors (not a video, too large)
    raise :class:`VideoDecodeError` whichever decoder was tried.
    """
    has_gpu = gpu_visible() if gpu is None else gpu
    choice = choose_decoder(preference, codec=_codec_of(source) if has_gpu else "", gpu=has_gpu)
    if choice.name == "nvdec":
        try:
            return VideoDecoder(source, hwaccel="cuda", **options), choice
        except VideoDecodeError as exc:
            if exc.code != "hwaccel_unavailable":
                raise
            logger.warning("NVDEC could not start, decoding on CPU: %s", exc.message)
            choice = DecoderChoice("pyav", f"NVDEC unavailable ({exc.message}): CPU decode")
            if not isinstance(source, Path):
                source.seek(0)
    return VideoDecoder(source, **options), choice
