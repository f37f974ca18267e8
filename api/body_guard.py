"""Refuse what must never be read: unauthenticated requests and oversized bodies, before the body.

FastAPI reads a JSON body before any dependency runs, so a ``Content-Length: 3000000000`` with a
short body used to hang the request — no key needed. This ASGI middleware runs first: a request with
a body to ``/v1`` is authenticated from its headers (401 at once), a declared length over the route's
cap is a 413 at once, and a body that grows past the cap while streaming (chunked transfer) is cut
off with a 413. The caller's key is left in the request state, so the route's auth dependency
does not look it up twice.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import authenticated_key
from api.errors import error_response
from api.services import Services, installed
from contract.errors import ErrorCode, VisionGridError

__all__ = ["BodyGuard"]

_BODY_METHODS: Final[frozenset[str]] = frozenset({"POST", "PUT", "PATCH"})
_RAW_VIDEO_TYPES: Final[tuple[str, ...]] = ("video/", "application/octet-stream")


def _body_limit(services: Services, scope: Scope, headers: Headers) -> tuple[int, ErrorCode]:
    """The body cap of this route and the code of going over it (each route's own, as before)."""
    settings = services.settings
    path: str = scope["path"]
    if scope["method"] == "PUT" and path.startswith("/v1/storage/uploads/"):
        return settings.upload_chunk_bytes, ErrorCode.INVALID_CHUNK_LENGTH
    content_type = headers.get("content-type", "").lower()
    if path == "/v1/video/process" and content_type.startswith(_RAW_VIDEO_TYPES):
        return settings.max_video_bytes, ErrorCode.MEDIA_TOO_LARGE
    return settings.max_json_body_bytes, ErrorCode.BODY_TOO_LARGE


class BodyGuard:
    """Pure ASGI middleware (no response buffering, so SSE streams pass straight through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")  # a lifespan scope has none
        guarded = path.startswith("/v1/") or path == "/mcp"
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not guarded:
            await self.app(scope, receive, send)
            return
        services: Services | None = getattr(scope["app"].state, "services", None) or installed()
        if services is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            # who asks first: a stranger learns no limits
            await authenticated_key(services, scope)
            limit, code = _body_limit(services, scope, headers)
            _check_declared_length(headers.get("content-length"), limit, code)
        except VisionGridError as error:
            await error_response(error)(scope, receive, send)
            return
        await _CappedCall(self.app, limit, code).run(scope, receive, send)


def _check_declared_length(declared: str | None, limit: int, code: ErrorCode) -> None:
    if declared is None:
        return
    if not declared.strip().isdigit() or len(declared.strip()) > 19:
        raise VisionGridError(ErrorCode.INVALID_REQUEST, "Content-Length must be a byte count", "Content-Length")
    if int(declared) > limit:
        raise VisionGridError(code, f"body is {declared} bytes, limit is {limit}", "body")


class _CappedCall:
    """Runs the app with the body capped at ``limit`` bytes (chunked uploads declare no length).

    Past the cap the app is told the client went away (so it stops reading), whatever it answers to
    that is dropped, and the 413 goes out instead — raising from ``receive`` would not do: FastAPI turns
    any error while reading a body into its own 400."""

    def __init__(self, app: ASGIApp, limit: int, code: ErrorCode) -> None:
        self.app, self.limit, self.code = app, limit, code
        self.received = 0
        self.over = False
        self.started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def capped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not self.over:
                self.started = self.started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        finally:
            if self.over and not self.started:
                error = VisionGridError(self.code, f"body is larger than {self.limit} bytes", "body")
                await error_response(error)(scope, receive, send)
