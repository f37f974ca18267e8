"""A forward HTTP proxy on loopback through which FFmpeg makes its own requests for live http(s)
sources: a live HLS playlist names its segment URLs (and, on every refresh, new ones), which FFmpeg
opens itself, and so does an MPEG-TS stream's redirect. Without this only the playlist's host went
through the SSRF policy; now every request FFmpeg makes is checked and pinned like ours
(:func:`store.media_fetch.checked_addresses`), and a refused one is answered ``403``.

FFmpeg is pointed at it with its ``http_proxy`` option (which its HLS demuxer passes on to every
segment). Plain http arrives in absolute form (``GET http://host/path``): the request line is
rewritten to origin form, ``Connection: close`` is forced, and only that one request is forwarded,
so a kept-alive connection can never carry a second, unchecked request to the first host. https
arrives as ``CONNECT host:port``: the tunnel goes to the checked address only.

One proxy per process, started on first use (:func:`proxy_for`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from urllib.parse import urlsplit

from store.media_fetch import MediaError, checked_addresses
from visiongrid.settings import Settings

__all__ = ["SsrfProxy", "proxy_for"]

logger = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_HOP_HEADERS = (b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization")


class SsrfProxy:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.refused: list[str] = []  # what was refused, for logs and tests
        self.forwarded = 0  # requests and tunnels let through
        threading.Thread(target=self._accept, name="ssrf-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(self.settings.live_read_timeout_s)
            head = _read_head(client)
            if head is None:
                return
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.split(b" ", 2)
            tunnel = method.upper() == b"CONNECT"
            url = f"https://{target.decode('ascii')}/" if tunnel else target.decode("ascii")
            try:
                upstream = self._connect(url)
            except (MediaError, OSError, ValueError) as exc:
                self.refused.append(url)
                logger.warning("live source request refused: %s (%s)", url, exc)
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.forwarded += 1
            with upstream:
                if tunnel:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(client, upstream, both_ways=True)
                else:
                    upstream.sendall(_origin_form(method, url, version, rest))
                    _pipe(client, upstream, both_ways=False)
        except (OSError, ValueError, UnicodeError):
            return
        finally:
            client.close()

    def _connect(self, url: str) -> socket.socket:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("only absolute http URLs and CONNECT are proxied")
        addresses = checked_addresses(url, self.settings, None)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = str(addresses[0]) if addresses else parts.hostname  # pinned to the checked address
        return socket.create_connection((host, port), timeout=self.settings.live_open_timeout_s)


def _read_head(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        if not piece or len(data) > _MAX_HEAD:
            return None
        data += piece
    return data.split(b"\r\n\r\n", 1)[0]  # a GET carries no body; anything after the head is dropped


def _origin_form(method: bytes, url: str, version: bytes, headers: bytes) -> bytes:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept = [h for h in headers.split(b"\r\n") if h and h.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS]
    return b"\r\n".join([method + b" " + path.encode("ascii") + b" " + version, *kept, b"Connection: close", b"", b""])


def _pipe(client: socket.socket, upstream: socket.socket, *, both_ways: bool) -> None:
    """Bytes from upstream to the client until it closes; client → upstream too for a tunnel."""
    if both_ways:
        threading.Thread(target=_copy, args=(client, upstream), daemon=True).start()
    _copy(upstream, client)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while piece := source.recv(65536):
            sink.sendall(piece)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_PROXY: SsrfProxy | None = None
_LOCK = threading.Lock()


def proxy_for(settings: Settings) -> SsrfProxy:
    """This process's proxy (made on first use with these settings' SSRF policy and timeouts)."""
    global _PROXY
    with _LOCK:
        if _PROXY is None:
            if (os.environ.get("no_proxy") or os.environ.get("NO_PROXY")) and not (
                os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY")
            ):
                # FFmpeg bypasses its http_proxy for no_proxy hosts (often 127.0.0.1/localhost): that
                # would skip the check for exactly the private addresses it is there to refuse
                os.environ.pop("no_proxy", None)
                os.environ.pop("NO_PROXY", None)
            _PROXY = SsrfProxy(settings)
        return _PROXY
