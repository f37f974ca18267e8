"""The MCP tools: each one is the REST route it mirrors, called with the same body model.

A tool's arguments are the route's JSON body fields, validated by the contract's model
(:class:`contract.vision.DetectImageRequest`, :class:`contract.video.ProcessRequest`, ...), so a bad
argument is the REST 400 envelope naming the field (``image.base64``, ``input[0].url``). The work is
the route's own function (``api.routes.vision.detect`` ...), so an answer is the REST response body.

| tool | mirrors | scope | rate-limit category |
|---|---|---|---|
| ``detect`` / ``ocr`` / ``describe`` | ``POST /v1/vision/{detect,ocr,describe}`` | write | vision |
| ``process_video`` | ``POST /v1/video/process`` | write | video |
| ``get_task`` | ``GET /v1/video/tasks/{id}`` (+ ``/results``) | read | video |
| ``search_collection`` | ``POST /v1/vectors/collections/{id}/search`` | search | vectors |
| ``list_files`` | ``GET /v1/storage/files`` | read | storage |
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError, WithJsonSchema

from api import task_access, video_submit
from api.deadlines import deadline_of
from api.mcp_server import Caller, run_tool
from api.routes import storage, vectors, video, vision
from contract.common import RequestBody, plan_error
from contract.errors import ErrorCode, VisionGridError
from contract.vectors import SearchRequest
from contract.video import ProcessRequest, TaskCreated
from contract.vision import DescribeImageRequest, DetectImageRequest, ImageIn, OCRImageRequest
from pipelines.chunks import EMBEDDINGS_KEY
from store.records import TaskKind

__all__ = ["build_server"]

_M = TypeVar("_M", bound=BaseModel)

#: An image argument: any JSON object, validated by the contract (so its errors name ``image.*``),
#: advertised with the contract's schema.
ImageArg = Annotated[dict[str, Any], WithJsonSchema(ImageIn.model_json_schema())]


def _body(model: type[_M], values: dict[str, Any]) -> _M:
    """The contract's model of the arguments given (omitted ones take the model's defaults)."""
    try:
        return model.model_validate({name: value for name, value in values.items() if value is not None})
    except ValidationError as error:
        raise plan_error(error) from None


def _json(response: Any) -> dict[str, Any]:
    """The body of a route's ``JSONResponse``."""
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


async def detect(
    image: ImageArg,
    classes: list[str] | None = None,
    min_confidence: float | None = None,
    model: str | None = None,
) -> CallToolResult:
    """Detect objects in one image: boxes, labels, scores (as POST /v1/vision/detect). ``classes``: COCO
    names or aliases (default all); ``model``: a registered detector. Needs a write-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        values = {"image": image, "classes": classes, "min_confidence": min_confidence, "model": model}
        body = _body(DetectImageRequest, values)
        return _json(await vision.detect(body, caller.key.project, caller.services))

    return await run_tool("vision_detect", "vision", call)


async def ocr(image: ImageArg, min_confidence: float | None = None) -> CallToolResult:
    """Read the text lines of one image in reading order; ``text`` joins them (as POST /v1/vision/ocr).
    Needs a write-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        body = _body(OCRImageRequest, {"image": image, "min_confidence": min_confidence})
        return _json(await vision.ocr(body, caller.key.project, caller.services))

    return await run_tool("vision_ocr", "vision", call)


async def describe(image: ImageArg, model: str | None = None) -> CallToolResult:
    """Describe one image from what the models see: objects, counts, positions, text (as POST
    /v1/vision/describe); ``model`` routes to a configured external provider. Needs a write-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        body = _body(DescribeImageRequest, {"image": image, "model": model})
        return _json(await vision.describe(body, caller.key.project, caller.services))

    return await run_tool("vision_describe", "vision", call)


async def process_video(
    input: list[dict[str, Any]],  # the REST body's field name
    steps: list[dict[str, Any]],
    model: str | None = None,
    max_processing_time: float | None = None,
) -> CallToolResult:
    """Submit a video task (as POST /v1/video/process with a JSON body): ``input`` is one
    {type: video_url|video_base64, url|data, sampling?, range?, max_frames?}; ``steps`` like
    [{"model": "detect", "parameters": {"classes": ["person"]}}, {"model": "track"}];
    ``max_processing_time`` in seconds (the Max-Processing-Time header). Poll it with get_task.
    Needs a write-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        body = _body(ProcessRequest, {"input": input, "steps": steps, "model": model})
        deadline = _deadline(max_processing_time, caller)
        task = await video_submit.submit(caller.services, caller.key.project, body, None, deadline)
        created = TaskCreated(id=task.id, status=task.status, stream_url=f"/v1/video/tasks/{task.id}/stream")
        return {**created.model_dump(mode="json"), "location": f"/v1/video/tasks/{task.id}"}

    return await run_tool("video_process", "video", call)


