"""Who is asking: the one lookup of an API key from request headers.

Three places need the caller's key before (or instead of) FastAPI's dependency: the body guard
(before a body is read), the rate limiter (to count per project) and the route dependency (which
also checks the key's scopes). They all call :func:`authenticated_key`, and whoever looks first
leaves the key (:data:`KEY_STATE_KEY`) and its project (:data:`PROJECT_STATE_KEY`) in the request
state, so a request costs one key lookup.
"""

from __future__ import annotations

from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import Scope

from api.services import Services
from contract.errors import ErrorCode, VisionGridError
from store.records import ApiKeyRecord
from store.tables import utcnow

__all__ = ["KEY_STATE_KEY", "PROJECT_STATE_KEY", "authenticated_key", "secret_from"]

PROJECT_STATE_KEY: Final[str] = "visiongrid_project"
KEY_STATE_KEY: Final[str] = "visiongrid_key"


def secret_from(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def _lookup_and_touch(services: Services, secret: str) -> ApiKeyRecord:
    record = services.keys.lookup(secret)
    if record is None:
        raise VisionGridError(ErrorCode.UNAUTHORIZED, "invalid API key")
    if record.revoked_at is not None:
        raise VisionGridError(ErrorCode.UNAUTHORIZED, "revoked API key")
    if not record.usable_at(utcnow()):
        raise VisionGridError(ErrorCode.UNAUTHORIZED, "expired API key")
    services.keys.touch(record)
    return record


async def authenticated_key(services: Services, scope: Scope) -> ApiKeyRecord:
    """The caller's key (from the request state when looked up already); 401 ``unauthorized`` when it
    is missing, invalid, revoked or expired."""
    state = scope.setdefault("state", {})
    cached = state.get(KEY_STATE_KEY)
    if isinstance(cached, ApiKeyRecord):
        return cached
    headers = Headers(scope=scope)
    secret = secret_from(headers.get("authorization"), headers.get("x-api-key"))
    if secret is None:
        raise VisionGridError(
            ErrorCode.UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"
        )
    record = await run_in_threadpool(_lookup_and_touch, services, secret)
    state[KEY_STATE_KEY] = record
    state[PROJECT_STATE_KEY] = record.project
    return record
