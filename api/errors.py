"""The one place where errors become HTTP responses: ``{"error": {"code", "message", "field"}}``.

Errors are raised where they arise as :class:`contract.errors.VisionGridError` (store, pipelines,
media, the contract's validators, the routes); their status comes from the contract's code → status
table. Request validation is a **400** naming the offending field the way a client wrote it
(``input[0].sampling.value``) — never FastAPI's 422 — and the OpenAPI document says so
(:func:`error_responses` declares each route's statuses; :func:`without_422` removes FastAPI's).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract.common import ErrorEnvelope, plan_error
from contract.errors import ErrorCode, VisionGridError

__all__ = [
    "APIError",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "not_found",
    "without_422",
]

logger = logging.getLogger("visiongrid.api")

#: Routes raise the contract's error type directly; the name reads well at a raise site.
APIError = VisionGridError

_HTTP_CODES: Final[dict[int, ErrorCode]] = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.INSUFFICIENT_SCOPE,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}
_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "invalid request: `error.field` names the offending field",
    401: "missing, invalid, expired or revoked API key",
    403: "the key's scopes do not include the one this operation requires",
    404: "no such resource in this project",
    409: "conflicts with the resource's current state",
    413: "body, media or object larger than the configured limit",
    422: "an Idempotency-Key reused with a different body",
    429: "rate limited: see Retry-After and the RateLimit-* headers",
    500: "a model failed on this input (the replicas keep serving)",
    502: "every external describe provider failed",
    503: "a backing service (object storage, vector store, models) is unavailable",
}


def not_found(what: str, ident: str, field: str | None = None) -> VisionGridError:
    return VisionGridError(ErrorCode.NOT_FOUND, f"{what} {ident!r} not found", field)


def error_response(error: VisionGridError) -> JSONResponse:
    """The response of ``error``: its status from the code table, the envelope as the body (a request
    error's message starts with its field, ``steps[0].model: ...``, as it always has)."""
    message = str(error) if error.field_in_message else error.message
    body = {"error": {"code": error.code, "message": message, "field": error.field, **error.extra}}
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(status_code=error.status, content=body, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: 400, 401, 403 (scopes) and 429 (rate limits) always, plus
    ``statuses``."""
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS.get(status, "error")}
        for status in sorted({400, 401, 403, 429, *statuses})
    }


def without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop FastAPI's automatic 422 ``{detail}`` responses and their schemas: this API never sends them."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "HTTPValidationError" in str(responses.get("422", "")):
                responses.pop("422")
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VisionGridError)
    async def visiongrid_error(_: Request, error: VisionGridError) -> JSONResponse:
        if error.status >= 500:
            logger.error("%s: %s", error.code, error.message)
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(plan_error(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, ErrorCode.INVALID_REQUEST)
        response = error_response(VisionGridError(code, str(error.detail)))
        response.status_code = error.status_code
        response.headers.update(getattr(error, "headers", None) or {})
        return response

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return error_response(VisionGridError(ErrorCode.INTERNAL_ERROR, "internal server error"))
