"""Video tasks: enqueue, list, inspect, stream, results, cancel, delete (contract: VisoWork Video API)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api import task_access, video_submit
from api.deadlines import MaxProcessingTimeHeader, deadline_of
from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses
from api.services import Services
from api.sse import SSE_OPENAPI, archive_stream, sse_response
from api.sse import last_event_id as last_event_id_of
from api.task_outputs import annotated_view, with_presigned_outputs
from contract.chunks import TaskResult
from contract.errors import ErrorCode, PlanError
from contract.video import AnnotatedVideo, TaskCreated, TaskError, TaskList, TaskProgress, TaskView
from pipelines.chunks import EMBEDDINGS_KEY
from store.media_fetch import redact_url
from store.records import TaskKind, TaskRecord

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
        max_processing_time_s=task.max_processing_time_s,
        max_processing_time_clamped=task.deadline_clamped,
        request=_redacted(task.request) if include_request else None,
    )


def _has_url(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("url"), str)


def _redacted(request: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored request without credentials in its input URLs (a camera's ``rtsp://user:pass@``)."""
    if not request or not isinstance(request.get("input"), list):
        return request
    inputs = [{**item, "url": redact_url(item["url"])} if _has_url(item) else item for item in request["input"]]
    return {**request, "input": inputs}


