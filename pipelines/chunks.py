"""The single place that turns pipeline output into the contract's JSON and SSE bytes.

Everything a client sees of a task -- live stream, replay, ``/results`` -- is built here, so the wire
format has one definition. The archive stores the exact bytes :func:`sse_event` returns and the stream
endpoint replays them verbatim, which is what makes ``Last-Event-ID: <byte offset>`` work: each event's
``id`` *is* the cumulative byte count up to and including that event, so a client that reconnects with
the last id it saw resumes exactly after that event.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from contract.errors import VisionGridError
from kernels.detections import Detections
from models.coco import class_name
from pipelines.decode import DecodeStats
from pipelines.executor import DESCRIPTOR, FACES, FEATURE, TEXT, TEXT_CONFIDENCE, TEXT_LINES
from pipelines.step_specs import StepPlan
from pipelines.tracks import TrackSummary, feature_digest

__all__ = [
    "CHUNK_OBJECT",
    "DONE_DATA",
    "RESULT_OBJECT",
    "Vectors",
    "error_object",
    "frame_chunk",
    "image_body",
    "result_body",
    "rois",
    "sse_event",
    "targets_json",
    "terminal_chunk",
]

CHUNK_OBJECT: Final[str] = "mm.pipeline.chunk"
RESULT_OBJECT: Final[str] = "mm.pipeline.result"
DONE_DATA: Final[str] = "[DONE]"

_ID_PREFIX: Final[bytes] = b"id: "
_DATA_PREFIX: Final[bytes] = b"\ndata: "
_EVENT_END: Final[bytes] = b"\n\n"


def _dumps(payload: dict[str, Any]) -> str:
    """Compact JSON: chunks are archived and replayed per frame, so every byte is stored and sent again."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sse_event(data: str, start_offset: int) -> bytes:
    """Exact bytes of one SSE event whose ``id`` is the byte offset just after the event.

    ``id = start_offset + len(event)``, and the event contains the id's own digits, so the length depends
    on the id: solve the fixed point ``n = base + digits(n)`` (``base`` = every byte but the digits).
    ``digits`` is non-decreasing, so starting from ``digits(base)`` and re-evaluating converges in at most
    two steps, including across 9→10, 99→100, … boundaries.

    Formatted by hand as ``id: <n>\\ndata: <data>\\n\\n`` -- byte-identical to
    ``sse_starlette.ServerSentEvent(data=..., id=..., sep="\\n").encode()`` for single-line data (a test
    checks this), without depending on that library's formatting choices for a stored, replayed format.
    """
    if start_offset < 0:
        raise ValueError(f"start_offset must be >= 0, got {start_offset}")
    if "\n" in data or "\r" in data:
        # A line break would split the payload into several `data:` lines (or end the event early).
        raise ValueError("SSE data must be a single line")
    payload = data.encode("utf-8")
    base = start_offset + len(_ID_PREFIX) + len(_DATA_PREFIX) + len(payload) + len(_EVENT_END)
    digits = len(str(base))
    while len(str(base + digits)) != digits:
        digits = len(str(base + digits))
    end = base + digits
    event = b"".join((_ID_PREFIX, str(end).encode("ascii"), _DATA_PREFIX, payload, _EVENT_END))
    assert len(event) == end - start_offset
    return event


def _stream_info(
    *,
    frame_index: int | None,
    stats: DecodeStats | None,
    elapsed_ms: int,
    timestamp_ms: float | None,
) -> dict[str, Any]:
    """``stream_info`` in the contract's field order; unknown values are ``null`` / zero, never invented."""
    return {
        "frame_index": frame_index,
        "total_frames": stats.total_frames if stats is not None else None,
        "decoded_frames": stats.decoded_frames if stats is not None else 0,
        "dropped_frames": stats.dropped_frames if stats is not None else 0,
        "fps": round(float(stats.fps), 6) if stats is not None and math.isfinite(stats.fps) else 0.0,
        "elapsed_ms": int(elapsed_ms),
        "timestamp_ms": None if timestamp_ms is None else round(float(timestamp_ms), 3),
        "reconnects": stats.reconnects if stats is not None else 0,
        "lag_ms": stats.lag_ms if stats is not None else None,
        "width": stats.width if stats is not None and stats.width else None,
        "height": stats.height if stats is not None and stats.height else None,
    }


def rois(xyxy: np.ndarray, width: int, height: int) -> list[dict[str, int]]:
    """Integer boxes in source pixels, clipped to the frame, at least 1×1.

    Rounding (not truncation) keeps a box centred on what the detector saw; the 1-pixel minimum keeps
    degenerate boxes drawable and valid for crops by later steps.
    """
    boxes = np.rint(np.asarray(xyxy, dtype=np.float64)).astype(np.int64) if len(xyxy) else np.empty((0, 4), np.int64)
    rois = []
    for x1, y1, x2, y2 in boxes.tolist():
        if width > 0:
            x1 = min(max(x1, 0), width - 1)
            x2 = min(max(x2, x1 + 1), width)
        else:
            x1 = max(x1, 0)
            x2 = max(x2, x1 + 1)
        if height > 0:
            y1 = min(max(y1, 0), height - 1)
            y2 = min(max(y2, y1 + 1), height)
        else:
            y1 = max(y1, 0)
            y2 = max(y2, y1 + 1)
        rois.append({"left": x1, "top": y1, "width": x2 - x1, "height": y2 - y1})
    return rois


