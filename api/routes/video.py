"""Video tasks: enqueue, list, inspect, stream, results, cancel, delete (contract: VisoWork Video API)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api import task_access
from api.deps import ProjectDep, ServicesDep
from api.errors import APIError
from api.schemas import (
    ProcessRequest,
    SamplingIn,
    StepIn,
    TaskCreated,
    TaskError,
    TaskList,
    TaskProgress,
    TaskView,
    VideoInput,
)
from api.services import Services
from api.sse import archive_stream, sse_response
from pipelines.chunks import EMBEDDINGS_KEY
from pipelines.plan import TaskPlan, check_resources
from store import media
from store.objects import ObjectNotFound, normalise_path, storage_url
from store.records import TASK_STATUSES, TaskRecord
from store.tasks import VIDEO_TASK_PREFIX
from visiongrid.settings import Settings

router = APIRouter(prefix="/v1/video", tags=["video"])


def _stream_url(task_id: str) -> str:
    return f"/v1/video/tasks/{task_id}/stream"


def task_view(task: TaskRecord, include_request: bool = False) -> TaskView:
    percent = None
    if task.total_frames and task.last_frame_index is not None:
        percent = round(min(100.0, 100.0 * (task.last_frame_index + 1) / task.total_frames), 1)
    if task.status == "succeeded":
        percent = 100.0
    return TaskView(
        id=task.id,
        status=task.status,
        model=task.model,
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        progress=TaskProgress(
            processed_frames=task.processed_frames,
            last_frame_index=task.last_frame_index,
            total_frames=task.total_frames,
            percent=percent,
        ),
        usage=task.usage,
        finish_reason=task.finish_reason,
        error=TaskError(code=task.error_code, message=task.error_message) if task.error_code else None,
        stream_url=_stream_url(task.id),
        results_url=f"/v1/video/tasks/{task.id}/results",
        request=task.request if include_request else None,
    )


def _normalised_input(item: VideoInput, settings: Settings) -> dict[str, Any]:
    """The stored form of an input: defaults filled in, base64 replaced by its staged path."""
    sampling: dict[str, Any] = item.sampling.model_dump() if item.sampling else {"mode": "fps", "value": None}
    if sampling["value"] is None and sampling["mode"] == "fps":
        sampling["value"] = settings.default_sampling_fps
    if sampling["value"] is None and sampling["mode"] == "interval":
        sampling["value"] = 1
    return {
        "type": item.type,
        "url": item.url,
        "sampling": sampling,
        "range": item.range.model_dump() if item.range else None,
        "max_frames": item.max_frames or settings.default_max_frames,
    }


def _stored_video(services: Services, project: str, url: str) -> str:
    """The normalised ``storage://`` URL of an existing object of the project (else 400 on the field)."""
    path = normalise_path(url, "input[0].url")
    try:
        services.objects_or_raise().head(project, path)
    except ObjectNotFound:
        raise APIError(400, "media_not_found", f"no stored file {url!r} in this project", "input[0].url") from None
    return storage_url(path)


VIDEO_BODY_TYPES = ("video/", "application/octet-stream")