@router.post(
    "/process",
    status_code=202,
    response_model=TaskCreated,
    responses=error_responses(404, 413, 503),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ProcessRequest"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
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
    steps: Annotated[str, Query(max_length=200, description="binary body: comma-separated step models")] = "detect",
    classes: Annotated[
        str | None, Query(max_length=2000, description="binary body: detect classes, comma-separated")
    ] = None,
    sampling: Annotated[Literal["fps", "keyframe", "interval"], Query()] = "fps",
    value: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    max_frames: Annotated[int | None, Query(ge=1, le=2**31)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    annotated: Annotated[bool, Query(description="binary body: output.annotated_video")] = False,
    previews: Annotated[bool, Query(description="binary body: output.track_previews")] = False,
    max_processing_time: MaxProcessingTimeHeader = None,
) -> TaskCreated:
    """Enqueue a task from a JSON request, or from a raw video body (``Content-Type: video/*``,
    options in the query string, Noxovision style); the video is staged to storage first."""
    deadline = deadline_of(max_processing_time, services.settings)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: bytes | None = None
    if content_type.startswith(video_submit.VIDEO_BODY_TYPES):
        raw = await video_submit.read_video_body(request, services.settings.max_video_bytes)
        output = {"annotated_video": annotated, "track_previews": previews} if annotated or previews else None
        body = video_submit.binary_request(steps, classes, sampling, value, max_frames, model, output)
    else:
        body = video_submit.json_request(await request.body())
    task = await video_submit.submit(services, project, body, raw, deadline)
    response.headers["Location"] = f"/v1/video/tasks/{task.id}"
    return TaskCreated(id=task.id, status=task.status, stream_url=_stream_url(task.id))


_INT64_MAX = 2**63 - 1
_LIST_FIELDS = {"cursor": "cursor", "created_from": "from", "created_to": "to"}


def _parse_time(value: str | None, field: str) -> dt.datetime | None:
    """An ISO-8601 date-time in UTC (naive means UTC); one that cannot be held in UTC is a 400."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError) as error:
        raise APIError(
            ErrorCode.INVALID_REQUEST, f"{field}: not a usable ISO-8601 date-time: {value!r}", field
        ) from error


def _task_or_404(services: Services, project: str, task_id: str) -> Any:
    return task_access.get_task(services, project, task_id, TaskKind.VIDEO)


@router.get("/tasks", response_model=TaskList, responses=error_responses())
async def list_tasks(
    project: ProjectDep,
    services: ServicesDep,
    status: Annotated[
        Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"] | None, Query()
    ] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description="ISO-8601, on creation time")] = None,
    to: Annotated[str | None, Query(max_length=64, description="ISO-8601, on creation time")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TaskList:
    created_from, created_to = _parse_time(from_, "from"), _parse_time(to, "to")
    try:
        page, next_cursor = await run_in_threadpool(
            lambda: services.tasks.list(
                project, status=status, created_from=created_from, created_to=created_to, cursor=cursor, limit=limit
            )
        )
    except ValueError as error:
        field = _LIST_FIELDS.get(str(error), "cursor")
        raise PlanError(field, f"not a usable {field}") from error
    return TaskList(data=[task_view(task) for task in page], next_cursor=next_cursor)


@router.get("/tasks/{task_id}", response_model=TaskView, responses=error_responses(404))
async def get_task(
    task_id: str,
    project: ProjectDep,
    services: ServicesDep,
    include: Annotated[Literal["request"] | None, Query(description="'request': echo the stored request")] = None,
) -> JSONResponse:
    task = await _task_or_404(services, project, task_id)
    view = task_view(task, include_request=include == "request")
    body = view.model_dump(mode="json", exclude={"request"} if include != "request" else set())
    return JSONResponse(body)


def _start_offset(offset: int | None, last_event_id: str | None) -> int:
    if offset is not None or not last_event_id:
        return offset or 0
    return last_event_id_of(last_event_id, "a byte offset") or 0


@router.get(
    "/tasks/{task_id}/stream", response_class=StreamingResponse, responses={200: SSE_OPENAPI, **error_responses(404)}
)
async def stream(
    task_id: str,
    project: ProjectDep,
    services: ServicesDep,
    offset: Annotated[int | None, Query(ge=0, le=_INT64_MAX, description="byte offset to replay from")] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """SSE: replay from a byte offset (``?offset=`` or ``Last-Event-ID``), then tail live; every
    ``data:`` line is a :class:`Chunk` and the stream ends with ``data: [DONE]``."""
    await _task_or_404(services, project, task_id)
    start = _start_offset(offset, last_event_id)
    settings = services.settings
    return sse_response(
        archive_stream(
            task_id=task_id,
            project=project,
            offset=start,
            tasks=services.tasks,
            archive=services.archive,
            poll_interval_s=settings.sse_poll_interval_s,
            heartbeat_interval_s=settings.sse_heartbeat_interval_s,
            terminal_grace_s=settings.sse_terminal_grace_s,
        )
    )


@router.get("/tasks/{task_id}/results", response_model=TaskResult, responses=error_responses(404))
async def results(
    task_id: str,
    project: ProjectDep,
    services: ServicesDep,
    include: Annotated[
        Literal["embeddings"] | None, Query(description="'embeddings': add each track's mean feature vector")
    ] = None,
) -> JSONResponse:
    """The per-track summary once ``succeeded`` (before that 404 ``task_not_succeeded`` + ``status``)."""
    task = await _task_or_404(services, project, task_id)
    if task.status != "succeeded" or task.result is None:
        raise APIError(ErrorCode.TASK_NOT_SUCCEEDED, f"task {task_id} is {task.status}", status=task.status)
    body = task.result if include == "embeddings" else {k: v for k, v in task.result.items() if k != EMBEDDINGS_KEY}
    return JSONResponse(await run_in_threadpool(with_presigned_outputs, services, project, body))


@router.get("/tasks/{task_id}/annotated", response_model=AnnotatedVideo, responses=error_responses(404, 503))
async def annotated(task_id: str, project: ProjectDep, services: ServicesDep) -> AnnotatedVideo:
    """The annotated MP4 of a task submitted with ``output.annotated_video`` (a presigned GET): boxes,
    track ids and trails on the analysed frames, one frame per chunk. Rendered by the task's worker."""
    task = await _task_or_404(services, project, task_id)
    return await run_in_threadpool(annotated_view, services, project, task)


@router.post("/tasks/{task_id}/cancel", response_model=TaskView, responses=error_responses(404))
async def cancel(task_id: str, project: ProjectDep, services: ServicesDep, response: Response) -> TaskView:
    """Running → ``cancelling`` (202; the runner stops at the next chunk); pending → ``cancelled`` (200)."""
    task = await task_access.cancel_task(services, project, task_id, TaskKind.VIDEO)
    response.status_code = 202 if task.status == "cancelling" else 200
    response.headers["Location"] = f"/v1/video/tasks/{task.id}"  # every 202 says where to look
    return task_view(task)


@router.delete("/tasks/{task_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_task(task_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Delete the task, its archive and its staged media; a running task's runner stops writing."""
    await task_access.delete_task(services, project, task_id, TaskKind.VIDEO)
    return Response(status_code=204)
