"""Video tasks (contract: VisoWork Video API): the process request and the task resource.

The same :class:`ProcessRequest` validates a request when it is submitted and again when a runner
reads it back from the database (``context={"stored": True}``): the database is a trust boundary in
time, and a request stored by an older version must fail its task with a named field rather than
crash a worker half-way through a video. A stored request differs in one way: a base64 input has
been staged to storage by then, so every stored input carries a ``url`` and no ``data``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, ValidationInfo, model_validator

from contract.common import ListEnvelope, RequestBody, Strict
from contract.errors import PlanError
from contract.steps import StepList
from contract.webhooks import WebhookConfig

__all__ = [
    "TASK_STATUSES",
    "AnnotatedVideo",
    "OutputRequest",
    "ProcessRequest",
    "Range",
    "Sampling",
    "TaskCreated",
    "TaskError",
    "TaskList",
    "TaskProgress",
    "TaskStatus",
    "TaskView",
    "VideoInput",
]

TaskStatus = Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
TASK_STATUSES: tuple[str, ...] = ("pending", "running", "cancelling", "succeeded", "failed", "cancelled")
FiniteNumber = Annotated[float, Field(strict=True)]


class Sampling(Strict):
    """Which source frames are analysed: ``fps`` frames per second of source time (default 1),
    every ``interval``-th frame, or only keyframes (``value`` ignored)."""

    mode: Literal["fps", "keyframe", "interval"] = "fps"
    value: Annotated[FiniteNumber, Field(gt=0)] | None = Field(
        None, description="fps: frames per second of source time; interval: every N-th frame (integer)"
    )

    @model_validator(mode="after")
    def _value_fits_mode(self) -> Sampling:
        if self.mode == "interval":
            if self.value is None:
                raise PlanError("value", "is required for mode 'interval'")
            if self.value < 1 or float(self.value) != int(self.value):
                raise PlanError("value", f"sampling.value (frame interval) must be an integer >= 1, got {self.value!r}")
        return self


class Range(Strict):
    """A half-open slice of the source: ``start <= t < end`` (seconds) or ``start <= index < end``."""

    start: Annotated[FiniteNumber, Field(ge=0)] | None = None
    end: Annotated[FiniteNumber, Field(ge=0)] | None = None
    unit: Literal["seconds", "frames"] = "seconds"

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        for name in ("start", "end"):
            bound = getattr(self, name)
            if self.unit == "frames" and bound is not None and float(bound) != int(bound):
                raise PlanError(name, f"range.{name} must be an integer when unit is 'frames', got {bound!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise PlanError("end", f"range.end ({self.end!r}) must be greater than range.start ({self.start!r})")
        return self


class VideoInput(Strict):
    type: Literal["video_url", "video_base64", "live"]
    url: Annotated[StrictStr, Field(min_length=1, max_length=4096)] | None = Field(
        None,
        description="video_url: http(s) URL, a presigned URL of your storage, or storage://path; live: "
        "rtsp://, rtmp://, srt:// (live whatever the type says), an HLS .m3u8 or MPEG-TS over http(s)",
    )
    data: Annotated[StrictStr, Field(min_length=1)] | None = Field(
        None, description="video_base64: the video's bytes in base64, optionally as a data: URI"
    )
    sampling: Sampling | None = None
    range: Range | None = None
    max_frames: Annotated[StrictInt, Field(ge=1, le=2**31)] | None = Field(
        None, description="stop after this many sampled frames (default 3000 for files, none for live sources)"
    )
    max_duration_s: Annotated[float, Field(gt=0, le=31 * 86400, allow_inf_nan=False)] | None = Field(
        None, description="live sources: stop after this many seconds of source time (finish_reason max_duration)"
    )

    @model_validator(mode="after")
    def _source_matches_type(self, info: ValidationInfo) -> VideoInput:
        if (info.context or {}).get("stored"):
            if self.url is None:
                raise PlanError("url", "no video to read: the request has no URL")
        elif self.type in ("video_url", "live") and self.url is None:
            raise ValueError(f"url is required when type is {self.type}")  # named at input[i], as it always was
        elif self.type == "video_base64" and self.data is None:
            raise ValueError("data is required when type is video_base64")
        return self


class OutputRequest(Strict):
    """What the task makes besides its chunks, on the cluster while it runs (stored in the project's
    storage under ``outputs/<task id>/``, deleted with the task)."""

    annotated_video: StrictBool = Field(
        False,
        description="an H.264 MP4 of the analysed frames with boxes, track ids and trails drawn, one frame per "
        "chunk (GET /v1/video/tasks/{id}/annotated)",
    )
    track_previews: StrictBool = Field(
        False, description="per track a thumbnail (its best-scored crop) and a GIF preview, listed in /results"
    )


class AnnotatedVideo(BaseModel):
    """``GET /v1/video/tasks/{id}/annotated``: where the annotated MP4 is (a presigned GET)."""

    object: Literal["video.annotated"] = "video.annotated"
    task_id: str
    storage_url: str
    url: str = Field(description="presigned GET of the MP4")
    expires_in: int
    frames: int = Field(description="one per chunk, in chunk order")
    content_type: Literal["video/mp4"] = "video/mp4"


class ProcessRequest(RequestBody):
    """``POST /v1/video/process``: one input, the steps, an optional provider routing hint."""

    input: list[VideoInput] = Field(min_length=1, max_length=1, description="exactly one input in v1")
    steps: StepList
    model: Annotated[StrictStr, Field(max_length=200)] | None = Field(
        None, description="provider routing hint, echoed back in the first chunk and in /results"
    )
    webhook: WebhookConfig | None = Field(None, description="POST the task's terminal event here (Noxovision)")
    output: OutputRequest | None = Field(None, description="an annotated video and per-track previews")


class TaskCreated(BaseModel):
    id: str
    status: TaskStatus
    stream_url: str


class TaskError(BaseModel):
    code: str
    message: str | None = None


class TaskProgress(BaseModel):
    processed_frames: int
    last_frame_index: int | None
    total_frames: int | None = Field(description="null for live streams and before the first chunk")
    percent: float | None


class TaskView(BaseModel):
    id: str
    object: Literal["video.task"] = "video.task"
    status: TaskStatus
    model: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress: TaskProgress
    usage: dict[str, int | str] | None
    finish_reason: str | None
    error: TaskError | None
    stream_url: str
    results_url: str
    max_processing_time_s: float | None = Field(
        None, description="the deadline from Max-Processing-Time (seconds of processing; null: none)"
    )
    max_processing_time_clamped: bool = Field(False, description="the requested time was above the cap")
    request: dict[str, Any] | None = Field(None, description="the stored request, with ?include=request")


TaskList = ListEnvelope[TaskView]
