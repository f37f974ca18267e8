"""A task's video as a :class:`~store.progressive.ProgressiveReader`: decoded while it downloads.

Two openers feed the reader. HTTP(S) URLs (presigned S3 URLs included) get ``Range: bytes=N-`` GETs
through the same client and redirect walk as downloads (``media_fetch.get_following_redirects``:
every hop SSRF-checked and pinned), the final URL remembered for later ranges. ``storage://``
objects of the task's project get S3 ranged GETs through boto3. Nothing lands on the node's disk.
An origin without range support serving an MP4 whose index is at its end is copied (streamed) to
the project's object storage first and read from there: the first frame then waits for that copy,
but the task works.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

import httpx

from contract.errors import ErrorCode
from store.media_fetch import MediaError, get_following_redirects, media_client
from store.objects import ObjectNotFound, ObjectStore, storage_url
from store.paths import StoragePathError, normalise_path
from store.progressive import Opened, ProgressiveReader

if TYPE_CHECKING:
    from visiongrid.settings import Settings

__all__ = ["HttpOpener", "StorageOpener", "open_video_stream"]

#: Body chunk size: small enough that the decoder sees the first frames after the first few KiB.
CHUNK_BYTES: Final[int] = 64 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _closer(response: httpx.Response) -> Callable[[], None]:
    """Close ``response`` so that a read blocked on its socket in another thread returns at once: the
    socket is shut down first (closing alone leaves a waiting ``recv`` asleep until data comes)."""

    def close() -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            response.close()

    return close


class HttpOpener:
    """Opens ``url`` from a byte offset; one pooled client, every request pinned and checked."""

    def __init__(self, url: str, settings: Settings, field: str) -> None:
        self.url = url
        self.settings = settings
        self.field = field
        self._client = media_client(settings)

    def __call__(self, offset: int) -> Opened:
        try:
            return self._open(offset)
        except httpx.TimeoutException as exc:
            message = f"timed out fetching the media ({type(exc).__name__})"
            raise MediaError(ErrorCode.MEDIA_UNREACHABLE, message, self.field) from None
        except httpx.HTTPError as exc:
            message = f"cannot fetch the media ({type(exc).__name__}: {exc})"
            raise MediaError(ErrorCode.MEDIA_UNREACHABLE, message, self.field) from None

    def _open(self, offset: int) -> Opened:
        headers = {"Range": f"bytes={offset}-"}
        response, self.url = get_following_redirects(self._client, self.url, self.settings, self.field, headers)
        try:  # later ranges go straight to where the redirects led (self.url)
            return self._opened(response, offset)
        except BaseException:
            response.close()
            raise

    def _opened(self, response: httpx.Response, offset: int) -> Opened:
        status = response.status_code
        if status == 416 and offset > 0:  # a range at or past the end: nothing more to read
            return Opened(iter(()), response.close, offset, offset, True)
        if status >= 400:
            message = f"the media URL answered HTTP {status}"
            raise MediaError(ErrorCode.MEDIA_UNREACHABLE, message, self.field)
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None:
                raise MediaError(ErrorCode.MEDIA_UNREACHABLE, "HTTP 206 without a valid Content-Range", self.field)
            size = int(match.group(3)) if match.group(3) != "*" else None
            return Opened(response.iter_bytes(CHUNK_BYTES), _closer(response), int(match.group(1)), size, True)
        if status != 200:
            raise MediaError(ErrorCode.MEDIA_UNREACHABLE, f"unexpected HTTP {status}", self.field)
        length = response.headers.get("content-length")
        size = int(length) if length is not None and length.isdigit() else None
        return Opened(response.iter_bytes(CHUNK_BYTES), _closer(response), 0, size, False)  # Range ignored

    def close(self) -> None:
        self._client.close()


class StorageOpener:
    """Opens a ``storage://`` object of ``project`` from a byte offset with S3 ranged GETs."""

    def __init__(self, objects: ObjectStore, project: str, path: str, size: int) -> None:
        self.objects, self.project, self.path, self.size = objects, project, path, size

    def __call__(self, offset: int) -> Opened:
        if offset >= self.size:
            return Opened(iter(()), lambda: None, offset, self.size, True)
        body = self.objects.open_range(self.project, self.path, offset)
        return Opened(body.iter_chunks(CHUNK_BYTES), body.close, offset, self.size, True)

    def close(self) -> None:
        return None


