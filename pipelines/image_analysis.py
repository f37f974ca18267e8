"""One image through the steps: what the synchronous vision endpoints and the image batch share.

A video frame and an uploaded photo go through the same :func:`~pipelines.executor.run_steps`; what is
particular to a single image lives here: there is no tracker, so ``detect`` keeps boxes down to the
request's own score floor, and ``describe`` describes this one image (no motion, no segments).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from pipelines.describe import DescribeChain, VLMDescriber, describe_frame
from pipelines.executor import StepModels, run_steps
from pipelines.step_specs import StepPlan, parse_steps
from visiongrid.settings import Settings

__all__ = ["SCENE_OBJECTS", "SCENE_TEXT_AND_FACES", "analyse_image", "describe_scene", "scene_targets"]

#: ``/v1/vision/describe`` looks at objects, and (on the whole image) text and faces.
SCENE_OBJECTS = parse_steps([{"model": "detect"}])
SCENE_TEXT_AND_FACES = parse_steps([{"model": "ocr"}, {"model": "face"}])


def _floor(plan: StepPlan, settings: Settings) -> float:
    return plan.min_confidence if plan.min_confidence is not None else settings.detection_min_confidence


async def _describe(
    image: npt.NDArray[np.uint8],
    mentioned: Detections,
    labels: dict[int, str] | None,
    *,
    settings: Settings,
    model_hint: str | None,
    vlm: VLMDescriber | None,
) -> dict[str, Any]:
    height, width = image.shape[:2]
    local = describe_frame(image, mentioned, labels=labels, width=width, height=height)
    chain = DescribeChain.from_settings(model_hint, settings, vlm)
    # nothing has been sent for a single image yet: every provider error may fail over
    described = await chain.describe(image, local, allow_failover=True)
    body = described.to_dict()
    return {"text": body["text"], "provider": body["provider"]}


async def analyse_image(
    image: npt.NDArray[np.uint8],
    plan: StepPlan,
    models: StepModels,
    *,
    settings: Settings,
    model_hint: str | None = None,
    vlm: VLMDescriber | None = None,
) -> tuple[Detections, dict[str, Any] | None]:
    """The image's targets after every step, and its description when the plan has ``describe``."""
    detections = await run_steps(image, plan, models, detect_floor=_floor(plan, settings))
    step = plan.get("describe")
    if step is None:
        return detections, None
    mentioned = detections[step.select(detections)]
    description = await _describe(image, mentioned, plan.labels, settings=settings, model_hint=model_hint, vlm=vlm)
    return detections, description


async def scene_targets(image: npt.NDArray[np.uint8], models: StepModels, *, settings: Settings) -> Detections:
    """Objects, and (on the whole image) text lines and faces: what a description of it talks about."""
    objects, text_and_faces = await asyncio.gather(
        run_steps(image, SCENE_OBJECTS, models, detect_floor=settings.detection_min_confidence),
        run_steps(image, SCENE_TEXT_AND_FACES, models, detect_floor=settings.detection_min_confidence),
    )
    return Detections.merge([objects, text_and_faces])


async def describe_scene(
    image: npt.NDArray[np.uint8],
    models: StepModels,
    *,
    settings: Settings,
    model_hint: str | None = None,
    vlm: VLMDescriber | None = None,
) -> tuple[Detections, dict[str, Any]]:
    """Objects, text lines and faces of the whole image, and a description of them."""
    targets = await scene_targets(image, models, settings=settings)
    description = await _describe(image, targets, None, settings=settings, model_hint=model_hint, vlm=vlm)
    return targets, description
