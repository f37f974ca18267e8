"""The connection to one Chroma server: its heartbeat, a lazily made HTTP client, error translation.

* HTTP client only (``chromadb-client``): the Chroma server runs as its own process from its own
  venv (started by the launcher, ``visiongrid.chroma_server``), so every API replica and worker
  shares one index. This module knows nothing of how it was started.
* Failing fast: the client's ``httpx`` session is created with ``timeout=None`` and Chroma does not
  retry transport errors; a refused connection fails in about a millisecond, but a hung server would
  block forever. The session timeout is therefore set to ``settings.chroma_timeout_s``; and since the
  ``HttpClient`` constructor itself calls the server (tenant/database validation, with no timeout),
  the client is created lazily after a heartbeat probe bounded by the same timeout. Every transport
  error (refused, reset, timeout) and any 5xx not produced by Chroma becomes
  :class:`VectorStoreUnavailable`.
* Readiness is Chroma's own heartbeat (``GET /api/v2/heartbeat`` answering
  ``{"nanosecond heartbeat": N}``; ``/api/v1/*`` answers 410 Gone in 1.5.x), not an open port, so a
  stranger on the port does not pass.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import httpx

from store.vector_types import VectorIndexError, VectorInputError, VectorStoreUnavailable, unavailable

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from visiongrid.settings import Settings

HEARTBEAT_PATH: Final[str] = "/api/v2/heartbeat"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via an HTTP(S)_PROXY


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def chroma_answers(url: str, timeout: float = 1.0) -> bool:
    """True if a Chroma server answers its heartbeat at ``url`` (e.g. ``http://127.0.0.1:8100``)."""
    opener = _DIRECT if is_loopback(urlsplit(url).hostname or "") else urllib.request.build_opener()
    try:
        with opener.open(url.rstrip("/") + HEARTBEAT_PATH, timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):  # URLError/HTTPError/timeouts are OSErrors; ValueError: not JSON
        return False
    return isinstance(body, dict) and "nanosecond heartbeat" in body


class ChromaConnection:
    """One lazily created Chroma HTTP client with a bounded timeout. Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        parts = urlsplit(settings.chroma_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"chroma_url must be http(s)://host:port, got {settings.chroma_url!r}")
        self.url = settings.chroma_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = parts.scheme == "https"
        self.timeout_s = settings.chroma_timeout_s
        self._lock = threading.Lock()
        self._client: ClientAPI | None = None

    def ping(self) -> bool:
        """True if Chroma answers its heartbeat within the timeout (health checks)."""
        return chroma_answers(self.url, timeout=self.timeout_s)

    def client(self) -> ClientAPI:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> ClientAPI:
        # The constructor calls the server with no timeout: probe first, bounded.
        if not self.ping():
            raise VectorStoreUnavailable(f"vector store unavailable: no Chroma heartbeat at {self.url}")
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        try:
            client = chromadb.HttpClient(
                host=self._host, port=self._port, ssl=self._ssl, settings=ChromaSettings(anonymized_telemetry=False)
            )
        except (httpx.TransportError, OSError) as exc:
            raise unavailable(exc) from exc
        except ValueError as exc:  # "Could not connect to a Chroma server. Are you sure it is running?"
            raise unavailable(exc) from exc
        # chromadb 1.5.9 builds its httpx.Client with timeout=None (a hung server blocks forever).
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(self.timeout_s)
        return client

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Chroma's and httpx's exceptions as this room's typed errors."""
        from chromadb.errors import (
            BatchSizeExceededError,
            ChromaError,
            DuplicateIDError,
            InternalError,
            InvalidArgumentError,
            InvalidDimensionException,
        )

        try:
            yield
        except (httpx.TransportError, ConnectionError) as exc:  # refused, reset, timed out
            raise unavailable(exc) from exc
        except httpx.HTTPStatusError as exc:  # a non-Chroma error body, e.g. from a proxy in between
            if exc.response.status_code >= 500:
                raise unavailable(exc) from exc
            raise VectorIndexError(f"Chroma answered {exc.response.status_code}: {exc}") from exc
        except InternalError as exc:  # a bug or corruption on the server, not an outage
            raise VectorIndexError(f"Chroma internal error: {exc}") from exc
        except (InvalidArgumentError, InvalidDimensionException, DuplicateIDError, BatchSizeExceededError) as exc:
            raise VectorInputError(str(exc)) from exc  # e.g. a dimension Chroma fixed on first add
        except ChromaError as exc:  # 1.5.9 sends some statuses (409 ...) as a bare "ChromaError"
            if exc.code() >= 500:
                raise unavailable(exc) from exc
            raise VectorIndexError(f"{type(exc).__name__}: {exc}") from exc
