"""Who is asking: the one lookup of an API key from request headers.

Three places need the caller's project before (or instead of) FastAPI's dependency: the body guard
(before a body is read), the rate limiter (to count per project) and the route dependency. They all
call :func:`authenticated_project`, and whoever looks first leaves the project in the request state
(:data:`PROJECT_STATE_KEY`), so a request costs one key lookup.
"""

from __future__ import annotations

from typing import Final

from starlette.concurrency import run_in_threadpool

from api.services import Services
from contract.errors import ErrorCode, VisionGridError

__all__ = ["PROJECT_STATE_KEY", "authenticated_project", "secret_from"]

PROJECT_STATE_KEY: Final[str] = "visiongrid_project"


def secret_from(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


async def authenticated_project(services: Services, authorization: str | None, x_api_key: str | None) -> str:
    """The project of the caller's key; 401 ``unauthorized`` when it is missing, invalid or revoked."""
    secret = secret_from(authorization, x_api_key)
    if secret is None:
        raise VisionGridError(
            ErrorCode.UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"
        )
    record = await run_in_threadpool(services.keys.authenticate, secret)
    if record is None:
        raise VisionGridError(ErrorCode.UNAUTHORIZED, "invalid or revoked API key")
    return record.project
