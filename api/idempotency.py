"""``Idempotency-Key`` on the create / execute / cancel POSTs: a retry replays the first response.

An ASGI middleware placed inside :class:`api.body_guard.BodyGuard` (the body is authenticated and
capped before it is buffered here) and inside :class:`api.rate_limit.RateLimiter` (a replay counts).
The body's fingerprint is its JSON value (key order and whitespace do not matter) or, for other
bodies, the sha256 of its bytes (a multipart boundary is normalised away, so a client library's retry
with a fresh boundary still matches). Records live in the database
(:class:`store.idempotency.IdempotencyStore`), scoped per project and route, for ``idempotency_ttl_s``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import PROJECT_STATE_KEY
from api.errors import error_response
from api.services import Services, installed
from contract.errors import ErrorCode, VisionGridError
from store.db import open_engine
from store.idempotency import IdempotencyStore, StoredResponse

__all__ = ["HEADER", "IDEMPOTENT_ROUTES", "Idempotency", "fingerprint"]

HEADER: Final[str] = "Idempotency-Key"
_ID: Final[str] = r"[^/]+"
#: The POSTs an Idempotency-Key applies to (create, execute, cancel).
IDEMPOTENT_ROUTES: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(f"^{pattern}$")
    for pattern in (
        "/v1/video/process",
        f"/v1/video/tasks/{_ID}/cancel",
        "/v1/vision/batch",
        f"/v1/vision/batch/{_ID}/cancel",
        "/v1/vision/(detect|ocr|describe)",
        "/v1/vectors/collections",
        f"/v1/vectors/collections/{_ID}/index",
        "/v1/storage/uploads",
        f"/v1/storage/uploads/{_ID}/finalize",
        "/v1/storage/upload",
        "/v1/storage/presign",
        "/v1/webhooks",
        f"/v1/webhooks/{_ID}/test",
        f"/v1/webhooks/{_ID}/deliveries/{_ID}/retry",
    )
)
_KEY_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[\x20-\x7e]{1,255}$")
_BOUNDARY: Final[re.Pattern[str]] = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def fingerprint(body: bytes, content_type: str) -> str:
    """What "the same body" means: the same JSON value, else the same bytes (boundary normalised)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        match = _BOUNDARY.search(content_type)
        if match and media_type.startswith("multipart/"):
            body = body.replace(b"--" + match.group(1).encode("latin-1"), b"--visiongrid-boundary")
        return "raw:" + hashlib.sha256(media_type.encode() + b"\n" + body).hexdigest()
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "json:" + hashlib.sha256(canonical.encode()).hexdigest()


def _key_of(scope: Scope) -> str | None:
    """The request's Idempotency-Key (``None``: none sent); a malformed one is a 400."""
    value = Headers(scope=scope).get(HEADER.lower())
    if value is None:
        return None
    if not _KEY_PATTERN.fullmatch(value):
        message = "must be 1-255 printable ASCII characters"
        raise VisionGridError(ErrorCode.INVALID_REQUEST, f"{HEADER} {message}", HEADER)
    return value


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (``None``: the client went away or BodyGuard cut the body off)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class Idempotency:
    """Pure ASGI middleware: buffers the (capped) request body and the response of a keyed POST."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore | None = None) -> None:
        self.app = app
        self._store = store
        self._stores: dict[str, IdempotencyStore] = {}

    def _store_for(self, services: Services) -> IdempotencyStore:
        if self._store is not None:
            return self._store
        url = services.settings.resolved_database_url()
        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = IdempotencyStore(open_engine(url))
        return store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        project = scope.get("state", {}).get(PROJECT_STATE_KEY) if scope["type"] == "http" else None
        services: Services | None = getattr(scope["app"].state, "services", None) or installed() if project else None
        applies = scope["type"] == "http" and scope["method"] == "POST"
        if not applies or services is None or not any(p.match(scope["path"]) for p in IDEMPOTENT_ROUTES):
            await self.app(scope, receive, send)
            return
        try:
            key = _key_of(scope)
        except VisionGridError as error:
            await error_response(error)(scope, receive, send)
            return
        if key is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # nothing claimed; BodyGuard answers an over-long body with its 413
        call = _KeyedCall(self.app, self._store_for(services), (str(project), scope["path"], key))
        await call.run(scope, receive, send, body, services.settings.idempotency_ttl_s)


class _KeyedCall:
    """One keyed request: claim, then run and store (or release), or replay / refuse."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore, ident: tuple[str, str, str]) -> None:
        self.app, self.store, self.ident = app, store, ident
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.done = False

    async def run(self, scope: Scope, receive: Receive, send: Send, body: bytes, ttl_s: float) -> None:
        content_type = Headers(scope=scope).get("content-type", "")
        claim = await run_in_threadpool(self.store.claim, *self.ident, fingerprint(body, content_type), ttl_s)
        if claim.outcome == "reused":
            error = VisionGridError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"{HEADER} was used with another body", HEADER)
            await error_response(error)(scope, receive, send)
        elif claim.outcome == "in_progress":
            message = f"the first request with this {HEADER} is still in progress: retry later"
            await error_response(VisionGridError(ErrorCode.IDEMPOTENCY_IN_PROGRESS, message, HEADER))(
                scope, receive, send
            )
        elif claim.response is not None:
            await _replay(claim.response, send)
        else:
            await self._first(scope, receive, send, body)

    async def _first(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay_receive, lambda message: self._capture(message, send))
        finally:
            if self.done and self.status is not None and self.status < 500:
                stored = StoredResponse(self.status, self.headers, b"".join(self.chunks))
                await run_in_threadpool(self.store.complete, *self.ident, stored)
            else:
                await run_in_threadpool(self.store.release, *self.ident)

    async def _capture(self, message: Message, send: Send) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            self.done = not message.get("more_body", False)
        await send(message)


async def _replay(response: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
