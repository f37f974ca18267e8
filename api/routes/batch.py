"""The async image batch (contract: Noxovision's base64 batch: ``202`` + ``Location``, per-item status).

Images are staged to the project's storage and the batch runs on the same durable queue and runners
as video tasks (``ib_`` ids); a bad item fails alone, a bad request is refused before anything is
staged.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api import task_access
from api.deadlines import MaxProcessingTimeHeader, deadline_of
from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses
from api.services import Services
from contract.errors import ErrorCode
from contract.steps import step_as_written
from contract.vision import BatchCreated, BatchRequest, BatchView
from pipelines.plan import check_resources
from pipelines.step_specs import plan_steps
from store import media, media_fetch
from store.records import TaskKind, TaskRecord

router = APIRouter(prefix="/v1/vision", tags=["vision"])

#: Task status → the batch status words of the Noxovision contract.
_BATCH_STATUS: Final[dict[str, str]] = {
    "pending": "pending",
    "running": "processing",
    "cancelling": "processing",
    "succeeded": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _stage_batch(body: BatchRequest, services: Services, project: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Decode every item's base64 strictly (a bad one is a 400 naming it) and stage it in storage."""
    settings = services.settings
    decoded = []
    for index, image in enumerate(body.images):
        field = f"images[{index}].data_base64"
        if image.data_base64.lstrip()[:5].lower() == "data:":
            message = "data_base64 must be raw base64, without a data: URI prefix"
            raise APIError(ErrorCode.INVALID_BASE64, message, field)
        decoded.append(media.decode_base64_limited(image.data_base64, settings, field, settings.max_image_bytes))
    staged: list[str] = []
    items: list[dict[str, Any]] = []
    try:
        for index, (image, data) in enumerate(zip(body.images, decoded, strict=True)):
            url = media.stage_to_storage(data, settings, project, ".img")
            staged.append(url)
            items.append({"index": index, "id": image.id, "url": url})
    except BaseException:
        media.delete_staged(staged, settings, project)
        raise
    return items, staged


@router.post("/batch", status_code=202, response_model=BatchCreated, responses=error_responses(413, 503))
async def create_batch(
    body: BatchRequest,
    project: ProjectDep,
    services: ServicesDep,
    response: Response,
    max_processing_time: MaxProcessingTimeHeader = None,
) -> BatchCreated:
    """Queue images for the steps; poll ``Location`` for per-item status and results."""
    settings = services.settings
    deadline = deadline_of(max_processing_time, settings)
    if len(body.images) > settings.max_batch_images:
        message = f"at most {settings.max_batch_images} images per batch"
        raise APIError(ErrorCode.TOO_MANY_IMAGES, message, "images")
    check_resources(plan_steps(body.steps), body.model, settings)
    if body.webhook is not None:
        await run_in_threadpool(media_fetch.check_url_allowed, body.webhook.url, settings, "webhook.url")
    services.objects_or_raise()
    items, staged = await run_in_threadpool(_stage_batch, body, services, project)
    request = {
        "kind": TaskKind.IMAGE_BATCH.value,
        "images": items,
        "steps": [step_as_written(step) for step in body.steps],
        "model": body.model,
    }
    task = await task_access.enqueue(services, project, TaskKind.IMAGE_BATCH, request, body.model, staged, deadline)
    response.headers["Location"] = f"/v1/vision/batch/{task.id}"
    return BatchCreated(job_id=task.id, status="pending", images=len(items))


def _batch_view(task: TaskRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "job_id": task.id,
        "status": _BATCH_STATUS.get(task.status, task.status),
        "created_at": task.created_at.isoformat(),
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "processed_images": task.processed_frames,
        "total_images": len(task.request.get("images", [])) if task.request else None,
        "max_processing_time_s": task.max_processing_time_s,
        "max_processing_time_clamped": task.deadline_clamped,
    }
    if task.result is not None:
        view["items"] = task.result.get("items", [])
    if task.error_code is not None:
        view["error"] = {"code": task.error_code, "message": task.error_message}
    return view


@router.get(
    "/batch/{job_id}", response_model=BatchView, response_model_exclude_unset=True, responses=error_responses(404)
)
async def get_batch(job_id: str, project: ProjectDep, services: ServicesDep) -> BatchView:
    """The batch's status; ``items`` (per image: status, size, targets or error) once it has finished."""
    task = await task_access.get_task(services, project, job_id, TaskKind.IMAGE_BATCH)
    return BatchView.model_validate(_batch_view(task))


@router.post(
    "/batch/{job_id}/cancel",
    response_model=BatchView,
    response_model_exclude_unset=True,
    responses=error_responses(404),
)
async def cancel_batch(job_id: str, project: ProjectDep, services: ServicesDep, response: Response) -> BatchView:
    """Stop a batch: pending → cancelled at once; processing → stops before its next image (202)."""
    task = await task_access.cancel_task(services, project, job_id, TaskKind.IMAGE_BATCH)
    response.status_code = 202 if task.status == "cancelling" else 200
    response.headers["Location"] = f"/v1/vision/batch/{task.id}"  # every 202 says where to look
    return BatchView.model_validate(_batch_view(task))


@router.delete("/batch/{job_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_batch(job_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Delete the batch, its results and its staged images."""
    await task_access.delete_task(services, project, job_id, TaskKind.IMAGE_BATCH)
    return Response(status_code=204)
