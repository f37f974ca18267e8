"""A seekable, read-only file over a remote object, read while it downloads (progressive decode).

PyAV reads a video through ``read``/``seek`` on a file object, so decoding can start on the first
bytes instead of after a full download, and nothing is copied to the node's disk. Reading goes
through one open streaming response at a time: sequential reads continue it; a seek elsewhere (an
mp4 whose index sits at its end is read at the end, then from the start again) closes it and opens
a ranged one (``Range: bytes=N-``) at the new offset, so such a file costs three requests, not one
per block. The last ``back_buffer`` bytes read stay in memory for FFmpeg's short backward seeks;
memory stays bounded whatever the file size.

An origin that ignores ``Range`` (HTTP 200 to a ranged request) is read strictly sequentially (the
reader says it is not seekable, so FFmpeg reads it as a pipe); an MP4 whose index is at its end
cannot be decoded that way and is refused at once as ``media_not_streamable`` (upload it to
``storage://`` first, whose S3 ranged GETs always work).

Limits hold while streaming: a body past ``max_bytes`` is ``media_too_large``; ``abort()`` (a cancel)
closes the transfer at once, from any thread, and every later read fails.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from contract.errors import ErrorCode
from store.media_fetch import MediaError

__all__ = ["Opened", "ProgressiveReader", "StreamAbortedError", "mp4_index_at_end"]

_BACK_BUFFER: Final[int] = 4 * 1024 * 1024
_HEAD_BYTES: Final[int] = 64 * 1024


def mp4_index_at_end(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) is an MP4/MOV whose ``mdat`` comes before its ``moov``:
    such a file needs its end before its first frame, which only a seekable source can give."""
    if head[4:8] != b"ftyp":
        return False
    offset = 0
    while offset + 8 <= len(head):
        size = int.from_bytes(head[offset : offset + 4], "big")
        kind = head[offset + 4 : offset + 8]
        if kind == b"moov":
            return False
        if kind == b"mdat":
            return True
        if size == 1 and offset + 16 <= len(head):
            size = int.from_bytes(head[offset + 8 : offset + 16], "big")
        if size < 8:
            return False  # 0 (to the end) or damaged: leave it to the decoder
        offset += size
    return False


class StreamAbortedError(OSError):
    """The transfer was aborted (the task was cancelled or stopped)."""


@dataclass
class Opened:
    """One response body from ``offset`` on, as the opener made it."""

    chunks: Iterator[bytes]
    close: Callable[[], None]
    offset: int  # where the body starts (0 from an origin that ignored Range)
    size: int | None  # the whole object's size when known
    ranged: bool  # the origin honours Range: later seeks can open at any offset


#: Opens the object's body from a byte offset (``Range: bytes=offset-``, or an S3 ranged GET).
Opener = Callable[[int], Opened]


class ProgressiveReader(io.RawIOBase):
    """``read``/``seek``/``tell`` over :data:`Opener` responses, with a bounded back-buffer."""

    def __init__(
        self,
        opener: Opener,
        *,
        max_bytes: int,
        field: str | None = None,
        back_buffer: int = _BACK_BUFFER,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._opener = opener
        self._on_close = on_close
        self.max_bytes = max_bytes
        self.field = field
        self._back_limit = back_buffer
        self._lock = threading.Lock()  # abort() may come from another thread than the reader's
        self._aborted = False
        self.requests = 0
        self.bytes_transferred = 0  # every body byte received, re-reads included
        self._current: Opened | None = None
        # bytes received from the open stream: offsets [_buf_start, _buf_start + len(_buf)); the
        # stream's next byte follows them. Bytes more than back_buffer behind the read position go.
        self._buf = bytearray()
        self._buf_start = 0
        self._pos = 0
        first = self._open(0)
        self.size = first.size
        self.ranged = first.ranged
        if self.size is not None and self.size > max_bytes:
            self.close()
            raise self._too_large()
        if not self.ranged and mp4_index_at_end(self._peek(_HEAD_BYTES)):
            self.close()
            raise MediaError(
                ErrorCode.MEDIA_NOT_STREAMABLE,
                "the media server ignores range requests and this MP4's index is at its end, so it cannot be "
                "read front to back: upload it to storage:// first (or serve it with range support)",
                field,
            )

    # ------------------------------------------------------------------ io.RawIOBase

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        """Only over ranges: told so, FFmpeg reads a non-ranged origin front to back (an AVI's index at
        its end is then skipped, as for a pipe) instead of seeking to the end and back."""
        return self.ranged

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            if self.size is None:
                raise OSError("the size of this stream is unknown: cannot seek from its end")
            target = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if target < 0:
            raise OSError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self._aborted:
            raise StreamAbortedError("the transfer was aborted")
        if size is None or size < 0:
            size = (self.size - self._pos) if self.size is not None else self.max_bytes
        if size == 0 or (self.size is not None and self._pos >= self.size):
            return b""
        if not self._buf_start <= self._pos < self._buf_end() and not self._fill_to(self._pos):
            return b""  # the end of the stream
        offset = self._pos - self._buf_start
        data = bytes(self._buf[offset : offset + size])
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._close_stream()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        super().close()

    # ------------------------------------------------------------------ the transfer

    def abort(self) -> None:
        """Stop the transfer now (safe from any thread); reads fail from here on."""
        self._aborted = True
        self._close_stream()

    def _buf_end(self) -> int:
        return self._buf_start + len(self._buf)

    def _open(self, offset: int) -> Opened:
        self._close_stream()
        if self._aborted:
            raise StreamAbortedError("the transfer was aborted")
        opened = self._opener(offset)
        self.requests += 1
        with self._lock:
            self._current = opened
        self._buf = bytearray()
        self._buf_start = opened.offset
        return opened

    def _close_stream(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            current.close()

    def _peek(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer for a shorter body), left in the buffer for the reads to come."""
        self._fill_to(min(size, self.size or size) - 1)
        return bytes(self._buf[:size]) if self._buf_start == 0 else b""

    def _fill_to(self, position: int) -> bool:
        """Receive until ``position`` is in the buffer (reopening at it when that is cheaper); False at the end."""
        if position < self._buf_start or (self.ranged and position > self._buf_end() + self._back_limit):
            if not self.ranged:  # not seekable() then: FFmpeg reads such a stream front to back
                raise OSError(f"cannot seek back to {position} on a stream without range support")
            self._open(position)
        if self._current is None:
            self._open(self._buf_end())
        while position >= self._buf_end():  # read forward (a short forward seek reads and discards)
            chunk = self._next_chunk()
            if not chunk:
                return False
            self._buf += chunk
            keep_from = max(self._buf_start, min(position, self._buf_end()) - self._back_limit)
            if keep_from > self._buf_start:
                del self._buf[: keep_from - self._buf_start]
                self._buf_start = keep_from
        return True

    def _next_chunk(self) -> bytes:
        current = self._current
        if current is None:
            raise StreamAbortedError("the transfer was aborted")
        try:
            chunk = next(current.chunks, b"")
        except Exception as exc:
            if self._aborted:
                raise StreamAbortedError("the transfer was aborted") from exc
            raise
        self.bytes_transferred += len(chunk)
        if self._buf_end() + len(chunk) > self.max_bytes:
            raise self._too_large()
        return chunk

    def _too_large(self) -> MediaError:
        return MediaError(ErrorCode.MEDIA_TOO_LARGE, f"the media is larger than {self.max_bytes} bytes", self.field)
