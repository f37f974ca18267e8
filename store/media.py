"""The one module that fetches or stages media: every byte of user media enters through here.

Why it is careful:

* SSRF: a media URL is fetched from inside the cluster, so a URL must not reach loopback, private,
  link-local (cloud metadata at 169.254.169.254), reserved or multicast addresses. Every address the host
  resolves to is checked (an attacker controls DNS, and one bad A record among good ones is enough), every
  redirect target is checked again before it is followed (redirects are followed by hand), and the address
  actually connected to is checked before any byte of the body is read (DNS can change between the check
  and the connection). Only http and https; proxies and .netrc from the environment are ignored.
* Size and time: ``max_video_bytes`` is enforced from Content-Length before downloading and again while
  streaming (a server can lie or send no length); connect/read timeouts come from settings.
* Staged uploads (base64 inputs and raw bodies) live only in the project's object storage under
  ``staged/``; deleting refuses anything that is not a ``storage://`` URL, so a corrupted task row cannot
  make the reaper delete arbitrary files.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from store.objects import ObjectNotFound, ObjectStore, StoragePathError, normalise_path, storage_url

if TYPE_CHECKING:
    from visiongrid.settings import Settings

log = logging.getLogger(__name__)

MAX_REDIRECTS: Final[int] = 5
STORAGE_SCHEME: Final[str] = "storage://"
STAGED_PREFIX: Final[str] = "staged"  # where uploaded task videos wait in a project's storage
_CHUNK_BYTES: Final[int] = 1024 * 1024
_ALLOWED_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})
_SUFFIX_RE: Final[re.Pattern[str]] = re.compile(r"^\.[A-Za-z0-9]{1,12}$")
_DATA_URI_RE: Final[re.Pattern[str]] = re.compile(r"^data:[A-Za-z0-9!#$&^_.+\-/]*(;[^,;]*)*;base64,", re.IGNORECASE)
_REDIRECT_STATUSES: Final[frozenset[int]] = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class MediaError(Exception):
    """A media problem the client caused or must know about; ``code`` is the API error code.

    codes: media_unreachable, media_not_found, media_too_large, url_not_allowed, invalid_base64.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


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


# --- the SSRF guard -------------------------------------------------------------------------------


def _address_allowed(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (IPv4 embedded in IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and not _address_allowed(embedded):
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _split_url(url: str, field: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or url_not_allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MediaError("url_not_allowed", f"the URL is malformed ({exc})", field) from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise MediaError("url_not_allowed", "only http and https URLs are allowed", field)
    host = parts.hostname
    if not host:
        raise MediaError("url_not_allowed", "the URL has no host", field)
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def _resolve(host: str, port: int, field: str | None) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError("media_unreachable", f"cannot resolve host {host!r} ({exc})", field) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # IPv6 sockaddr may carry a scope ("fe80::1%eth0"): drop it before parsing.
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise MediaError("media_unreachable", f"host {host!r} has no address", field)
    return addresses


def check_url_allowed(url: str, settings: Settings, field: str = "input[0].url") -> None:
    """Refuse (MediaError url_not_allowed) URLs the service must not fetch.

    Scheme http/https only. Unless ``settings.allow_private_urls``, every address the host resolves to must
    be public; DNS failure is ``media_unreachable``.
    """
    _, host, port = _split_url(url, field)
    if settings.allow_private_urls:
        return
    for address in _resolve(host, port, field):
        if not _address_allowed(address):
            raise MediaError(
                "url_not_allowed", f"the URL's host {host!r} resolves to a non-public address ({address})", field
            )


def _check_peer(response: httpx.Response, settings: Settings, field: str | None) -> None:
    """Check the address actually connected to (defeats DNS rebinding between check and connect)."""
    if settings.allow_private_urls:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return
    address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    if not _address_allowed(address):
        raise MediaError("url_not_allowed", f"the media server's address is not public ({address})", field)


# --- download -------------------------------------------------------------------------------------


def _suffix_for(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix
    return suffix if _SUFFIX_RE.match(suffix) else ".bin"


def _too_large(settings: Settings, field: str | None) -> MediaError:
    return MediaError("media_too_large", f"the media is larger than {settings.max_video_bytes} bytes", field)


def _download(url: str, settings: Settings, workdir: Path, field: str | None) -> Path:
    timeout = httpx.Timeout(settings.media_fetch_timeout_s)
    workdir.mkdir(parents=True, exist_ok=True)
    # identity: count the bytes that are stored (no transparent decompression of a "gzip bomb").
    headers = {"Accept-Encoding": "identity"}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, headers=headers) as client:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            check_url_allowed(current, settings, field or "input[0].url")
            with client.stream("GET", current) as response:
                _check_peer(response, settings, field)
                if response.status_code in _REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise MediaError("media_unreachable", f"HTTP {response.status_code} without a Location", field)
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 400:
                    raise MediaError("media_unreachable", f"the media URL answered HTTP {response.status_code}", field)
                if response.status_code != 200:
                    raise MediaError("media_unreachable", f"unexpected HTTP {response.status_code}", field)
                length = response.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > settings.max_video_bytes:
                    raise _too_large(settings, field)
                return _save_body(response, settings, workdir, _suffix_for(current), field)
        raise MediaError("media_unreachable", f"more than {MAX_REDIRECTS} redirects", field)


def _save_body(response: httpx.Response, settings: Settings, workdir: Path, suffix: str, field: str | None) -> Path:
    """Stream the body to ``workdir`` (temporary name, then rename), counting bytes against the limit."""
    fd, tmp_name = tempfile.mkstemp(dir=workdir, prefix=".download-", suffix=suffix)
    received = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in response.iter_bytes(_CHUNK_BYTES):
                received += len(chunk)
                if received > settings.max_video_bytes:
                    raise _too_large(settings, field)
                handle.write(chunk)
        if received == 0:
            raise MediaError("media_unreachable", "the media URL returned an empty body", field)
        target = workdir / f"media-{uuid.uuid4().hex}{suffix}"
        os.replace(tmp_name, target)
        return target
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def stage_to_storage(data: bytes, settings: Settings, project: str, suffix: str = ".bin") -> str:
    """Stage uploaded video bytes in the project's object storage; returns its ``storage://`` URL.

    Runners on any node read it back from S3, so nothing depends on the ingress node's disk.
    """
    if len(data) > settings.max_video_bytes:
        raise MediaError("media_too_large", f"video is {len(data)} bytes, limit is {settings.max_video_bytes}", None)
    if not _SUFFIX_RE.match(suffix):
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
    if url.startswith(STORAGE_SCHEME):
        return _from_storage(url, settings, workdir, project, field)
    try:
        return _download(url, settings, workdir, field)
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
