"""The MCP endpoint at ``/mcp``: streamable HTTP in stateless mode, with the official ``mcp`` SDK (2.x).

Contract: VisoWork's MCP endpoint, "authenticated via API keys" like the REST API. The endpoint is a
plain ASGI app mounted on the FastAPI app (not an ``APIRoute``, so it is not in the OpenAPI document
nor in :data:`api.scopes.ROUTE_SCOPES`); each tool checks the scope of the REST operation it mirrors.

Why a session manager per request: the SDK's :class:`StreamableHTTPSessionManager` needs its
``run()`` task group entered before it serves, which its own Starlette app does in a lifespan. The
app here is served by TestClient, uvicorn and Ray Serve's ingress, and whether a host runs the app's
lifespan (and for how long) differs between them. In stateless mode a manager holds nothing between
requests, so each request enters a fresh one and no lifespan is needed anywhere.

Who asks: every HTTP request to ``/mcp`` (``initialize``, ``tools/list``, ``tools/call``) is
authenticated first with the REST lookup (:func:`api.auth.authenticated_key`); without a valid key
the answer is the REST 401 envelope. The key, the services and the rate-limit headers of the call
travel to the tools in a context variable (the SDK runs the request's server task from this one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.auth import authenticated_key
from api.errors import error_response, not_found
from api.rate_limit import RateLimitedError, admit
from api.scopes import ROUTE_SCOPES, require_scope
from api.services import Services, installed
from contract.errors import ErrorCode, VisionGridError
from store.records import ApiKeyRecord

__all__ = ["MCP_PATH", "Caller", "McpEndpoint", "current_caller", "run_tool"]

logger = logging.getLogger("visiongrid.api.mcp")

MCP_PATH: Final[str] = "/mcp"

#: Keys authenticate the caller; the SDK's DNS-rebinding check (a browser on a local page) guards
#: unauthenticated local servers and would refuse every Host a deployment is reached under.
_NO_REBINDING_CHECK: Final[TransportSecuritySettings] = TransportSecuritySettings(enable_dns_rebinding_protection=False)


@dataclass
class Caller:
    """Who calls and with what: the key (scopes, project), the services, the response headers to add."""

    services: Services
    key: ApiKeyRecord
    headers: dict[str, str] = field(default_factory=dict)


_CALLER: ContextVar[Caller] = ContextVar("visiongrid_mcp_caller")


def current_caller() -> Caller:
    """The caller of the MCP request being served (``LookupError`` outside one)."""
    return _CALLER.get()


def _envelope(error: VisionGridError) -> dict[str, Any]:
    """The REST error body (:func:`api.errors.error_response`'s), as a tool error's content."""
    message = str(error) if error.field_in_message else error.message
    return {"error": {"code": error.code, "message": message, "field": error.field, **error.extra}}


def tool_error(error: VisionGridError) -> CallToolResult:
    """An MCP tool error (``isError``) whose text and structured content are the REST envelope."""
    body = _envelope(error)
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body))], structured_content=body, is_error=True
    )


def tool_result(body: dict[str, Any]) -> CallToolResult:
    """A tool's answer: the REST response body, as JSON text and as structured content."""
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body))], structured_content=body)


async def _admit(caller: Caller, category: str) -> None:
    """Count one call in ``category`` (the REST limiter's window and limits); 429-like error past it."""
    if not caller.services.settings.rate_limits_enabled:
        return
    try:
        caller.headers.update(await admit(caller.services, caller.key.project, category))
    except RateLimitedError as error:
        caller.headers.update(error.headers)
        error.extra["retry_after"] = int(error.headers["Retry-After"])
        raise


def _check_scope(caller: Caller, operation: str) -> None:
    """403-like ``insufficient_scope`` unless the key may call the REST ``operation`` this tool mirrors."""
    require_scope(caller.key.scopes, ROUTE_SCOPES[operation])


async def run_tool(
    operation: str, category: str, call: Callable[[Caller], Awaitable[dict[str, Any]]]
) -> CallToolResult:
    """Run one tool call as the REST route ``operation`` would be: counted in its rate-limit
    ``category`` (before the scope check, as REST counts 403s), scope-checked, errors as envelopes."""
    caller = current_caller()
    try:
        await _admit(caller, category)
        _check_scope(caller, operation)
        return tool_result(await call(caller))
    except VisionGridError as error:
        if error.status >= 500:
            logger.error("%s: %s", error.code, error.message)
        return tool_error(error)
    except Exception:
        logger.exception("MCP tool %s failed", operation)
        return tool_error(VisionGridError(ErrorCode.INTERNAL_ERROR, "internal server error"))


class McpEndpoint:
    """The ASGI app at ``/mcp``: off (404) unless ``Settings.mcp_enabled``, 401 without a valid key,
    else the SDK's streamable-HTTP transport (stateless, JSON responses) over ``server``."""

    def __init__(self, build: Callable[[], MCPServer]) -> None:
        # The server is built on first use, in the process that serves: Ray Serve pickles the app to
        # ship it to the ingress replicas, and an SDK server holds an AES key that does not pickle.
        self._build = build
        self._lowlevel: Server[Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_build": self._build, "_lowlevel": None}

    def _server(self) -> Server[Any]:
        if self._lowlevel is None:
            server = self._build()
            # Building the SDK's own app creates its low-level server's manager; that manager's ``app``
            # is the low-level server each request's fresh manager serves.
            server.streamable_http_app(stateless_http=True, json_response=True, transport_security=_NO_REBINDING_CHECK)
            self._lowlevel = server.session_manager.app
        return self._lowlevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = getattr(scope["app"].state, "services", None) or installed()
        if services is None:
            raise RuntimeError("no services installed: build the app with create_app(services) or call install()")
        if not services.settings.mcp_enabled:
            await error_response(not_found("endpoint", MCP_PATH))(scope, receive, send)
            return
        try:
            key = await authenticated_key(services, scope)
        except VisionGridError as error:
            await error_response(error)(scope, receive, send)
            return
        caller = Caller(services, key)
        token = _CALLER.set(caller)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and caller.headers:
                MutableHeaders(scope=message).update(caller.headers)
            await send(message)

        manager = StreamableHTTPSessionManager(
            app=self._server(),
            stateless=True,
            json_response=True,
            security_settings=_NO_REBINDING_CHECK,
            max_request_body_size=services.settings.max_json_body_bytes,
        )
        try:
            async with manager.run():
                await manager.handle_request(scope, receive, send_with_headers)
        finally:
            _CALLER.reset(token)
