"""Fetching media from the internet without letting a URL reach inside the cluster (SSRF).

A media URL is fetched from inside the cluster, so it must not reach loopback, private, link-local
(cloud metadata at 169.254.169.254), reserved or multicast addresses:

* Every address the host resolves to is checked (an attacker controls DNS, and one bad A record
  among good ones is enough), and the request then goes to exactly the address that was checked:
  the host is resolved once, the connection is made to that IP (``Host`` header and TLS SNI /
  certificate check keep the original name), so a DNS answer that changes between the check and
  the connection (rebinding) cannot send the request anywhere else. The address actually connected
  to is checked again before any byte of the body is read.
* Redirects are followed by hand, and every hop is resolved, checked and pinned the same way.
* Only http and https; proxies and .netrc from the environment are ignored. ``allow_private_urls``
  (tests, local use) lifts the address checks and the pinning, not the scheme check.
* Size and time: ``max_video_bytes`` is enforced from Content-Length before downloading and again
  while streaming (a server can lie or send no length); connect/read timeouts come from settings.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from contract.errors import ErrorCode, VisionGridError

if TYPE_CHECKING:
    from visiongrid.settings import Settings

MAX_REDIRECTS: Final[int] = 5
_CHUNK_BYTES: Final[int] = 1024 * 1024
_ALLOWED_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})
#: Live inputs: the streaming protocols (with their default ports) and HLS / MPEG-TS over http(s).
_LIVE_PORTS: Final[dict[str, int]] = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "srt": 0}
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@?#]*@")
SUFFIX_RE: Final[re.Pattern[str]] = re.compile(r"^\.[A-Za-z0-9]{1,12}$")
_REDIRECT_STATUSES: Final[frozenset[int]] = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class MediaError(VisionGridError):
    """A media problem the client caused or must know about; ``code`` is the API error code.

    codes: media_unreachable, media_not_found, media_too_large (413), url_not_allowed, invalid_base64.
    """

    def __init__(self, code: ErrorCode | str, message: str, field: str | None = None) -> None:
        super().__init__(code, message, field)


# --- the SSRF guard -------------------------------------------------------------------------------


def address_allowed(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (IPv4 embedded in IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and not address_allowed(embedded):
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


def split_url(url: str, field: str | None, live: bool = False) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL (or, ``live``, also rtsp/rtmp/srt), or url_not_allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, f"the URL is malformed ({exc})", field) from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES and not (live and scheme in _LIVE_PORTS):
        allowed = "http(s), rtsp(s), rtmp(s) and srt" if live else "http and https"
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, f"only {allowed} URLs are allowed", field)
    host = parts.hostname
    if not host:
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, "the URL has no host", field)
    if port is None and scheme == "srt":
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, "an srt:// URL needs a port", field)
    default = _LIVE_PORTS.get(scheme) or (443 if scheme == "https" else 80)
    return scheme, host, port if port is not None else default


def resolve(host: str, port: int, field: str | None) -> list[IPAddress]:
    """Every address ``host`` resolves to (one DNS lookup); media_unreachable when there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError(ErrorCode.MEDIA_UNREACHABLE, f"cannot resolve host {host!r} ({exc})", field) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # IPv6 sockaddr may carry a scope ("fe80::1%eth0"): drop it before parsing.
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise MediaError(ErrorCode.MEDIA_UNREACHABLE, f"host {host!r} has no address", field)
    return addresses


def checked_addresses(url: str, settings: Settings, field: str | None, live: bool = False) -> list[IPAddress] | None:
    """The addresses ``url`` may be fetched from, all public; None when ``allow_private_urls``
    (nothing is resolved then). Refuses with url_not_allowed, or media_unreachable on DNS failure."""
    _, host, port = split_url(url, field, live)
    if settings.allow_private_urls:
        return None
    addresses = resolve(host, port, field)
    for address in addresses:
        if not address_allowed(address):
            raise MediaError(
                ErrorCode.URL_NOT_ALLOWED,
                f"the URL's host {host!r} resolves to a non-public address ({address})",
                field,
            )
    return addresses


def check_url_allowed(url: str, settings: Settings, field: str = "input[0].url") -> None:
    """Refuse (MediaError url_not_allowed) URLs the service must not fetch.

    Scheme http/https only. Unless ``settings.allow_private_urls``, every address the host resolves to must
    be public; DNS failure is ``media_unreachable``.
    """
    checked_addresses(url, settings, field)


def check_live_url_allowed(url: str, settings: Settings, field: str = "input[0].url") -> None:
    """The SSRF policy for a live source: rtsp/rtmp/srt or http(s), every address public. FFmpeg makes
    the connection itself, so it is checked again when the task opens it (and at every reconnect)."""
    checked_addresses(url, settings, field, live=True)