@router.post(
    "/process",
    status_code=202,
    response_model=TaskCreated,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ProcessRequest.model_json_schema()},
                "video/*": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def process(
    request: Request,
    project: ProjectDep,
    services: ServicesDep,
    response: Response,
    steps: Annotated[str, Query(description="binary body: comma-separated step models")] = "detect",
    classes: Annotated[str | None, Query(description="binary body: classes for detect, comma-separated")] = None,
    sampling: Annotated[Literal["fps", "keyframe", "interval"], Query()] = "fps",
    value: Annotated[float | None, Query(gt=0)] = None,
    max_frames: Annotated[int | None, Query(ge=1)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
) -> TaskCreated:
    """Enqueue a task from a JSON request, or from a raw video body (``Content-Type: video/*``,
    options in the query string, Noxovision style); the video is staged to storage first."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: bytes | None = None
    if content_type.startswith(VIDEO_BODY_TYPES):
        raw = await _read_video_body(request, services.settings.max_video_bytes)
        parameters = {"classes": [c.strip() for c in classes.split(",") if c.strip()]} if classes else {}
        try:
            body = _binary_request(steps, parameters, sampling, value, max_frames, model)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
    else:
        try:
            body = ProcessRequest.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
    task = await _enqueue(body, raw, project, services)
    response.headers["Location"] = f"/v1/video/tasks/{task.id}"
    return TaskCreated(id=task.id, status=task.status, stream_url=_stream_url(task.id))


def _binary_request(
    steps: str,
    parameters: dict[str, Any],
    sampling: Literal["fps", "keyframe", "interval"],
    value: float | None,
    max_frames: int | None,
    model: str | None,
) -> ProcessRequest:
    """The JSON request a raw-body upload stands for (its URL is replaced once the body is staged)."""
    return ProcessRequest(
        input=[
            VideoInput(
                type="video_url",
                url="storage://staged/upload",  # replaced by the staged object below
                sampling=SamplingIn(mode=sampling, value=value),
                max_frames=max_frames,
            )
        ],
        steps=[StepIn(model=name.strip(), parameters=parameters) for name in steps.split(",") if name.strip()],
        model=model,
    )


async def _read_video_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(413, "media_too_large", f"video is {declared} bytes, limit is {limit}", "body")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise APIError(413, "media_too_large", f"video is larger than {limit} bytes", "body")
        chunks.append(chunk)
    if not received:
        raise APIError(400, "invalid_request", "the request body is empty", "body")
    return b"".join(chunks)


async def _enqueue(body: ProcessRequest, raw: bytes | None, project: str, services: Services) -> TaskRecord:
    """Validate, stage the video if it came with the request, store the task as ``pending``."""
    settings = services.settings
    item = body.input[0]
    request: dict[str, Any] = {
        "input": [_normalised_input(item, settings)],
        "steps": [step.model_dump() for step in body.steps],
        "model": body.model,
    }
    # PlanError → 400 naming the field, before anything is staged or stored
    plan = TaskPlan.from_request({**request, "input": [{**request["input"][0], "url": item.url or "storage://staged"}]})
    check_resources(plan.steps, plan.model_hint, settings)
    if plan.steps.collection is not None:
        await _check_collection(services, project, plan)
    staged: list[str] = []
    if raw is not None or item.type == "video_base64":
        if raw is None:
            assert item.data is not None
            raw = await run_in_threadpool(media.decode_base64, item.data, settings, "input[0].data")
        url = await run_in_threadpool(media.stage_to_storage, raw, settings, project)
        request["input"][0]["url"] = url
        staged.append(url)
    elif item.url is not None and item.url.startswith(media.STORAGE_SCHEME):
        request["input"][0]["url"] = await run_in_threadpool(_stored_video, services, project, item.url)
    else:
        assert item.url is not None
        await run_in_threadpool(media.check_url_allowed, item.url, settings, "input[0].url")
    task = await run_in_threadpool(services.tasks.create, project, request, body.model, staged)
    if services.wake_workers is not None:
        services.wake_workers()
    return task


async def _check_collection(services: Services, project: str, plan: TaskPlan) -> None:
    """The feature step's collection exists in this project and has an image space for the tracks."""
    step = plan.steps.get("feature")
    assert step is not None and plan.steps.collection is not None
    field = f"steps[{step.index}].parameters.collection"
    record = await run_in_threadpool(services.collections_or_raise().get, project, plan.steps.collection)
    if record is None:
        raise APIError(404, "not_found", f"collection {plan.steps.collection} not found", field)
    if "image" not in record.spaces:
        raise APIError(400, "model_mismatch", f"collection model {record.model!r} has no image space for tracks", field)


def _parse_time(value: str | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise APIError(400, "invalid_request", f"{field}: not an ISO-8601 date-time: {value!r}", field) from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@router.get("/tasks", response_model=TaskList)
async def list_tasks(
    project: ProjectDep,
    services: ServicesDep,
    status: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TaskList:
    if status is not None and status not in TASK_STATUSES:
        raise APIError(400, "invalid_request", f"status must be one of {list(TASK_STATUSES)}", "status")
    created_from, created_to = _parse_time(from_, "from"), _parse_time(to, "to")
    try:
        page, next_cursor = await run_in_threadpool(
            lambda: services.tasks.list(
                project, status=status, created_from=created_from, created_to=created_to, cursor=cursor, limit=limit
            )
        )
    except ValueError as error:
        raise APIError(400, "invalid_request", f"invalid cursor: {error}", "cursor") from error
    return TaskList(data=[task_view(task) for task in page], next_cursor=next_cursor)


async def _task_or_404(services: ServicesDep, project: str, task_id: str) -> TaskRecord:
    return await task_access.get_task(services, project, task_id, prefix=VIDEO_TASK_PREFIX, noun="task")


@router.get("/tasks/{task_id}", response_model=TaskView, response_model_exclude_none=False)
async def get_task(
    task_id: str, project: ProjectDep, services: ServicesDep, include: str | None = None
) -> JSONResponse:
    task = await _task_or_404(services, project, task_id)
    view = task_view(task, include_request=include == "request")
    body = view.model_dump(mode="json", exclude={"request"} if include != "request" else set())
    return JSONResponse(body)


@router.get("/tasks/{task_id}/stream")
async def stream(
    task_id: str,
    project: ProjectDep,
    services: ServicesDep,
    offset: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Replay from a byte offset (``?offset=`` or ``Last-Event-ID``), then tail live."""
    await _task_or_404(services, project, task_id)
    start = offset
    if start is None and last_event_id:
        if not last_event_id.strip().isdigit():
            raise APIError(400, "invalid_request", "Last-Event-ID must be a byte offset", "Last-Event-ID")
        start = int(last_event_id.strip())
    settings = services.settings
    return sse_response(
        archive_stream(
            task_id=task_id,
            project=project,
            offset=start or 0,
            tasks=services.tasks,
            archive=services.archive,
            poll_interval_s=settings.sse_poll_interval_s,
            heartbeat_interval_s=settings.sse_heartbeat_interval_s,
            terminal_grace_s=settings.sse_terminal_grace_s,
        )
    )


@router.get("/tasks/{task_id}/results")
async def results(
    task_id: str,
    project: ProjectDep,
    services: ServicesDep,
    include: Annotated[str | None, Query(description="'embeddings': add each track's mean feature vector")] = None,
) -> dict[str, Any]:
    if include not in (None, "embeddings"):
        raise APIError(400, "invalid_request", "include must be 'embeddings'", "include")
    task = await _task_or_404(services, project, task_id)
    if task.status != "succeeded" or task.result is None:
        raise APIError(404, "task_not_succeeded", f"task {task_id} is {task.status}", status=task.status)
    if include == "embeddings":
        return task.result
    return {key: value for key, value in task.result.items() if key != EMBEDDINGS_KEY}


@router.post("/tasks/{task_id}/cancel", response_model=TaskView)
async def cancel(task_id: str, project: ProjectDep, services: ServicesDep, response: Response) -> TaskView:
    """Running → ``cancelling`` (the runner stops at the next chunk); pending → ``cancelled``."""
    task = await task_access.cancel_task(services, project, task_id, prefix=VIDEO_TASK_PREFIX, noun="task")
    response.status_code = 202 if task.status == "cancelling" else 200
    return task_view(task)


@router.delete("/tasks/{task_id}", status_code=204)
async def delete_task(task_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Delete the task, its archive and its staged media; a running task's runner stops writing."""
    await task_access.delete_task(services, project, task_id, prefix=VIDEO_TASK_PREFIX, noun="task")
    return Response(status_code=204)
