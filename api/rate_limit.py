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

__all__ = ["CATEGORIES", "RateLimitedError", "RateLimiter", "admit", "category_of", "store_for"]

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


_STORES: dict[str, RateLimitStore] = {}


class RateLimitedError(VisionGridError):
    """A 429 ``rate_limited`` and the headers it is answered with (RateLimit-*, Retry-After)."""

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.headers = headers


def store_for(services: Services) -> RateLimitStore:
    """The rate-limit store of the services' database (one per URL and process; engines are cached too)."""
    url = services.settings.resolved_database_url()
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = RateLimitStore(open_engine(url))
    return store


async def admit(services: Services, project: str, category: str, store: RateLimitStore | None = None) -> dict[str, str]:
    """Count one request of ``project`` in ``category``; the RateLimit-* headers to send, or a 429
    ``rate_limited`` (its ``headers`` attribute carries them plus ``Retry-After``) past the limit."""
    settings = services.settings
    default = int(getattr(settings, f"rate_limit_{category}"))
    decision = await run_in_threadpool(
        (store or store_for(services)).hit, project, category, default, settings.rate_limit_window_s
    )
    headers = _headers(decision)
    if not decision.allowed:
        message = f"more than {decision.limit} {category} requests in {settings.rate_limit_window_s:g} s"
        raise RateLimitedError(message, {**headers, "Retry-After": str(decision.reset_s)})
    return headers


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
        try:
            headers = await admit(services, project, category, self._store)
        except RateLimitedError as error:
            response = error_response(error)
            response.headers.update(error.headers)
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