def redact_url(url: str) -> str:
    """``url`` without credentials (``rtsp://user:pass@cam/...`` → ``rtsp://***@cam/...``): task
    views, results and logs never echo them."""
    return _USERINFO.sub(r"\1***@", url)


def pinned_request(url: str, settings: Settings, field: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL to request, headers, httpx extensions) that reach exactly the checked address of ``url``.

    The URL's host is replaced by the first checked address; ``Host`` keeps the original name (and
    port), and for https ``sni_hostname`` makes TLS send and verify the certificate for that name.
    """
    addresses = checked_addresses(url, settings, field)
    if addresses is None:
        return url, {}, {}
    target = httpx.URL(url)
    pinned = target.copy_with(host=str(addresses[0]))
    extensions: dict[str, Any] = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    return str(pinned), {"Host": target.netloc.decode("ascii")}, extensions


def check_peer(response: httpx.Response, settings: Settings, field: str | None) -> None:
    """Check the address actually connected to (belt and braces after pinning)."""
    if settings.allow_private_urls:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return
    address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    if not address_allowed(address):
        raise MediaError(ErrorCode.URL_NOT_ALLOWED, f"the media server's address is not public ({address})", field)


# --- download -------------------------------------------------------------------------------------


def _suffix_for(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix
    return suffix if SUFFIX_RE.match(suffix) else ".bin"


def too_large(settings: Settings, field: str | None) -> MediaError:
    return MediaError(ErrorCode.MEDIA_TOO_LARGE, f"the media is larger than {settings.max_video_bytes} bytes", field)


def media_client(settings: Settings) -> httpx.Client:
    """The client media is fetched with: the fetch timeout, no automatic redirects (each hop is
    checked by :func:`get_following_redirects`), no proxy from the environment, and identity
    encoding, so the bytes counted are the bytes stored (no transparent decompression of a "gzip bomb")."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.media_fetch_timeout_s),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


def get_following_redirects(
    client: httpx.Client, url: str, settings: Settings, field: str | None, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, str]:
    """A streaming GET of ``url`` (with ``headers``), redirects followed by hand (at most
    ``MAX_REDIRECTS``), every hop SSRF-checked, pinned to its checked address and its peer verified;
    the open response (the caller closes it) and the URL it came from."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target, hop_headers, extensions = pinned_request(current, settings, field or "input[0].url")
        request = client.build_request("GET", target, headers={**hop_headers, **(headers or {})}, extensions=extensions)
        response = client.send(request, stream=True)
        try:
            check_peer(response, settings, field)
            if response.status_code not in _REDIRECT_STATUSES:
                return response, current
            location = response.headers.get("location")
            if not location:
                message = f"HTTP {response.status_code} without a Location"
                raise MediaError(ErrorCode.MEDIA_UNREACHABLE, message, field)
            current = urljoin(current, location)
        except BaseException:
            response.close()
            raise
        response.close()  # a redirect: on to the next hop
    raise MediaError(ErrorCode.MEDIA_UNREACHABLE, f"more than {MAX_REDIRECTS} redirects", field)


def download(url: str, settings: Settings, workdir: Path, field: str | None) -> Path:
    """Fetch ``url`` into ``workdir`` (SSRF guard and pinning on every hop, size limit while streaming)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with media_client(settings) as client:
        response, final = get_following_redirects(client, url, settings, field)
        try:
            _check_status(response, settings, field)
            return _save_body(response, settings, workdir, _suffix_for(final), field)
        finally:
            response.close()


def _check_status(response: httpx.Response, settings: Settings, field: str | None) -> None:
    if response.status_code >= 400:
        message = f"the media URL answered HTTP {response.status_code}"
        raise MediaError(ErrorCode.MEDIA_UNREACHABLE, message, field)
    if response.status_code != 200:
        raise MediaError(ErrorCode.MEDIA_UNREACHABLE, f"unexpected HTTP {response.status_code}", field)
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.max_video_bytes:
        raise too_large(settings, field)


def _save_body(response: httpx.Response, settings: Settings, workdir: Path, suffix: str, field: str | None) -> Path:
    """Stream the body to ``workdir`` (temporary name, then rename), counting bytes against the limit."""
    fd, tmp_name = tempfile.mkstemp(dir=workdir, prefix=".download-", suffix=suffix)
    received = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in response.iter_bytes(_CHUNK_BYTES):
                received += len(chunk)
                if received > settings.max_video_bytes:
                    raise too_large(settings, field)
                handle.write(chunk)
        if received == 0:
            raise MediaError(ErrorCode.MEDIA_UNREACHABLE, "the media URL returned an empty body", field)
        target = workdir / f"media-{uuid.uuid4().hex}{suffix}"
        os.replace(tmp_name, target)
        return target
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
