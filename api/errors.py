"""One error envelope everywhere: ``{"error": {"code", "message", "field"}}``.

Errors are typed where they arise (store, pipelines, media) and mapped to HTTP here, in one
place. Every request-validation problem is a 400 naming the offending field with the same
dotted/indexed path a client would write (``input[0].sampling.value``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.describe import DescribeError
from pipelines.executor import StepFailedError
from pipelines.plan import PlanError
from store.media import MediaError
from store.objects import ObjectNotFound, ObjectTooLarge, StoragePathError

logger = logging.getLogger("visiongrid.api")

VALIDATION_STATUS = 400


class APIError(Exception):
    """An error with its HTTP status, stable code and (optionally) the request field at fault."""

    def __init__(self, http_status: int, code: str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = http_status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra


def not_found(what: str, ident: str) -> APIError:
    return APIError(404, "not_found", f"{what} {ident!r} not found")


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def field_path(location: Sequence[int | str]) -> str:
    """``("body", "input", 0, "url")`` → ``"input[0].url"``."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith("function-"):
            path += f".{part}" if path else str(part)
    return path or "body"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, error: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return _json(error.status, error_body(error.code, error.message, error.field, **error.extra), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = field_path(first.get("loc", ()))
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            return _json(VALIDATION_STATUS, error_body("invalid_json", f"request body is not valid JSON: {message}"))
        return _json(VALIDATION_STATUS, error_body("invalid_request", f"{field}: {message}", field))

    @app.exception_handler(PlanError)
    async def plan_error(_: Request, error: PlanError) -> JSONResponse:
        return _json(VALIDATION_STATUS, error_body("invalid_request", str(error), error.field))

    @app.exception_handler(StepFailedError)
    async def step_failed(_: Request, error: StepFailedError) -> JSONResponse:
        # a model could not process this image (the replica lives on): the server's fault, named by step
        return _json(500, error_body(error.code, str(error)))

    @app.exception_handler(DescribeError)
    async def describe_failed(_: Request, error: DescribeError) -> JSONResponse:
        message = f"every describe provider failed; last {error.provider}: {error}"
        return _json(502, error_body("describe_failed", message))

    @app.exception_handler(MediaError)
    async def media_error(_: Request, error: MediaError) -> JSONResponse:
        status = 413 if error.code == "media_too_large" else VALIDATION_STATUS
        return _json(status, error_body(error.code, error.message, error.field))

    @app.exception_handler(StoragePathError)
    async def storage_path_error(_: Request, error: StoragePathError) -> JSONResponse:
        return _json(VALIDATION_STATUS, error_body("invalid_path", str(error), error.field))

    @app.exception_handler(ObjectNotFound)
    async def object_not_found(_: Request, error: ObjectNotFound) -> JSONResponse:
        return _json(404, error_body("not_found", str(error) or "file not found"))

    @app.exception_handler(ObjectTooLarge)
    async def object_too_large(_: Request, error: ObjectTooLarge) -> JSONResponse:
        return _json(413, error_body("object_too_large", str(error), "size"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(error.status_code, "http_error")
        return _json(error.status_code, error_body(code, str(error.detail)), getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return _json(500, error_body("internal_error", "internal server error"))
