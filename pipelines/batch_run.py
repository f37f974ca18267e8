"""Run one claimed image batch (``/v1/vision/batch``): each staged image through the steps, one by one.

A bad image fails alone — its item says why — and the batch goes on. Every item is archived as it
finishes (``vision.batch.item`` events), so the stream endpoint shows progress and nothing done is lost
if the runner dies; the result lists every item in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from contract.errors import ErrorCode, PlanError, VisionGridError
from kernels.detections import Detections
from pipelines.chunks import Vectors, error_object, image_body
from pipelines.describe import DescribeError
from pipelines.executor import StepFailedError
from pipelines.image_analysis import analyse_image
from pipelines.images import ImageDecodeError, decode_image
from pipelines.lease import CLAIM_LOST, TaskLease
from pipelines.step_specs import StepPlan, parse_steps
from store import media

if TYPE_CHECKING:
    from pipelines.runner import TaskRunner

__all__ = ["BATCH_ITEM_OBJECT", "BatchRun"]

BATCH_ITEM_OBJECT: Final[str] = "vision.batch.item"


class BatchRun:
    """One image batch task, on its lease."""

    def __init__(self, runner: TaskRunner, lease: TaskLease) -> None:
        self.runner = runner
        self.lease = lease
        self.task = lease.task
        self.settings = runner.settings

    async def execute(self) -> str:
        lease = self.lease
        request = self.task.request
        lease.model = request.get("model") or self.task.model
        try:
            steps = parse_steps(request.get("steps"))
            images = request.get("images")
            if not isinstance(images, list) or not images:
                raise PlanError("images", "must be a non-empty list")
        except PlanError as exc:
            return await lease.fail(VisionGridError(ErrorCode.INVALID_REQUEST, str(exc)))
        items: list[dict[str, Any]] = []
        for position, image in enumerate(images):
            if lease.stop_requested:
                return await lease.finish_stopped()
            item = await self._item(position, image, steps)
            items.append(item)
            payload = {"id": self.task.id, "object": BATCH_ITEM_OBJECT, "item": item}
            if not await lease.append(json.dumps(payload, separators=(",", ":"), allow_nan=False)):
                return CLAIM_LOST
            lease.processed += 1
        result = {"job_id": self.task.id, "status": "finished", "items": items}
        return await lease.finalize(status="succeeded", finish_reason="stop", result=result)

    async def _item(self, position: int, image: Mapping[str, Any], steps: StepPlan) -> dict[str, Any]:
        """One image's item: ``finished`` with its targets, or ``failed`` with the error that stopped it."""
        settings = self.settings
        item: dict[str, Any] = {"index": position, "id": image.get("id")}
        field = f"images[{position}]"
        error: VisionGridError
        try:
            source = {"url": image.get("url")}  # the staged copy in the project's storage
            data = await asyncio.to_thread(media.read_image_source, source, settings, self.task.project, field)
            rgb = await asyncio.to_thread(decode_image, data, max_pixels=settings.max_image_pixels)
            detections, description = await analyse_image(
                rgb,
                steps,
                self.runner.models,
                settings=settings,
                model_hint=self.lease.model,
                vlm=self.runner.vlm_client(),
            )
        except (media.MediaError, ImageDecodeError) as exc:
            error = VisionGridError(exc.code, exc.message)
        except StepFailedError as exc:
            error = exc
        except DescribeError as exc:  # str() is the short form: which provider failed, and how
            error = VisionGridError(ErrorCode.DESCRIBE_FAILED, str(exc))
        else:
            return {**item, **self._finished(rgb.shape[:2], detections, description, steps)}
        return {**item, "status": "failed", "error": error_object(error)}

    def _finished(
        self, shape: tuple[int, ...], detections: Detections, description: dict[str, Any] | None, steps: StepPlan
    ) -> dict[str, Any]:
        height, width = shape[0], shape[1]
        body = image_body(
            BATCH_ITEM_OBJECT,
            self.task.id,
            model=self.lease.model,
            width=width,
            height=height,
            detections=detections,
            labels=steps.labels,
            vectors=Vectors.of(steps),
            description=description,
        )
        return {"status": "finished", "image": body["image"], "targets": body["targets"]} | (
            {"description": description} if description is not None else {}
        )
