"""What a video task sends back: targets, SSE chunks and the per-track results.

These models are the documented shape of the bytes :mod:`pipelines.chunks` renders (once, straight
from ``Detections``, so archived chunk bytes never change); tests validate real chunks and results
against them, so the OpenAPI document cannot drift from what a client receives.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnnotatedVideoRef",
    "Chunk",
    "ChunkDelta",
    "ChunkResult",
    "Description",
    "Face",
    "ImageSize",
    "Roi",
    "StreamInfo",
    "Target",
    "TaskResult",
    "TextLine",
    "TrackFaces",
    "TrackSummary",
    "Usage",
]


class Roi(BaseModel):
    """A box in source pixels, clamped to the frame."""

    left: int
    top: int
    width: int
    height: int


class TextLine(BaseModel):
    text: str
    confidence: float
    roi: Roi


class Face(BaseModel):
    confidence: float
    roi: Roi
    descriptor_digest: str | None = None
    descriptor: list[float] | None = Field(None, description="with face.parameters.include_vector")


class Target(BaseModel):
    """One object (or text line, or face) in a frame or image, with what each step found for it."""

    model_config = ConfigDict(populate_by_name=True)

    track_id: int = Field(description="stable per task; -1 when untracked (images)")
    class_: str = Field(alias="class", description="the request's own word for the class when it named one")
    confidence: float
    roi: Roi
    text: str | None = Field(None, description="ocr: the lines read in this target, joined")
    text_confidence: float | None = None
    ocr: list[TextLine] | None = Field(None, description="ocr: each line read in this target")
    feature_digest: str | None = Field(None, description="feature: dim=N;norm=X of the embedding")
    feature: list[float] | None = Field(None, description="feature: the embedding, with include_vector")
    faces: list[Face] | None = Field(None, description="face: faces inside this target")
    descriptor_digest: str | None = Field(None, description="face (whole frame): the face's descriptor digest")
    descriptor: list[float] | None = None


class Description(BaseModel):
    text: str
    provider: str
    first_frame: int | None = None
    last_frame: int | None = None
    start_ms: float | None = None
    end_ms: float | None = None


class StreamInfo(BaseModel):
    frame_index: int | None
    total_frames: int | None = Field(description="null for live streams")
    decoded_frames: int
    dropped_frames: int
    fps: float
    elapsed_ms: int
    timestamp_ms: float | None
    reconnects: int = Field(0, description="live sources: times the source was reopened after a drop")
    lag_ms: float | None = Field(
        None, description="live sources: how long this frame waited between arriving and being analysed"
    )
    width: int | None = Field(None, description="the source frame's width in pixels (the ROIs' frame)")
    height: int | None = Field(None, description="the source frame's height in pixels")


class ChunkResult(BaseModel):
    index: int
    targets: list[Target]
    description: Description | None = None


class ChunkDelta(BaseModel):
    results: list[ChunkResult]


class Usage(BaseModel):
    processed_frames: int
    processing_time_ms: int
    backend: str | None = Field(None, description="cpu | cuda: where the task's models ran")
    runtime: str | None = Field(None, description="onnxruntime-cpu | onnxruntime-cuda | tensorrt")
    decoder: str | None = Field(None, description="pyav (CPU decode) | nvdec (the GPU's hardware decoder)")
    decoder_note: str | None = Field(None, description="why the task was decoded on CPU where NVDEC was possible")
    placement: str | None = Field(
        None, description="in_process (the detector ran inside the task worker) | deployment (its own replicas)"
    )


class ChunkError(BaseModel):
    code: str
    message: str | None


class Chunk(BaseModel):
    """One SSE ``data:`` line of ``/stream``: a processed frame, or the terminal chunk (non-null
    ``finish_reason``, ``usage``, ``error`` when failed). ``model`` appears in the first chunk only."""

    id: str
    object: Literal["mm.pipeline.chunk"]
    model: str | None = None
    stream_info: StreamInfo
    delta: ChunkDelta
    finish_reason: str | None
    usage: Usage | None = None
    error: ChunkError | None = None


class TrackFaces(BaseModel):
    frames_with_face: int
    best_confidence: float


class TrackSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    track_id: int
    class_: str = Field(alias="class")
    first_frame: int
    last_frame: int
    first_timestamp_ms: float
    last_timestamp_ms: float
    frames_seen: int
    best_confidence: float
    feature_digest: str | None = None
    text: str | None = None
    text_confidence: float | None = None
    faces: TrackFaces | None = None
    thumbnail: str | None = Field(None, description="output.track_previews: storage:// URL of the best crop (JPEG)")
    thumbnail_url: str | None = Field(None, description="presigned GET of the thumbnail")
    preview: str | None = Field(None, description="output.track_previews: storage:// URL of a GIF preview")
    preview_url: str | None = Field(None, description="presigned GET of the preview")


class AnnotatedVideoRef(BaseModel):
    storage_url: str
    url: str | None = Field(None, description="presigned GET of the MP4")
    frames: int


class TaskResult(BaseModel):
    """``GET /v1/video/tasks/{id}/results``: one summary per track id."""

    id: str
    object: Literal["mm.pipeline.result"]
    model: str | None
    usage: Usage
    tracks: list[TrackSummary]
    descriptions: list[Description] | None = Field(None, description="with a describe step")
    annotated_video: AnnotatedVideoRef | None = Field(None, description="with output.annotated_video")
    track_embeddings: dict[str, list[float]] | None = Field(
        None, description="each track's mean feature vector, with ?include=embeddings"
    )


class ImageSize(BaseModel):
    width: int
    height: int
