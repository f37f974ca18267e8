"""MCP end to end on the real cluster: the SDK's client over real HTTP to the Ray Serve ingress lists
the tools, detects on a real photo, submits a video task and reads its results back."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx2
from mcp.client import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import Service


async def _session_run(service: Service) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {service.key_a}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{service.base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        detected = await session.call_tool("detect", {"image": {"url": f"{service.media_url}/dog.jpg"}})
        video = {"type": "video_url", "url": f"{service.media_url}/walk.mp4", "sampling": {"mode": "fps", "value": 5}}
        created = await session.call_tool("process_video", {"input": [video], "steps": [{"model": "detect"}]})
        assert not created.is_error, created.content
        assert created.structured_content is not None
        task_id = created.structured_content["id"]
        deadline = time.monotonic() + 90
        while True:
            got = await session.call_tool("get_task", {"task_id": task_id})
            assert not got.is_error and got.structured_content is not None, got.content
            if got.structured_content["task"]["status"] in {"succeeded", "failed", "cancelled"}:
                break
            assert time.monotonic() < deadline, got.structured_content
            await anyio.sleep(0.2)
        return {"tools": tools, "detected": detected.structured_content, "task": got.structured_content}


def test_mcp_through_the_ray_ingress(service: Service) -> None:
    out = anyio.run(_session_run, service)
    assert {"detect", "process_video", "get_task"} <= out["tools"]
    assert "dog" in {target["class"] for target in out["detected"]["targets"]}, out["detected"]
    task = out["task"]
    assert task["task"]["status"] == "succeeded", task
    assert task["results"] is not None and task["results"]["tracks"], task
