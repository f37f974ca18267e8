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


class WhenIn(Strict):
    class_is: list[str] | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)


class StepIn(Strict):
    model: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    when: WhenIn | None = None


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
