"""The FastAPI application factory and its OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from api.body_guard import BodyGuard
from api.deps import authenticate_key
from api.errors import install_error_handlers, without_422
from api.idempotency import Idempotency
from api.mcp_server import MCP_PATH, McpEndpoint
from api.mcp_tools import build_server
from api.rate_limit import RateLimiter
from api.routes import batch, events, keys, status, storage, uploads, vectors, video, vision, webhooks
from api.scopes import ROUTE_SCOPES, check_table, operation_id
from api.services import Services
from api.web import install_pages
from contract.chunks import Chunk
from contract.events import LifecycleEvent
from contract.video import ProcessRequest

#: Models a route documents by reference without FastAPI seeing them as a parameter (the JSON body of
#: the dual JSON/binary ``/process``, the data lines of SSE streams).
_REFERENCED_MODELS: tuple[type[BaseModel], ...] = (ProcessRequest, Chunk, LifecycleEvent)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the referenced models added and its never-sent 422s removed."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in _REFERENCED_MODELS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and operation.get("operationId") in ROUTE_SCOPES:
                    operation["x-required-scope"] = ROUTE_SCOPES[operation["operationId"]].value
        app.openapi_schema = without_422(schema)
    return app.openapi_schema


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route under ``routes``, included routers' too (FastAPI nests those since 0.16x)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from api_routes(original.routes)


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(dep.call is call or _depends_on(dep, call) for dep in dependant.dependencies)


def _authenticated(route: APIRoute) -> bool:
    """Whether the route authenticates its caller (so the scope table must name it)."""
    return _depends_on(route.dependant, authenticate_key)


def create_app(services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` may be attached now or later (the Serve ingress does it
    in its constructor, because the app object must exist when the class is decorated)."""
    app = FastAPI(
        title="VisionGrid",
        version="0.1.0",
        description="Self-hosted video and image analysis API",
        generate_unique_id_function=operation_id,
        docs_url=None,  # served by api.web from vendored assets, not FastAPI's CDN links
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(Idempotency)  # innermost: buffers the body BodyGuard has capped
    app.add_middleware(RateLimiter)  # outside Idempotency, so replays count
    app.add_middleware(BodyGuard)  # added last = outermost: auth and size before anything reads the body
    app.include_router(video.router)
    app.include_router(vision.router)
    app.include_router(batch.router)
    app.include_router(vectors.router)
    app.include_router(uploads.router)
    app.include_router(storage.router)
    app.include_router(status.router)
    app.include_router(keys.router)
    app.include_router(webhooks.router)
    app.include_router(events.router)
    install_pages(app)
    # MCP (streamable HTTP, stateless): a plain ASGI route, off unless Settings.mcp_enabled (checked per request)
    app.router.routes.append(Route(MCP_PATH, endpoint=McpEndpoint(build_server), include_in_schema=False))
    check_table(operation_id(route) for route in api_routes(app.routes) if _authenticated(route))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if services is not None:
        app.state.services = services
    return app
