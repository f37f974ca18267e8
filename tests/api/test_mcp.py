"""The MCP endpoint at ``/mcp`` driven by the official SDK's client (``ClientSession`` over its
streamable-HTTP transport), in-process over the real stores and the real detector."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from fastapi.testclient import TestClient
from mcp.client import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.api.conftest import Api, ApiFactory, assert_error

TOOLS = {"detect", "ocr", "describe", "process_video", "get_task", "search_collection", "list_files"}


@asynccontextmanager
async def mcp_session(api: Api, key: str) -> AsyncIterator[ClientSession]:
    """An initialised SDK client session against the app (ASGI in-process, JSON responses)."""
    transport = httpx2.ASGITransport(app=api.app)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(transport=transport, base_url="http://visiongrid.test", headers=headers) as http,
        streamable_http_client("http://visiongrid.test/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _run(api: Api, key: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[set[str], list[CallToolResult]]:
    """List the tools, then make ``calls`` in one session."""

    async def main() -> tuple[set[str], list[CallToolResult]]:
        async with mcp_session(api, key) as session:
            listed = await session.list_tools()
            results = [await session.call_tool(name, arguments) for name, arguments in calls]
            return {tool.name for tool in listed.tools}, results

    return anyio.run(main)


def _error(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    body: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert body == result.structured_content
    error: dict[str, Any] = body["error"]
    return error


def test_a_client_lists_the_tools_and_detects_on_a_real_photo(make_api: ApiFactory, media_dir: Path) -> None:
    api = make_api()
    photo = base64.b64encode((media_dir / "dog.jpg").read_bytes()).decode()
    names, (found,) = _run(api, api.key, [("detect", {"image": {"base64": photo}, "min_confidence": 0.3})])
    assert names == TOOLS
    assert not found.is_error, found.content
    body = found.structured_content
    assert body is not None and body["object"] == "vision.detect"
    assert json.loads(found.content[0].text) == body  # type: ignore[union-attr]
    labels = {target["class"] for target in body["targets"]}
    assert "dog" in labels, labels
    assert body["image"]["width"] > 0 and body["image"]["height"] > 0


def test_without_a_valid_key_mcp_is_a_401(make_api: ApiFactory) -> None:
    api = make_api()
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with TestClient(api.app) as http:
        for headers in ({}, {"Authorization": "Bearer vg_not-a-key"}, {"X-API-Key": "nope"}):
            response = http.post("/mcp", json=request, headers={"Accept": "application/json", **headers})
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_search_key_cannot_detect_but_can_search(make_api: ApiFactory, media_dir: Path) -> None:
    api = make_api()
    _, secret = api.services.keys.create(api.project, ("search",), "mcp-search")
    photo = base64.b64encode((media_dir / "dog.jpg").read_bytes()).decode()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("detect", {"image": {"base64": photo}}),
        ("list_files", {}),
        ("search_collection", {"collection_id": "c"}),
    ]
    _, (detect, listing, search) = _run(api, secret, calls)
    error = _error(detect)
    assert error["code"] == "insufficient_scope" and error["required_scope"] == "write", error
    assert _error(listing)["code"] == "insufficient_scope"  # read > search
    # search passes the scope check and reaches the collection lookup (no vectors deployment here)
    assert _error(search)["code"] != "insufficient_scope"


def test_a_bad_argument_names_its_field(make_api: ApiFactory) -> None:
    api = make_api()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("detect", {"image": {"url": "https://example.com/a.jpg", "base64": "AAAA"}}),
        ("detect", {"image": {"base64": "AAAA"}, "min_confidence": 2}),
        ("process_video", {"input": [{"type": "video_url"}], "steps": [{"model": "detect"}]}),
        ("get_task", {"task_id": "vt_nope"}),
        ("list_files", {"limit": 0}),
    ]
    _, (both, confidence, video, task, listing) = _run(api, api.key, calls)
    assert _error(both)["code"] == "invalid_request" and _error(both)["field"].startswith("image"), _error(both)
    assert _error(confidence)["field"] == "min_confidence"
    assert _error(video)["field"].startswith("input[0]"), _error(video)
    assert _error(task)["code"] == "not_found"
    assert _error(listing)["field"] == "limit"
    assert api.task_count() == 0


def test_tool_calls_count_in_their_rest_category(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_storage=2)
    _, results = _run(api, api.key, [("list_files", {})] * 3 + [("get_task", {"task_id": "vt_nope"})])
    assert not results[0].is_error and not results[1].is_error
    limited = _error(results[2])
    assert limited["code"] == "rate_limited" and limited["retry_after"] >= 1
    assert _error(results[3])["code"] == "not_found"  # video is another category
    with TestClient(api.app, headers=api.headers()) as http:  # the same window as the REST routes'
        assert_error(http.get("/v1/storage/files"), 429, "rate_limited")


def test_stateless_json_rpc_with_rate_limit_headers(make_api: ApiFactory) -> None:
    """Stateless: a bare ``tools/call`` needs no session (no ``Mcp-Session-Id`` is issued); the answer is
    JSON and carries the REST limiter's headers of the tool's category."""
    api = make_api()
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "list_files", "arguments": {}}}
    headers = {**api.headers(), "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    with TestClient(api.app) as http:
        response = http.post("/mcp", json=call, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "mcp-session-id" not in response.headers
    assert response.headers["RateLimit-Limit"] == str(api.services.settings.rate_limit_storage)
    result = response.json()["result"]
    assert result["isError"] is False and result["structuredContent"]["data"] == []


def test_mcp_disabled_is_a_404(make_api: ApiFactory) -> None:
    api = make_api(mcp_enabled=False)
    with TestClient(api.app) as http:
        response = http.post("/mcp", json={}, headers=api.headers())
    assert_error(response, 404, "not_found")


def test_an_oversized_mcp_body_is_refused_before_it_is_read(make_api: ApiFactory) -> None:
    api = make_api(max_json_body_bytes=1000)
    with TestClient(api.app, headers=api.headers(), raise_server_exceptions=False) as client:
        response = client.post("/mcp", content=b"{" + b" " * 5000 + b"}", headers={"content-type": "application/json"})
    assert_error(response, 413, "body_too_large", "body")