@dataclass(frozen=True)
class Vectors:
    """Which full vectors a response carries (digests are always there): they are long, so opt-in."""

    feature: bool = False
    face: bool = False

    @classmethod
    def of(cls, plan: StepPlan) -> Vectors:
        """What the request's steps asked for (``include_vector`` on ``feature`` / ``face``)."""
        return cls(feature=plan.include_vector("feature"), face=plan.include_vector("face"))


def _vector(values: Any) -> list[float]:
    return [round(float(value), 6) for value in np.asarray(values, dtype=np.float32).reshape(-1)]


def _lines_json(lines: Detections, width: int, height: int) -> list[dict[str, Any]]:
    texts = lines.data.get(TEXT, [None] * len(lines))
    return [
        {"text": text, "confidence": round(confidence, 4), "roi": roi}
        for text, confidence, roi in zip(texts, lines.confidence.tolist(), rois(lines.xyxy, width, height), strict=True)
    ]


def _faces_json(faces: Detections, width: int, height: int, vectors: Vectors) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    descriptors = faces.data.get(DESCRIPTOR)
    for row, (confidence, roi) in enumerate(
        zip(faces.confidence.tolist(), rois(faces.xyxy, width, height), strict=True)
    ):
        face: dict[str, Any] = {"confidence": round(confidence, 4), "roi": roi}
        if descriptors is not None:
            face["descriptor_digest"] = feature_digest(descriptors[row])
            if vectors.face:
                face["descriptor"] = _vector(descriptors[row])
        out.append(face)
    return out


def _step_fields(
    target: dict[str, Any], data: dict[str, Any], row: int, size: tuple[int, int], vectors: Vectors
) -> None:
    """Attach what the steps found for this target (only the steps that ran on it)."""
    width, height = size
    text = data[TEXT][row] if TEXT in data else None
    if text is not None:
        target["text"] = text
        confidence = data[TEXT_CONFIDENCE][row] if TEXT_CONFIDENCE in data else None
        if confidence is not None:
            target["text_confidence"] = round(float(confidence), 4)
    lines = data[TEXT_LINES][row] if TEXT_LINES in data else None
    if lines is not None:
        target["ocr"] = _lines_json(lines, width, height)
    feature = data[FEATURE][row] if FEATURE in data else None
    if feature is not None:
        target["feature_digest"] = feature_digest(feature)
        if vectors.feature:
            target["feature"] = _vector(feature)
    faces = data[FACES][row] if FACES in data else None
    if faces is not None:
        target["faces"] = _faces_json(faces, width, height, vectors)
    descriptor = data[DESCRIPTOR][row] if DESCRIPTOR in data else None
    if descriptor is not None:
        target["descriptor_digest"] = feature_digest(descriptor)
        if vectors.face:
            target["descriptor"] = _vector(descriptor)


def targets_json(
    detections: Detections, labels: dict[int, str] | None, width: int, height: int, vectors: Vectors | None = None
) -> list[dict[str, Any]]:
    """The contract's ``targets[]`` for one frame or image, with every step's per-target results."""
    vectors = vectors or Vectors()
    boxes = rois(detections.xyxy, width, height)
    targets = []
    for row, (track_id, class_id, confidence, roi) in enumerate(
        zip(
            detections.track_id.tolist(),
            detections.class_id.tolist(),
            detections.confidence.tolist(),
            boxes,
            strict=True,
        )
    ):
        target: dict[str, Any] = {
            "track_id": track_id,
            "class": class_name(class_id, labels),
            "confidence": round(confidence, 4),
            "roi": roi,
        }
        _step_fields(target, detections.data, row, (width, height), vectors)
        targets.append(target)
    return targets


def frame_chunk(
    task_id: str,
    *,
    frame_index: int,
    timestamp_ms: float,
    stats: DecodeStats,
    elapsed_ms: int,
    detections: Detections,
    labels: dict[int, str] | None,
    model: str | None,
    first: bool,
    vectors: Vectors | None = None,
    description: dict[str, Any] | None = None,
) -> str:
    """JSON text of the chunk for one processed frame (one per frame, ``targets: []`` when empty).

    A chunk for an empty frame is still sent because clients count chunks as progress and the
    contract's ``frame_index`` must advance; ``model`` (the routing hint) appears only in the first chunk,
    as the contract echoes it once.
    """
    payload: dict[str, Any] = {"id": task_id, "object": CHUNK_OBJECT}
    if first:
        payload["model"] = model
    payload["stream_info"] = _stream_info(
        frame_index=frame_index, stats=stats, elapsed_ms=elapsed_ms, timestamp_ms=timestamp_ms
    )
    result: dict[str, Any] = {
        "index": 0,
        "targets": targets_json(detections, labels, stats.width, stats.height, vectors),
    }
    if description is not None:
        result["description"] = description
    payload["delta"] = {"results": [result]}
    payload["finish_reason"] = None
    return _dumps(payload)


