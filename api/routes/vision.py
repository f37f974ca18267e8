"""Vision: synchronous image endpoints (detect, OCR, describe), the async image batch, the model list.

Contracts: VisoWork ``/v1/vision/*`` (synchronous, one image) and Noxovision's base64 image batch
(``202`` + ``Location``, per-item status and results). A single image goes through the same step
executor as a video frame, and its ``targets`` have exactly the shape of a video chunk's.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool
from ulid import ULID

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, not_found
from api.schemas import BatchRequest, DescribeImageRequest, DetectImageRequest, ImageIn, OCRImageRequest
from api.services import Services
from models.registry import load_registry
from pipelines.chunks import image_body
from pipelines.describe import providers_from_settings
from pipelines.image_analysis import analyse_image, describe_scene
from pipelines.images import ImageDecodeError, decode_image
from pipelines.plan import check_resources
from pipelines.step_specs import PlanError, StepPlan, parse_steps
from store import media
from store.records import TaskRecord
from store.tasks import BATCH_TASK_PREFIX

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


def _request_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


async def _image(image: ImageIn, services: Services, project: str) -> npt.NDArray[np.uint8]:
    """The request's image as RGB: fetched within the byte limit, decoded within the pixel limit."""
    source = image.model_dump(exclude_none=True)
    data = await run_in_threadpool(media.read_image_source, source, services.settings, project, "image")
    field = "image." + next(name for name in ("url", "base64", "path") if getattr(image, name) is not None)
    try:
        return await run_in_threadpool(decode_image, data, max_pixels=services.settings.max_image_pixels)
    except ImageDecodeError as exc:
        status = 413 if exc.code == "image_too_large" else 400
        raise APIError(status, exc.code, exc.message, field) from None


async def _analyse(
    services: Services, image: npt.NDArray[np.uint8], plan: StepPlan, model_hint: str | None = None
) -> tuple[Any, dict[str, Any] | None]:
    return await analyse_image(
        image,
        plan,
        services.models_or_raise(),
        settings=services.settings,
        model_hint=model_hint,
        vlm=services.vlm_client(),
    )


