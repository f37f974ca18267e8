"""Per-project sliding-window rate limits of the ``/v1`` endpoint categories, exact across replicas.

An ASGI middleware placed inside :class:`api.body_guard.BodyGuard`: requests with a body arrive
authenticated (their project in the request state), others are authenticated here the same way. An
unauthenticated request passes through uncounted and the app answers its 401. Every counted request
of a limited route gets the IETF ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` headers; one over
the limit is a 429 ``rate_limited`` with ``Retry-After``. The count lives in the database
(:class:`store.rate_limits.RateLimitStore`), one transaction per request.
"""

from __future__ import annotations

from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import authenticated_key
from api.errors import error_response
from api.services import Services, installed
from contract.errors import ErrorCode, VisionGridError
from store.db import open_engine
from store.rate_limits import Decision, RateLimitStore

__all__ = ["CATEGORIES", "RateLimiter", "category_of"]

#: Path prefix → category (the settings field of its default is ``rate_limit_<category>``).
CATEGORIES: Final[tuple[tuple[str, str], ...]] = (
    ("/v1/vision/", "vision"),
    ("/v1/video/", "video"),
    ("/v1/vectors/", "vectors"),
    ("/v1/storage/", "storage"),
)


def category_of(path: str) -> str | None:
    """The rate-limit category of ``path`` (``None``: not limited)."""
    return next((category for prefix, category in CATEGORIES if path.startswith(prefix)), None)


def _headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }


class RateLimiter:
    """Pure ASGI middleware (no buffering: streams pass straight through with the headers added)."""

    def __init__(self, app: ASGIApp, store: RateLimitStore | None = None) -> None:
        self.app = app
        self._store = store
        self._stores: dict[str, RateLimitStore] = {}

    def _store_for(self, services: Services) -> RateLimitStore:
        if self._store is not None:
            return self._store
        url = services.settings.resolved_database_url()
        store = self._stores.get(url)
        if store is None:
            store = self._stores[url] = RateLimitStore(open_engine(url))
        return store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        category = category_of(scope["path"]) if scope["type"] == "http" else None
        services: Services | None = None
        if category is not None:
            services = getattr(scope["app"].state, "services", None) or installed()
        if category is None or services is None or not services.settings.rate_limits_enabled:
            await self.app(scope, receive, send)
            return
        project = await _project(services, scope)
        if project is None:
            await self.app(scope, receive, send)  # the app answers the 401; it does not count
            return
        settings = services.settings
        default = int(getattr(settings, f"rate_limit_{category}"))
        store = self._store_for(services)
        decision = await run_in_threadpool(store.hit, project, category, default, settings.rate_limit_window_s)
        headers = _headers(decision)
        if not decision.allowed:
            message = f"more than {decision.limit} {category} requests in {settings.rate_limit_window_s:g} s"
            response = error_response(VisionGridError(ErrorCode.RATE_LIMITED, message))
            response.headers.update({**headers, "Retry-After": str(decision.reset_s)})
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _project(services: Services, scope: Scope) -> str | None:
    """The caller's project (BodyGuard's lookup reused; ``None``: no valid key, the app answers 401)."""
    try:
        return (await authenticated_key(services, scope)).project
    except VisionGridError:
        return None
