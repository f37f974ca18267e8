"""Vision: synchronous image endpoints (detect, OCR, describe), the async image batch, the model list.

Contracts: VisoWork ``/v1/vision/*`` (synchronous, one image) and Noxovision's base64 image batch
(``202`` + ``Location``, per-item status and results). A single image goes through the same step
executor as a video frame, and its ``targets`` have exactly the shape of a video chunk's.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from ulid import ULID

from api.deps import ProjectDep, ServicesDep
from api.errors import error_responses
from api.services import Services
from api.vision_input import read_image
from contract.errors import PlanError
from contract.vision import (
    DescribeImageRequest,
    DetectImageRequest,
    ModelInfo,
    ModelList,
    OCRImageRequest,
    VisionResult,
)
from models.registry import load_registry
from pipelines.chunks import image_body
from pipelines.describe import providers_from_settings
from pipelines.image_analysis import analyse_image, describe_scene
from pipelines.plan import check_resources
from pipelines.step_specs import StepPlan, parse_steps

router = APIRouter(prefix="/v1/vision", tags=["vision"])
_IMAGE_ERRORS = error_responses(413, 500, 503)


def _request_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


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


def _detect_plan(body: DetectImageRequest, services: Services) -> StepPlan:
    """A detect step from the endpoint's top-level fields (errors name them: ``classes``, not
    ``steps[0].parameters.classes``)."""
    parameters: dict[str, Any] = {"classes": body.classes, "min_confidence": body.min_confidence, "model": body.model}
    try:
        plan = parse_steps([{"model": "detect", "parameters": {k: v for k, v in parameters.items() if v is not None}}])
        check_resources(plan, None, services.settings)
    except PlanError as exc:
        raise PlanError((exc.field or "").removeprefix("steps[0].parameters."), exc.message) from None
    return plan


@router.post("/detect", response_model=VisionResult, responses=_IMAGE_ERRORS)
async def detect(body: DetectImageRequest, project: ProjectDep, services: ServicesDep) -> JSONResponse:
    """Objects with boxes in one image (``classes`` by COCO name or alias, ``min_confidence``)."""
    plan = _detect_plan(body, services)
    image = await read_image(body.image, services, project)
    detections, _ = await _analyse(services, image, plan)
    height, width = image.shape[:2]
    return JSONResponse(
        image_body(
            "vision.detect",
            _request_id("vd"),
            model=body.model or services.settings.detector_model,
            width=width,
            height=height,
            detections=detections,
            labels=plan.labels,
        )
    )


@router.post("/ocr", response_model=VisionResult, responses=_IMAGE_ERRORS)
async def ocr(body: OCRImageRequest, project: ProjectDep, services: ServicesDep) -> JSONResponse:
    """Text lines in one image, in reading order; ``text`` joins them with newlines."""
    parameters = {} if body.min_confidence is None else {"min_confidence": body.min_confidence}
    plan = parse_steps([{"model": "ocr", "parameters": parameters}])
    image = await read_image(body.image, services, project)
    detections, _ = await _analyse(services, image, plan)
    height, width = image.shape[:2]
    response = image_body(
        "vision.ocr", _request_id("vo"), model="ppocr", width=width, height=height, detections=detections, labels=None
    )
    response["text"] = "\n".join(target["text"] for target in response["targets"] if target.get("text"))
    return JSONResponse(response)


@router.post("/describe", response_model=VisionResult, responses={**_IMAGE_ERRORS, **error_responses(502)})
async def describe(body: DescribeImageRequest, project: ProjectDep, services: ServicesDep) -> JSONResponse:
    """A description of one image from what the models see (or an external provider, by ``model``)."""
    plan = parse_steps([{"model": "describe"}])
    check_resources(plan, body.model, services.settings)
    image = await read_image(body.image, services, project)
    targets, description = await describe_scene(
        image,
        services.models_or_raise(),
        settings=services.settings,
        model_hint=body.model,
        vlm=services.vlm_client(),
    )
    height, width = image.shape[:2]
    body_out = image_body(
        "vision.describe",
        _request_id("vs"),
        model=description["provider"],
        width=width,
        height=height,
        detections=targets,
        labels=None,
        description=description,
    )
    return JSONResponse(body_out)


@router.get("/models", response_model=ModelList, response_model_exclude_unset=True, responses=error_responses())
async def list_models(_: ProjectDep, services: ServicesDep) -> ModelList:
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
    return ModelList(data=[ModelInfo.model_validate(entry) for entry in data])


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
