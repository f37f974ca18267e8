"""Vision (contract: VisoWork ``/v1/vision/*`` for one image, Noxovision's base64 image batch).

A single image goes through the same steps as a video frame, and its ``targets`` have exactly the
shape of a video chunk's (``track_id`` is -1: nothing is tracked across one image).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictStr, model_validator

from contract.chunks import Description, ImageSize, Target
from contract.common import RequestBody, Strict
from contract.steps import DetectStep, Step, StepList
from contract.webhooks import WebhookConfig

__all__ = [
    "BatchCreated",
    "BatchImage",
    "BatchItem",
    "BatchRequest",
    "BatchView",
    "DescribeImageRequest",
    "DetectImageRequest",
    "ImageIn",
    "ModelInfo",
    "ModelList",
    "OCRImageRequest",
    "VisionResult",
]

Hint = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class ImageIn(Strict):
    """Exactly one source: an http(s) ``url`` (a presigned URL of your storage too), ``base64`` bytes
    (a data: URI prefix is allowed), or a ``path`` in the project's storage (``storage://`` optional)."""

    url: Annotated[StrictStr, Field(min_length=1, max_length=4096)] | None = None
    base64: Annotated[StrictStr, Field(min_length=1)] | None = None
    path: Annotated[StrictStr, Field(min_length=1, max_length=1024)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImageIn:
        given = [name for name in ("url", "base64", "path") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, base64, path (got {given or 'none'})")
        return self

    @property
    def source_field(self) -> str:
        """The one field that is set (``url``, ``base64`` or ``path``)."""
        return next(name for name in ("url", "base64", "path") if getattr(self, name) is not None)


class DetectImageRequest(RequestBody):
    image: ImageIn
    classes: list[StrictStr] | None = Field(None, min_length=1, description="COCO names or aliases; default all")
    min_confidence: Annotated[float, Field(strict=True, ge=0, le=1)] | None = Field(
        None, description="score floor (default 0.3)"
    )
    model: Hint | None = Field(None, description="a registered detector (GET /v1/vision/models)")


class OCRImageRequest(RequestBody):
    image: ImageIn
    min_confidence: Annotated[float, Field(strict=True, ge=0, le=1)] | None = Field(
        None, description="drop lines read below this score"
    )


class DescribeImageRequest(RequestBody):
    image: ImageIn
    model: Hint | None = Field(None, description="provider routing hint (default: built-in)")


class VisionResult(BaseModel):
    """The answer of ``/v1/vision/detect|ocr|describe``."""

    id: str
    object: Literal["vision.detect", "vision.ocr", "vision.describe"]
    model: str | None
    image: ImageSize
    targets: list[Target]
    text: str | None = Field(None, description="ocr: every line, joined with newlines")
    description: Description | None = Field(None, description="describe")


class BatchImage(Strict):
    data_base64: Annotated[StrictStr, Field(min_length=1)] = Field(description="raw base64 (no data: URI prefix)")
    id: Annotated[StrictStr, Field(max_length=200)] | None = Field(None, description="your reference, echoed")


def _default_steps() -> list[Step]:
    return [DetectStep(model="detect")]


class BatchRequest(RequestBody):
    images: list[BatchImage] = Field(min_length=1)
    steps: StepList = Field(default_factory=lambda: _default_steps(), description="default: detect")
    model: Hint | None = Field(None, description="provider routing hint for a describe step")
    webhook: WebhookConfig | None = Field(None, description="POST the batch's batch.finished event here")


class BatchCreated(BaseModel):
    job_id: str
    status: Literal["pending"]
    images: int


class ItemError(BaseModel):
    code: str
    message: str | None = None


class BatchItem(BaseModel):
    index: int
    id: str | None
    status: Literal["finished", "failed"]
    image: ImageSize | None = None
    targets: list[Target] | None = None
    description: Description | None = None
    error: ItemError | None = None


class BatchView(BaseModel):
    job_id: str
    status: Literal["pending", "processing", "finished", "failed", "cancelled"]
    created_at: str = Field(description="ISO-8601")
    finished_at: str | None
    processed_images: int
    total_images: int | None
    max_processing_time_s: float | None = Field(None, description="the deadline from Max-Processing-Time")
    max_processing_time_clamped: bool = Field(False, description="the requested time was above the cap")
    items: list[BatchItem] | None = Field(None, description="once the batch has finished")
    error: ItemError | None = None


class ModelInfo(BaseModel):
    id: str
    object: Literal["model"] = "model"
    task: str
    step: str | None
    output_format: str | None = None
    classes: str | None = Field(None, description="the class vocabulary (coco80)")
    dim: int | None = None
    description: str | None = None
    default: bool


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]