def open_video_stream(
    url: str,
    settings: Settings,
    project: str | None,
    field: str,
    on_spool: Callable[[str], None] | None = None,
) -> ProgressiveReader:
    """The task's video as a progressive reader; ``url`` already resolved (``media.resolve_media_url``
    rules): a ``storage://`` object of ``project`` or an http(s) URL. Errors are :class:`MediaError`.
    ``on_spool`` hears the ``storage://`` URL of a spooled copy before it is written (the task records
    it, so the copy is deleted with the task even after a crash)."""
    from store.media import own_storage_url  # media imports this module's callers: import late

    own = own_storage_url(url, settings, project, field)
    if own is not None:
        if project is None:
            raise MediaError(ErrorCode.MEDIA_NOT_FOUND, "storage:// media needs the task's project", field)
        objects = ObjectStore(settings)
        try:
            path = normalise_path(own, field)
            info = objects.head(project, path)
        except (ObjectNotFound, StoragePathError):
            raise MediaError(ErrorCode.MEDIA_NOT_FOUND, f"no stored file {url!r} in this project", field) from None
        storage = StorageOpener(objects, project, path, info.size)
        return ProgressiveReader(storage, max_bytes=settings.max_video_bytes, field=field, on_close=storage.close)
    http = HttpOpener(url, settings, field)
    try:
        return ProgressiveReader(http, max_bytes=settings.max_video_bytes, field=field, on_close=http.close)
    except MediaError as exc:
        http.close()
        if exc.code != ErrorCode.MEDIA_NOT_STREAMABLE or project is None:
            raise
        return _spooled(url, settings, project, field, on_spool)
    except BaseException:
        http.close()
        raise


class _BodyReader(io.RawIOBase):
    """A response body as a readable stream for boto3's upload, counting against the size limit."""

    def __init__(self, chunks: Iterator[bytes], max_bytes: int, field: str) -> None:
        super().__init__()
        self._chunks, self._pending, self._total = chunks, b"", 0
        self.max_bytes, self.field = max_bytes, field

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Exactly ``size`` bytes unless the body ends first (boto3 takes a short read for the end)."""
        wanted = None if size is None or size < 0 else size
        parts: list[bytes] = []
        have = 0
        while wanted is None or have < wanted:
            if not self._pending:
                chunk = next(self._chunks, b"")
                if not chunk:
                    break
                self._total += len(chunk)
                if self._total > self.max_bytes:
                    message = f"the media is larger than {self.max_bytes} bytes"
                    raise MediaError(ErrorCode.MEDIA_TOO_LARGE, message, self.field)
                self._pending = chunk
            take = len(self._pending) if wanted is None else wanted - have
            parts.append(self._pending[:take])
            self._pending = self._pending[take:]
            have += len(parts[-1])
        return b"".join(parts)


def _spooled(
    url: str, settings: Settings, project: str, field: str, on_spool: Callable[[str], None] | None
) -> ProgressiveReader:
    """An origin without ranges serving an MP4 whose index is at its end: copy it to the project's
    object storage (streamed, bounded memory; never the node's disk) and read it from there with
    ranged GETs. The copy is deleted when the reader closes."""
    from store.media import STAGED_PREFIX  # see open_video_stream

    objects = ObjectStore(settings)
    path = f"{STAGED_PREFIX}/spool-{uuid.uuid4().hex}.mp4"
    if on_spool is not None:
        on_spool(storage_url(path))
    http = HttpOpener(url, settings, field)
    try:
        opened = http(0)
        try:
            info = objects.put_stream(project, path, _BodyReader(opened.chunks, settings.max_video_bytes, field))
        finally:
            opened.close()
    except BaseException:
        with contextlib.suppress(Exception):
            objects.delete(project, path)
        raise
    finally:
        http.close()
    storage = StorageOpener(objects, project, path, info.size)

    def discard() -> None:
        with contextlib.suppress(Exception):
            objects.delete(project, path)

    return ProgressiveReader(storage, max_bytes=settings.max_video_bytes, field=field, on_close=discard)
