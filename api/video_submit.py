"""Submitting a video task: a JSON request or a raw video body becomes a stored ``pending`` task.

Everything is checked before anything is staged or stored (the contract, then what only the
server knows: registered detectors, configured providers, the feature step's collection, the
media URL's policy), so a refused request leaves nothing behind.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import APIError
from api.services import Services
from api.task_access import enqueue
from contract.common import plan_error
from contract.errors import ErrorCode, PlanError
from contract.steps import step_as_written
from contract.video import ProcessRequest, VideoInput
from pipelines.decode_live import is_live_url, scheme_supported
from pipelines.plan import check_resources
from pipelines.step_specs import StepPlan, plan_steps
from store import media, media_fetch
from store.objects import ObjectNotFound, normalise_path, storage_url
from store.records import TaskKind, TaskRecord
from visiongrid.settings import Settings

__all__ = ["VIDEO_BODY_TYPES", "binary_request", "json_request", "read_video_body", "submit"]

VIDEO_BODY_TYPES = ("video/", "application/octet-stream")
_PLACEHOLDER_URL = "storage://staged/upload"  # a raw body's URL until the body is staged


def json_request(body: bytes) -> ProcessRequest:
    """Parse like every other JSON route (Python's ``json``, as FastAPI does: ``NaN`` parses and is then
    refused by the contract naming its field; a lone surrogate escape parses and is refused the same way)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise PlanError("body", f"request body is not valid JSON: {error}", ErrorCode.INVALID_JSON) from None
    try:
        return ProcessRequest.model_validate(data)
    except ValidationError as error:
        raise plan_error(error) from None


def binary_request(
    steps: str,
    classes: str | None,
    sampling: Literal["fps", "keyframe", "interval"],
    value: float | None,
    max_frames: int | None,
    model: str | None,
    output: dict[str, bool] | None = None,
) -> ProcessRequest:
    """The JSON request a raw-body upload stands for (its URL is replaced once the body is staged)."""
    parameters = {"classes": [c.strip() for c in classes.split(",") if c.strip()]} if classes else {}
    raw = {
        "input": [
            {
                "type": "video_url",
                "url": _PLACEHOLDER_URL,
                "sampling": {"mode": sampling, "value": value},
                "max_frames": max_frames,
            }
        ],
        "steps": [{"model": name.strip(), "parameters": parameters} for name in steps.split(",") if name.strip()],
        "model": model,
        "output": output or None,
    }
    try:
        return ProcessRequest.model_validate(raw)
    except ValidationError as error:
        raise plan_error(error) from None


async def read_video_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(ErrorCode.MEDIA_TOO_LARGE, f"video is {declared} bytes, limit is {limit}", "body")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise APIError(ErrorCode.MEDIA_TOO_LARGE, f"video is larger than {limit} bytes", "body")
        chunks.append(chunk)
    if not received:
        raise APIError(ErrorCode.INVALID_REQUEST, "the request body is empty", "body")
    return b"".join(chunks)


def _stored_input(item: VideoInput, url: str, settings: Settings) -> dict[str, Any]:
    """The stored form of an input: defaults filled in, the media named by the URL runners read."""
    sampling: dict[str, Any] = item.sampling.model_dump() if item.sampling else {"mode": "fps", "value": None}
    if sampling["value"] is None and sampling["mode"] == "fps":
        sampling["value"] = settings.default_sampling_fps
    if sampling["value"] is None and sampling["mode"] == "interval":
        sampling["value"] = 1
    live = item.type == "live" or is_live_url(url)
    stored: dict[str, Any] = {
        "type": "live" if live else item.type,
        "url": url,
        "sampling": sampling,
        "range": item.range.model_dump() if item.range else None,
        # a live source runs until it ends, is cancelled, or reaches a limit the request set
        "max_frames": item.max_frames if live else (item.max_frames or settings.default_max_frames),
    }
    if item.max_duration_s is not None:
        stored["max_duration_s"] = item.max_duration_s
    return stored


def _stored_video(services: Services, project: str, url: str) -> str:
    """The normalised ``storage://`` URL of an existing object of the project (else 400 on the field)."""
    path = normalise_path(url, "input[0].url")
    try:
        services.objects_or_raise().head(project, path)
    except ObjectNotFound:
        raise APIError(ErrorCode.MEDIA_NOT_FOUND, f"no stored file {url!r} in this project", "input[0].url") from None
    return storage_url(path)


async def _check_collection(services: Services, project: str, steps: StepPlan) -> None:
    """The feature step's collection exists in this project and has an image space for the tracks."""
    step = steps.get("feature")
    assert step is not None and steps.collection is not None
    field = f"steps[{step.index}].parameters.collection"
    record = await run_in_threadpool(services.collections_or_raise().get, project, steps.collection)
    if record is None:
        raise APIError(ErrorCode.NOT_FOUND, f"collection {steps.collection} not found", field)
    if "image" not in record.spaces:
        message = f"collection model {record.model!r} has no image space for tracks"
        raise APIError(ErrorCode.MODEL_MISMATCH, message, field)


async def _media_url(services: Services, project: str, item: VideoInput, raw: bytes | None) -> tuple[str, list[str]]:
    """The URL runners will read, and what was staged for it (deleted with the task)."""
    settings = services.settings
    if raw is not None or item.type == "video_base64":
        if raw is None:
            assert item.data is not None
            raw = await run_in_threadpool(media.decode_base64, item.data, settings, "input[0].data")
        url = await run_in_threadpool(media.stage_to_storage, raw, settings, project)
        return url, [url]
    assert item.url is not None
    if item.type == "live" or is_live_url(item.url):  # FFmpeg connects itself; checked again at each (re)open
        await run_in_threadpool(media_fetch.check_live_url_allowed, item.url, settings, "input[0].url")
        scheme = urlsplit(item.url).scheme.lower()
        if not await run_in_threadpool(scheme_supported, scheme):
            message = f"this server's FFmpeg build has no {scheme}:// protocol"
            raise APIError(ErrorCode.UNSUPPORTED_PROTOCOL, message, "input[0].url")
        return item.url, []
    if item.url.startswith(media.STORAGE_SCHEME):
        return await run_in_threadpool(_stored_video, services, project, item.url), []
    resolved = await run_in_threadpool(media.resolve_media_url, item.url, settings, project, "input[0].url")
    if resolved.startswith(media.STORAGE_SCHEME):  # our own presigned URL: read through the object store
        return await run_in_threadpool(_stored_video, services, project, resolved), []
    return resolved, []


async def submit(
    services: Services,
    project: str,
    body: ProcessRequest,
    raw: bytes | None,
    deadline: tuple[float | None, float | None] = (None, None),
) -> TaskRecord:
    """Check what the contract cannot, stage the video if it came with the request, store the task."""
    settings = services.settings
    item = body.input[0]
    steps = plan_steps(body.steps)
    check_resources(steps, body.model, settings)
    if steps.collection is not None:
        await _check_collection(services, project, steps)
    if body.webhook is not None:
        await run_in_threadpool(media_fetch.check_url_allowed, body.webhook.url, settings, "webhook.url")
    url, staged = await _media_url(services, project, item, raw)
    request: dict[str, Any] = {
        "input": [_stored_input(item, url, settings)],
        "steps": [step_as_written(step) for step in body.steps],
        "model": body.model,
    }
    if body.output is not None:
        request["output"] = body.output.model_dump()
    return await enqueue(services, project, TaskKind.VIDEO, request, body.model, staged, deadline, body.webhook)