def error_object(error: VisionGridError) -> dict[str, str]:
    """The ``{"code", "message"}`` of a failed task: in its record, its error chunk, a failed batch item."""
    return {"code": error.code, "message": error.message}


def terminal_chunk(
    task_id: str,
    *,
    finish_reason: str,
    usage: dict[str, Any],
    stats: DecodeStats | None,
    elapsed_ms: int,
    error: dict[str, Any] | None = None,
    model: str | None = None,
    first: bool = False,
    frame_index: int | None = None,
    timestamp_ms: float | None = None,
    description: dict[str, Any] | None = None,
) -> str:
    """JSON text of the last chunk: non-null ``finish_reason``, the ``usage`` block, ``error`` if failed.

    ``frame_index`` / ``timestamp_ms`` are those of the last processed frame (``null`` if none), so the
    stream's frame index never goes backwards at the end; ``first`` is set when the task fails before any
    frame chunk, so the model hint is still echoed once.
    """
    payload: dict[str, Any] = {"id": task_id, "object": CHUNK_OBJECT}
    if first:
        payload["model"] = model
    payload["stream_info"] = _stream_info(
        frame_index=frame_index, stats=stats, elapsed_ms=elapsed_ms, timestamp_ms=timestamp_ms
    )
    # a describe segment cut short by the end of the video is described in the terminal chunk
    payload["delta"] = {"results": [{"index": 0, "targets": [], "description": description}] if description else []}
    payload["finish_reason"] = finish_reason
    payload["usage"] = usage
    if error is not None:
        payload["error"] = {"code": error.get("code"), "message": error.get("message")}
    return _dumps(payload)


#: Key of the per-track mean embeddings inside a stored result. Kept for indexing (vectors), left out of
#: ``/results`` unless asked for: a 30-track video would otherwise send ~20k floats nobody requested.
EMBEDDINGS_KEY: Final[str] = "track_embeddings"


def _track_json(track: TrackSummary, labels: dict[int, str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        **track.span(labels),
        "frames_seen": track.frames_seen,
        "best_confidence": round(track.best_confidence, 4),
    }
    mean = track.mean_feature
    if mean is not None:
        body["feature_digest"] = feature_digest(mean)
    if track.text is not None:
        body["text"] = track.text
        body["text_confidence"] = round(track.text_confidence, 4)
    if track.face_frames:
        body["faces"] = {"frames_with_face": track.face_frames, "best_confidence": round(track.best_face_confidence, 4)}
    return body


def result_body(
    task_id: str,
    *,
    model: str | None,
    usage: dict[str, Any],
    tracks: list[TrackSummary],
    labels: dict[int, str] | None,
    descriptions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``/results`` body: one summary per track id, built from the same aggregator the chunks fed.

    With a feature step each track carries ``feature_digest`` (``dim=N;norm=X`` of the track's mean
    un-normalised embedding), and the means themselves are stored under :data:`EMBEDDINGS_KEY`.
    """
    body: dict[str, Any] = {
        "id": task_id,
        "object": RESULT_OBJECT,
        "model": model,
        "usage": {
            **usage,  # backend, runtime, decoder as the terminal chunk says them
            "processed_frames": int(usage.get("processed_frames", 0)),
            "processing_time_ms": int(usage.get("processing_time_ms", 0)),
        },
        "tracks": [_track_json(track, labels) for track in tracks],
    }
    if descriptions is not None:
        body["descriptions"] = descriptions
    embeddings = {str(track.track_id): _vector(mean) for track in tracks if (mean := track.mean_feature) is not None}
    if embeddings:
        body[EMBEDDINGS_KEY] = embeddings
    return body


def image_body(
    object_name: str,
    request_id: str,
    *,
    model: str | None,
    width: int,
    height: int,
    detections: Detections,
    labels: dict[int, str] | None,
    vectors: Vectors | None = None,
    description: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A synchronous vision response / one image of a batch: the image's size and its targets in
    exactly the shape of a video chunk's ``targets`` (untracked: ``track_id`` is -1)."""
    body: dict[str, Any] = {
        "id": request_id,
        "object": object_name,
        "model": model,
        "image": {"width": width, "height": height},
        "targets": targets_json(detections, labels, width, height, vectors),
    }
    if description is not None:
        body["description"] = description
    return body