@router.post("/detect")
async def detect(body: DetectImageRequest, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """Objects with boxes in one image (``classes`` by COCO name or alias, ``min_confidence``)."""
    parameters: dict[str, Any] = {"classes": body.classes, "min_confidence": body.min_confidence, "model": body.model}
    try:
        plan = parse_steps([{"model": "detect", "parameters": {k: v for k, v in parameters.items() if v is not None}}])
    except PlanError as exc:
        raise APIError(400, "invalid_request", exc.message, exc.field.rsplit(".", 1)[-1]) from None
    try:
        check_resources(plan, None, services.settings)
    except PlanError as exc:  # it names steps[0].parameters.<x>: this endpoint has the fields at the top
        raise APIError(400, "invalid_request", exc.message, exc.field.rsplit(".", 1)[-1]) from None
    image = await _image(body.image, services, project)
    detections, _ = await _analyse(services, image, plan)
    height, width = image.shape[:2]
    return image_body(
        "vision.detect",
        _request_id("vd"),
        model=body.model or services.settings.detector_model,
        width=width,
        height=height,
        detections=detections,
        labels=plan.labels,
    )


@router.post("/ocr")
async def ocr(body: OCRImageRequest, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """Text lines in one image, in reading order; ``text`` joins them with newlines."""
    parameters = {} if body.min_confidence is None else {"min_confidence": body.min_confidence}
    plan = parse_steps([{"model": "ocr", "parameters": parameters}])
    image = await _image(body.image, services, project)
    detections, _ = await _analyse(services, image, plan)
    height, width = image.shape[:2]
    response = image_body(
        "vision.ocr", _request_id("vo"), model="ppocr", width=width, height=height, detections=detections, labels=None
    )
    response["text"] = "\n".join(target["text"] for target in response["targets"] if target.get("text"))
    return response


@router.post("/describe")
async def describe(body: DescribeImageRequest, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """A description of one image from what the models see (or an external provider, by ``model``)."""
    plan = parse_steps([{"model": "describe"}])
    check_resources(plan, body.model, services.settings)
    image = await _image(body.image, services, project)
    targets, description = await describe_scene(
        image,
        services.models_or_raise(),
        settings=services.settings,
        model_hint=body.model,
        vlm=services.vlm_client(),
    )
    height, width = image.shape[:2]
    return image_body(
        "vision.describe",
        _request_id("vs"),
        model=description["provider"],
        width=width,
        height=height,
        detections=targets,
        labels=None,
        description=description,
    )


@router.get("/models")
async def list_models(_: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """Registered models (``models/registry.json``; add your own ONNX detector there) and the describe
    providers (the built-in one and each configured external endpoint)."""
    registry = await run_in_threadpool(load_registry, services.settings.models_dir)
    data: list[dict[str, Any]] = [
        {
            "id": entry.name,
            "object": "model",
            "task": entry.task,
            "step": _STEP_OF_TASK.get(entry.task),
            "output_format": entry.output_format,
            "classes": entry.classes or None,
            "dim": entry.dim,
            "description": entry.description,
            "default": entry.name in _defaults(services),
        }
        for entry in registry.values()
    ]
    data.append(
        {
            "id": "visiongrid-describe",
            "object": "model",
            "task": "describe",
            "step": "describe",
            "description": "built-in description from what the models see: objects with counts and positions, "
            "text read, faces, dominant colours, motion over a segment (no captioning model exists offline)",
            "default": True,
        }
    )
    for provider in providers_from_settings(services.settings):
        data.append(
            {
                "id": provider.name,
                "object": "model",
                "task": "describe",
                "step": "describe",
                "description": f"external OpenAI-compatible provider ({provider.model})",
                "default": False,
            }
        )
    return {"object": "list", "data": data}


_STEP_OF_TASK: Final[dict[str, str]] = {
    "detect": "detect",
    "ocr": "ocr",
    "feature": "feature",
    "face_detect": "face",
    "face_embed": "face",
}


def _defaults(services: Services) -> set[str]:
    settings = services.settings
    return {
        settings.detector_model,
        settings.appearance_model,
        settings.face_detector_model,
        settings.face_descriptor_model,
        "ppocr",
    }


# --------------------------------------------------------------------------------------------- batch


def _stage_batch(body: BatchRequest, services: Services, project: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Decode every item's base64 strictly (a bad one is a 400 naming it) and stage it in storage."""
    settings = services.settings
    staged: list[str] = []
    items: list[dict[str, Any]] = []
    decoded = []
    for index, image in enumerate(body.images):
        field = f"images[{index}].data_base64"
        if image.data_base64.lstrip()[:5].lower() == "data:":
            raise APIError(400, "invalid_base64", "data_base64 must be raw base64, without a data: URI prefix", field)
        decoded.append(media.decode_base64_limited(image.data_base64, settings, field, settings.max_image_bytes))
    try:
        for index, (image, data) in enumerate(zip(body.images, decoded, strict=True)):
            url = media.stage_to_storage(data, settings, project, ".img")
            staged.append(url)
            items.append({"index": index, "id": image.id, "url": url})
    except BaseException:
        media.delete_staged(staged, settings, project)
        raise
    return items, staged


@router.post("/batch", status_code=202)
async def create_batch(
    body: BatchRequest, project: ProjectDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Queue images for the steps; poll ``Location`` for per-item status and results."""
    settings = services.settings
    if len(body.images) > settings.max_batch_images:
        raise APIError(400, "too_many_images", f"at most {settings.max_batch_images} images per batch", "images")
    steps = [step.model_dump() for step in body.steps]
    plan = parse_steps(steps)
    check_resources(plan, body.model, settings)
    services.objects_or_raise()
    items, staged = await run_in_threadpool(_stage_batch, body, services, project)
    request = {"kind": "image_batch", "images": items, "steps": steps, "model": body.model}
    task = await run_in_threadpool(services.tasks.create, project, request, body.model, staged, BATCH_TASK_PREFIX)
    if services.wake_workers is not None:
        services.wake_workers()
    response.headers["Location"] = f"/v1/vision/batch/{task.id}"
    return {"job_id": task.id, "status": "pending", "images": len(items)}


def _batch_view(task: TaskRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "job_id": task.id,
        "status": _BATCH_STATUS.get(task.status, task.status),
        "created_at": task.created_at.isoformat(),
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "processed_images": task.processed_frames,
        "total_images": len(task.request.get("images", [])) if task.request else None,
    }
    if task.result is not None:
        view["items"] = task.result.get("items", [])
    if task.error_code is not None:
        view["error"] = {"code": task.error_code, "message": task.error_message}
    return view


@router.get("/batch/{job_id}")
async def get_batch(job_id: str, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """The batch's status; ``items`` (per image: status, size, targets or error) once it has finished."""
    task = (
        await run_in_threadpool(services.tasks.get, project, job_id) if job_id.startswith(BATCH_TASK_PREFIX) else None
    )
    if task is None:
        raise not_found("batch", job_id)
    return _batch_view(task)


@router.post("/batch/{job_id}/cancel")
async def cancel_batch(job_id: str, project: ProjectDep, services: ServicesDep, response: Response) -> dict[str, Any]:
    """Stop a batch: pending → cancelled at once; processing → stops before its next image (202)."""
    if not job_id.startswith(BATCH_TASK_PREFIX):
        raise not_found("batch", job_id)
    task = await run_in_threadpool(services.tasks.request_cancel, project, job_id)
    if task is None:
        raise not_found("batch", job_id)
    response.status_code = 202 if task.status == "cancelling" else 200
    return _batch_view(task)


@router.delete("/batch/{job_id}", status_code=204)
async def delete_batch(job_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Delete the batch, its results and its staged images."""
    if not job_id.startswith(BATCH_TASK_PREFIX):
        raise not_found("batch", job_id)
    task = await run_in_threadpool(services.tasks.delete, project, job_id)
    if task is None:
        raise not_found("batch", job_id)
    await run_in_threadpool(media.delete_staged, list(task.staged_media), services.settings, project)
    return Response(status_code=204)
