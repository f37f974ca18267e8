"""Request and response bodies of the HTTP API (pydantic), shaped by the Video API contract."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Unknown fields are refused: a typo such as ``max_frame`` must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SamplingIn(Strict):
    mode: Literal["fps", "keyframe", "interval"] = "fps"
    value: float | None = Field(None, gt=0, description="fps: frames per second of source time; interval: every N")


class RangeIn(Strict):
    start: float | None = Field(None, ge=0)
    end: float | None = Field(None, gt=0)
    unit: Literal["seconds", "frames"] = "seconds"


class VideoInput(Strict):
    type: Literal["video_url", "video_base64"]
    url: str | None = Field(None, max_length=4096, description="http(s) URL of the video (video_url)")
    data: str | None = Field(None, description="base64 video bytes, optionally as a data: URI (video_base64)")
    sampling: SamplingIn | None = None
    range: RangeIn | None = None
    max_frames: int | None = Field(None, ge=1, description="stop after this many sampled frames (default 3000)")

    @model_validator(mode="after")
    def _source_matches_type(self) -> VideoInput:
        if self.type == "video_url" and not self.url:
            raise ValueError("url is required when type is video_url")
        if self.type == "video_base64" and not self.data:
            raise ValueError("data is required when type is video_base64")
        return self


class StepIn(Strict):
    """One step; ``parameters`` and ``when`` are validated by the step parser (``pipelines.step_specs``),
    which names the exact field (``steps[1].when.class_is[0]``) and is shared with the task runner."""

    model: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    when: dict[str, Any] | None = None


class ProcessRequest(Strict):
    input: list[VideoInput] = Field(min_length=1, max_length=1, description="exactly one input in v1")
    steps: list[StepIn] = Field(min_length=1)
    model: str | None = Field(None, max_length=200, description="provider routing hint, echoed back")


class TaskCreated(BaseModel):
    id: str
    status: str
    stream_url: str


class TaskError(BaseModel):
    code: str
    message: str | None = None


class TaskProgress(BaseModel):
    processed_frames: int
    last_frame_index: int | None
    total_frames: int | None
    percent: float | None


class TaskView(BaseModel):
    id: str
    object: Literal["video.task"] = "video.task"
    status: str
    model: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress: TaskProgress
    usage: dict[str, Any] | None
    finish_reason: str | None
    error: TaskError | None
    stream_url: str
    results_url: str
    request: dict[str, Any] | None = None


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskView]
    next_cursor: str | None


# --------------------------------------------------------------------------------------------- vision


class ImageIn(Strict):
    """Exactly one source: an http(s) ``url``, ``base64`` bytes (a data: URI prefix is allowed), or a
    ``path`` in the project's storage (``storage://`` optional)."""

    url: str | None = Field(None, max_length=4096)
    base64: str | None = None
    path: str | None = Field(None, max_length=1024)

    @model_validator(mode="after")
    def _one_source(self) -> ImageIn:
        given = [name for name in ("url", "base64", "path") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, base64, path (got {given or 'none'})")
        return self


class DetectImageRequest(Strict):
    image: ImageIn
    classes: list[str] | None = Field(None, min_length=1, description="COCO names or aliases; default every class")
    min_confidence: float | None = Field(None, ge=0, le=1, description="score floor (default 0.3)")
    model: str | None = Field(None, max_length=200, description="a registered detector (GET /v1/vision/models)")


class OCRImageRequest(Strict):
    image: ImageIn
    min_confidence: float | None = Field(None, ge=0, le=1, description="drop lines read below this score")


class DescribeImageRequest(Strict):
    image: ImageIn
    model: str | None = Field(None, max_length=200, description="provider routing hint (default: built-in)")


class BatchImage(Strict):
    data_base64: str = Field(min_length=1, description="raw base64 (no data: URI prefix)")
    id: str | None = Field(None, max_length=200, description="your reference, echoed per item")


class BatchRequest(Strict):
    images: list[BatchImage] = Field(min_length=1)
    steps: list[StepIn] = Field(
        default_factory=lambda: [StepIn(model="detect")], min_length=1, description="default: detect"
    )
    model: str | None = Field(None, max_length=200, description="provider routing hint for a describe step")


# --------------------------------------------------------------------------------------------- vectors

MetadataValue = str | int | float | bool


class CollectionCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    model: str = Field("multimodal", description="bundle of spaces: multimodal (text+image), text, image, face")
    metric: Literal["cosine", "l2", "ip"] = "cosine"
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class IndexItem(Strict):
    """One item: exactly one of ``text``, ``image`` or ``vector`` (+ ``space``); ``audio`` is refused."""

    id: str = Field(min_length=1, max_length=256)
    text: str | None = Field(None, min_length=1, max_length=10_000)
    image: ImageIn | None = None
    vector: list[float] | None = Field(None, min_length=1, max_length=4096)
    space: Literal["text", "image", "face"] | None = None
    audio: Any = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class IndexRequest(Strict):
    items: list[IndexItem] = Field(min_length=1)


class TrackRef(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    track_id: int = Field(ge=0)


class Condition(Strict):
    field: str = Field(min_length=1, max_length=200)
    operator: str = Field(min_length=1, max_length=32)
    value: Any = None
    type: Literal["string", "number", "boolean"] | None = None


class SearchRequest(Strict):
    """Any combination of a text query, an image (``image_data`` raw base64, ``image_url``,
    ``image_path`` or ``image``), a video ``track`` and a raw ``vector`` (+ ``space``)."""

    text_query: str | None = Field(None, min_length=1, max_length=2000)
    image_data: str | None = None
    image_url: str | None = Field(None, max_length=4096)
    image_path: str | None = Field(None, max_length=1024)
    image: ImageIn | None = None
    track: TrackRef | None = None
    vector: list[float] | None = Field(None, min_length=1, max_length=4096)
    space: Literal["text", "image", "face"] | None = None
    audio_data: str | None = None
    text_weight: float | None = Field(None, ge=0, le=1000)
    image_weight: float | None = Field(None, ge=0, le=1000)
    top_k: int = Field(10, ge=1)
    where: dict[str, Any] | None = None
    conditions: list[Condition] | None = None
