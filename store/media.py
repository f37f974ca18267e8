"""The one module that fetches or stages media: every byte of user media enters through here.

Why it is careful:

* SSRF: http(s) media is fetched by :mod:`store.media_fetch` (every resolved address checked, the
  connection pinned to the checked address on every redirect hop, the peer checked again).
* VisionGrid's own presigned GET URLs (of the configured S3 endpoint, often private) are not fetched
  but verified (:mod:`store.presigned`: our bucket, our signature, not expired) and read through the
  object store as the ``storage://`` path they name — only within the caller's project
  (:func:`resolve_media_url`). So upload → presign → process works without ``allow_private_urls``,
  and every other private address stays refused.
* Size and time: ``max_video_bytes`` is enforced from Content-Length before downloading and again while
  streaming (a server can lie or send no length); connect/read timeouts come from settings.
* Staged uploads (base64 inputs and raw bodies) live only in the project's object storage under
  ``staged/``; deleting refuses anything that is not a ``storage://`` URL, so a corrupted task row cannot
  make the reaper delete arbitrary files.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from contract.errors import ErrorCode
from store.media_fetch import (
    MAX_REDIRECTS,
    SUFFIX_RE,
    MediaError,
    check_url_allowed,
    download,
)
from store.objects import ObjectNotFound, ObjectStore, StoragePathError, normalise_path, storage_url
from store.paths import project_prefix
from store.presigned import presigned_key

if TYPE_CHECKING:
    from visiongrid.settings import Settings

__all__ = [
    "MAX_REDIRECTS",
    "STAGED_PREFIX",
    "STORAGE_SCHEME",
    "MediaError",
    "check_url_allowed",
    "decode_base64",
    "decode_base64_limited",
    "delete_staged",
    "open_video",
    "own_storage_url",
    "read_image_source",
    "read_media",
    "resolve_media_url",
    "stage_to_storage",
]

log = logging.getLogger(__name__)

STORAGE_SCHEME: Final[str] = "storage://"
STAGED_PREFIX: Final[str] = "staged"  # where uploaded task videos wait in a project's storage
_DATA_URI_RE: Final[re.Pattern[str]] = re.compile(r"^data:[A-Za-z0-9!#$&^_.+\-/]*(;[^,;]*)*;base64,", re.IGNORECASE)


# --- base64 uploads -------------------------------------------------------------------------------


def decode_base64(text: str, settings: Settings, field: str = "input[0].data") -> bytes:
    """Strictly decode base64 (an optional ``data:<type>;base64,`` prefix allowed) and check the size.

    Strict: only the standard alphabet with correct padding; surrounding whitespace is ignored, inner
    whitespace or any other character is ``invalid_base64``. The size is checked on the encoded length
    first, so an oversized upload is refused before it is decoded into memory.
    """
    payload = text.strip()
    match = _DATA_URI_RE.match(payload)
    if match:
        payload = payload[match.end() :]
    elif payload[:5].lower() == "data:":
        raise MediaError("invalid_base64", "a data: URI must be of the form data:<type>;base64,<data>", field)
    if not payload:
        raise MediaError("invalid_base64", "the base64 data is empty", field)
    # Decoded length is 3/4 of the encoded length, minus padding: refuse early without decoding.
    if (len(payload) // 4) * 3 - payload[-2:].count("=") > settings.max_video_bytes:
        raise MediaError("media_too_large", f"the decoded media is larger than {settings.max_video_bytes} bytes", field)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError("invalid_base64", f"the data is not valid base64 ({exc})", field) from None
    if not data:
        raise MediaError("invalid_base64", "the base64 data is empty", field)
    if len(data) > settings.max_video_bytes:
        raise MediaError("media_too_large", f"the decoded media is larger than {settings.max_video_bytes} bytes", field)
    return data


# --- URLs of the caller -----------------------------------------------------------------------------


def resolve_media_url(url: str, settings: Settings, project: str | None, field: str) -> str:
    """What to read for a media URL given by ``project``: a ``storage://`` URL, or the checked http(s) URL.

    * ``storage://path``: the normalised storage URL (existence is checked when it is read).
    * A presigned GET URL of the configured S3 endpoint: verified (:func:`store.presigned.presigned_key`;
      tampered, expired, another bucket → ``url_not_allowed``) and returned as the ``storage://`` path it
      names, which must lie in ``project``'s storage (else ``media_not_found``, as for another project's
      path).
    * Anything else: checked against the SSRF policy (:func:`check_url_allowed`) and returned unchanged
      (the fetch checks again and pins the address it checked).
    """
    own = own_storage_url(url, settings, project, field)
    if own is not None:
        return storage_url(normalise_path(own, field))  # a malformed storage path: invalid_path
    check_url_allowed(url, settings, field)
    return url


def own_storage_url(url: str, settings: Settings, project: str | None, field: str) -> str | None:
    """The ``storage://`` URL a storage URL (as given) or one of our presigned URLs names; None otherwise."""
    if url.startswith(STORAGE_SCHEME):
        return url
    key = presigned_key(url, settings, field)
    if key is None:
        return None
    missing = MediaError(ErrorCode.MEDIA_NOT_FOUND, "the presigned URL names no stored file of this project", field)
    if project is None:
        raise missing
    prefix = project_prefix(project)
    if not key.startswith(prefix):
        raise missing
    try:
        return storage_url(normalise_path(key[len(prefix) :], field, project))
    except StoragePathError:
        raise missing from None