def _deadline(seconds: float | None, caller: Caller) -> tuple[float | None, float | None]:
    if seconds is None:
        return None, None
    if seconds < 0:
        raise VisionGridError(
            ErrorCode.INVALID_REQUEST, "must be a non-negative number of seconds", "max_processing_time"
        )
    return deadline_of(f"{seconds:.9f}".rstrip("0").rstrip("."), caller.services.settings)


class _TaskArgs(RequestBody):
    task_id: Annotated[StrictStr, Field(min_length=1, max_length=200)]


async def get_task(task_id: str, include_results: bool = True) -> CallToolResult:
    """A video task's status and progress, and its per-track results once it has succeeded (as GET
    /v1/video/tasks/{id} and /results; ``results`` is null before). Needs a read-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        args = _body(_TaskArgs, {"task_id": task_id})
        task = await task_access.get_task(caller.services, caller.key.project, args.task_id, TaskKind.VIDEO)
        results = None
        if include_results and task.status == "succeeded" and task.result is not None:
            results = {key: value for key, value in task.result.items() if key != EMBEDDINGS_KEY}
        return {"task": video.task_view(task).model_dump(mode="json", exclude={"request"}), "results": results}

    return await run_tool("video_get_task", "video", call)


async def search_collection(
    collection_id: str,
    text_query: str | None = None,
    image: ImageArg | None = None,
    image_url: str | None = None,
    image_path: str | None = None,
    image_data: str | None = None,
    track: dict[str, Any] | None = None,
    vector: list[float] | None = None,
    space: str | None = None,
    text_weight: float | None = None,
    image_weight: float | None = None,
    top_k: int | None = None,
    where: dict[str, Any] | None = None,
) -> CallToolResult:
    """Nearest items of a collection by text, image, a video track ({task_id, track_id}) or a raw
    vector (+ ``space``); several → weighted fusion (as POST /v1/vectors/collections/{id}/search).
    Needs a search-scoped key."""
    values = {
        "text_query": text_query,
        "image": image,
        "image_url": image_url,
        "image_path": image_path,
        "image_data": image_data,
        "track": track,
        "vector": vector,
        "space": space,
        "text_weight": text_weight,
        "image_weight": image_weight,
        "top_k": top_k,
        "where": where,
    }

    async def call(caller: Caller) -> dict[str, Any]:
        body = _body(SearchRequest, values)
        found = await vectors.search(collection_id, body, caller.key.project, caller.services)
        return found.model_dump(mode="json")

    return await run_tool("vectors_search", "vectors", call)


class _ListArgs(RequestBody):
    """``GET /v1/storage/files``'s query parameters, with its limits."""

    path: Annotated[StrictStr, Field(max_length=1024)] = ""
    cursor: Annotated[StrictStr, Field(max_length=2048)] | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


async def list_files(path: str = "", cursor: str | None = None, limit: int = 100) -> CallToolResult:
    """Files in the project's storage under a folder ``path`` (paged by ``cursor``), with their
    ``storage://`` URLs for the image and video inputs (as GET /v1/storage/files). Needs a read-scoped key."""

    async def call(caller: Caller) -> dict[str, Any]:
        args = _body(_ListArgs, {"path": path, "cursor": cursor, "limit": limit})
        listing = await storage.list_files(caller.key.project, caller.services, args.path, args.cursor, args.limit)
        return listing.model_dump(mode="json")

    return await run_tool("storage_list_files", "storage", call)


_READ_ONLY = ToolAnnotations(read_only_hint=True)


def build_server() -> MCPServer:
    """The MCP server with VisionGrid's tools (each checks its own scope and rate limit).

    The SDK's constructor calls ``logging.basicConfig`` (a rich handler on the root logger at INFO);
    a library must not configure the host's logging, so a placeholder handler makes that a no-op."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server = MCPServer(
            name="visiongrid",
            version="0.1.0",
            instructions="VisionGrid: detect, read and describe images, run video tasks, search vector "
            "collections and list stored files, with the same API key and scopes as the REST API.",
            log_level="WARNING",
        )
    finally:
        root.removeHandler(placeholder)
    server.add_tool(detect, annotations=_READ_ONLY)
    server.add_tool(ocr, annotations=_READ_ONLY)
    server.add_tool(describe, annotations=_READ_ONLY)
    server.add_tool(process_video)
    server.add_tool(get_task, annotations=_READ_ONLY)
    server.add_tool(search_collection, annotations=_READ_ONLY)
    server.add_tool(list_files, annotations=_READ_ONLY)
    return server