def stage_to_storage(data: bytes, settings: Settings, project: str, suffix: str = ".bin") -> str:
    """Stage uploaded video bytes in the project's object storage; returns its ``storage://`` URL.

    Runners on any node read it back from S3, so nothing depends on the ingress node's disk.
    """
    if len(data) > settings.max_video_bytes:
        raise MediaError("media_too_large", f"video is {len(data)} bytes, limit is {settings.max_video_bytes}", None)
    if not SUFFIX_RE.match(suffix):
        suffix = ".bin"  # it is part of the object path: only a short alphanumeric extension
    path = f"{STAGED_PREFIX}/{uuid.uuid4().hex}{suffix}"
    ObjectStore(settings).put_bytes(project, path, data, "application/octet-stream")
    return storage_url(path)


def delete_staged(urls: list[str], settings: Settings, project: str | None = None) -> None:
    """Delete staged media: the ``storage://`` objects of ``project``.

    Anything else (a local path from a task row written before staging moved to storage, a malformed
    storage path, or no project) is refused: logged and left alone, so a corrupted task row cannot make
    the reaper delete arbitrary files. Missing objects are fine (a retry, or an upload already removed).
    """
    objects: ObjectStore | None = None
    for url in urls:
        if not url.startswith(STORAGE_SCHEME):
            log.warning("refusing to delete %r: not a storage:// URL", url)
            continue
        if project is None:
            log.warning("refusing to delete %r: no project given", url)
            continue
        objects = objects or ObjectStore(settings)
        try:
            objects.delete(project, url)
        except StoragePathError as exc:
            log.warning("refusing to delete %r: %s", url, exc)


def _from_storage(url: str, settings: Settings, workdir: Path, project: str | None, field: str) -> Path:
    if project is None:
        raise MediaError("media_not_found", "storage:// media needs the task's project", field)
    objects = ObjectStore(settings)
    try:
        path = normalise_path(url, field)
        info = objects.head(project, path)
        if info.size > settings.max_video_bytes:
            raise MediaError(
                "media_too_large", f"video is {info.size} bytes, limit is {settings.max_video_bytes}", field
            )
        workdir.mkdir(parents=True, exist_ok=True)
        return objects.download_to(project, path, workdir / f"storage-{uuid.uuid4().hex}")
    except (ObjectNotFound, StoragePathError):
        raise MediaError("media_not_found", f"no stored file {url!r} in this project", field) from None


def open_video(
    url: str,
    settings: Settings,
    workdir: Path,
    field: str | None = None,
    project: str | None = None,
) -> Path:
    """The local file of a task's video: a ``storage://`` object of ``project`` (staged uploads included)
    or an http(s) URL, downloaded into ``workdir``.

    Never reads a local path or file:// from ``url``. Errors are MediaError (media_unreachable on connect,
    DNS, timeout or HTTP >= 400; media_too_large; url_not_allowed; media_not_found for storage).
    """
    if not url:
        raise ValueError("open_video needs a url")
    field = field or "input[0].url"
    own = own_storage_url(url, settings, project, field)
    if own is not None:
        return _from_storage(own, settings, workdir, project, field)
    try:
        return download(url, settings, workdir, field)
    except httpx.TimeoutException as exc:
        raise MediaError("media_unreachable", f"timed out fetching the media ({type(exc).__name__})", field) from None
    except httpx.HTTPError as exc:
        raise MediaError("media_unreachable", f"cannot fetch the media ({type(exc).__name__}: {exc})", field) from None


def read_media(url: str, settings: Settings, project: str | None, field: str, max_bytes: int) -> bytes:
    """A small medium (an image) in memory, from a ``storage://`` path or an http(s) URL.

    Same guards as :func:`open_video` (SSRF checks on every hop, streamed size limit, no local paths),
    with the caller's byte limit instead of the video one.
    """
    limited = settings.model_copy(update={"max_video_bytes": max_bytes})
    with tempfile.TemporaryDirectory(prefix="visiongrid-media-") as folder:
        return open_video(url, limited, Path(folder), field, project).read_bytes()


def decode_base64_limited(text: str, settings: Settings, field: str, max_bytes: int) -> bytes:
    """:func:`decode_base64` with the caller's byte limit (e.g. the image limit)."""
    return decode_base64(text, settings.model_copy(update={"max_video_bytes": max_bytes}), field)


def read_image_source(source: Mapping[str, Any], settings: Settings, project: str | None, field: str) -> bytes:
    """The bytes of an image given as ``{url | base64 | path}`` (the API's image object), at most
    ``max_image_bytes``. ``path`` and ``storage://`` URLs read the project's storage; http(s) URLs are
    fetched with the SSRF guard on every hop. Errors are :class:`MediaError` naming ``<field>.<source>``."""
    limit = settings.max_image_bytes
    if source.get("base64"):
        return decode_base64_limited(str(source["base64"]), settings, f"{field}.base64", limit)
    if source.get("path"):
        url = storage_url(normalise_path(str(source["path"]), f"{field}.path"))
        return read_media(url, settings, project, f"{field}.path", limit)
    if source.get("url"):
        return read_media(str(source["url"]), settings, project, f"{field}.url", limit)
    raise MediaError("invalid_request", "give one of url, base64, path", field)
