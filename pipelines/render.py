"""What a task can make besides its chunks (``output`` at submit): an annotated H.264 MP4 of the
analysed frames with boxes, ids and trails drawn, and per track a thumbnail (its best-scored crop)
and a short animated GIF preview, as VideoVector offers. Made by the task's own worker while it
runs (the frames are already decoded there), stored in the project's storage under
``outputs/<task id>/`` and deleted with the task.

The MP4 has one frame per chunk, in order, with the chunk's timestamps as its presentation times
(a variable-frame-rate file that plays at the source's pace): frame N of the video is chunk N, and
its boxes are drawn on exactly the pixels the chunk's ``roi`` names (``kernels.draw``).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from kernels.detections import Detections
from kernels.draw import draw_targets
from models.coco import class_name
from pipelines.chunks import rois
from store.objects import ObjectStore, storage_url

__all__ = ["OutputOptions", "Renderer", "publish"]

TRAIL_POINTS = 24  # points of a track's trail (box-bottom centres of its last analysed frames)
PREVIEW_FRAMES = 12  # frames of a track's GIF preview, spread over its whole life
PREVIEW_SIZE = (128, 128)  # every preview frame is letterboxed to this (a GIF has one size)
PREVIEW_FRAME_MS = 200


@dataclass(frozen=True)
class OutputOptions:
    annotated_video: bool = False
    track_previews: bool = False

    @property
    def any(self) -> bool:
        return self.annotated_video or self.track_previews


class _VideoWriter:
    """H.264 in MP4 with its index first (``faststart``: a browser plays it from a presigned URL before
    it has the end), written to a temporary file: the muxer rewrites the file by name to move the index."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="vg-annotated-", suffix=".mp4")
        os.close(handle)
        self.path = Path(name)
        self.container: Any = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream: Any = None
        self.frames = 0
        self.last_pts = -1
        self.closed = False

    def add(self, image: npt.NDArray[np.uint8], timestamp_ms: float) -> None:
        height, width = image.shape[:2]
        if self.stream is None:
            self.stream = self.container.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "20"})
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = Fraction(1, 1000)
        padded = np.asarray(cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE), np.uint8)
        frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
        frame.pts = max(self.last_pts + 1, round(timestamp_ms))  # strictly increasing, in ms
        frame.time_base = Fraction(1, 1000)
        self.last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def finish(self) -> Path:
        if self.stream is not None:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        self.closed = True
        self.container.close()
        return self.path

    def discard(self) -> None:
        if not self.closed:
            self.closed = True
            self.container.close()
        self.path.unlink(missing_ok=True)


@dataclass
class _TrackMedia:
    best_score: float = -1.0
    best_crop: npt.NDArray[np.uint8] | None = None
    frames: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    stride: int = 1  # keep every stride-th sighting; doubled (and the list halved) when full
    seen: int = 0


def _fit(crop: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    width, height = size
    scale = min(width / crop.shape[1], height / crop.shape[0])
    resized = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))))
    canvas = np.full((height, width, 3), 32, dtype=np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


class Renderer:
    """Fed every emitted frame with its tracked detections, in chunk order; ``outputs()`` at the end."""

    def __init__(self, options: OutputOptions, labels: dict[int, str] | None) -> None:
        self.options = options
        self.labels = labels
        self.video = _VideoWriter() if options.annotated_video else None
        self.trails: dict[int, deque[tuple[int, int]]] = {}
        self.tracks: dict[int, _TrackMedia] = {}

    def add(self, image: npt.NDArray[np.uint8], timestamp_ms: float, tracked: Detections) -> None:
        height, width = image.shape[:2]
        boxes = [(r["left"], r["top"], r["width"], r["height"]) for r in rois(tracked.xyxy, width, height)]
        ids = tracked.track_id.tolist()
        if self.video is not None:
            for track_id, (left, top, box_w, box_h) in zip(ids, boxes, strict=True):
                trail = self.trails.setdefault(track_id, deque(maxlen=TRAIL_POINTS))
                trail.append((left + box_w // 2, top + box_h - 1))
            live = {track_id: list(self.trails[track_id]) for track_id in ids}
            names = [class_name(class_id, self.labels) for class_id in tracked.class_id.tolist()]
            self.video.add(draw_targets(image, boxes, ids, names, live), timestamp_ms)
        if self.options.track_previews:
            for track_id, score, box in zip(ids, tracked.confidence.tolist(), boxes, strict=True):
                if track_id >= 0:  # an unconfirmed target has no track to preview
                    self._sighting(image, track_id, float(score), box)

    def _sighting(
        self, image: npt.NDArray[np.uint8], track_id: int, score: float, box: tuple[int, int, int, int]
    ) -> None:
        left, top, box_w, box_h = box
        crop = image[top : top + box_h, left : left + box_w]
        media = self.tracks.setdefault(track_id, _TrackMedia())
        if score > media.best_score:
            media.best_score, media.best_crop = score, crop.copy()
        if media.seen % media.stride == 0:
            media.frames.append(_fit(crop, PREVIEW_SIZE))
            if len(media.frames) > 2 * PREVIEW_FRAMES:
                media.frames, media.stride = media.frames[::2], media.stride * 2
        media.seen += 1

    def annotated_video(self) -> tuple[Path, int] | None:
        """The finished MP4 (a temporary file: the caller deletes it) and its frame count; None when
        none was asked or no frame came."""
        if self.video is None:
            return None
        if self.video.frames == 0:
            self.video.discard()
            return None
        return self.video.finish(), self.video.frames

    def discard(self) -> None:
        """The task did not succeed: drop the half-written video."""
        if self.video is not None:
            self.video.discard()

    def track_media(self) -> dict[int, tuple[bytes, bytes]]:
        """Per track id: (thumbnail JPEG, preview GIF)."""
        made: dict[int, tuple[bytes, bytes]] = {}
        for track_id, media in self.tracks.items():
            if media.best_crop is None:
                continue
            thumbnail = io.BytesIO()
            Image.fromarray(media.best_crop).save(thumbnail, format="JPEG", quality=90)
            step = max(1, len(media.frames) // PREVIEW_FRAMES)
            # a fast palette per frame: Pillow's default quantizer took 190 ms a track (14 tracks: 2.6 s)
            frames = [
                Image.fromarray(frame).quantize(method=Image.Quantize.FASTOCTREE)
                for frame in media.frames[::step][:PREVIEW_FRAMES]
            ]
            preview = io.BytesIO()
            frames[0].save(
                preview, format="GIF", save_all=True, append_images=frames[1:], duration=PREVIEW_FRAME_MS, loop=0
            )
            made[track_id] = (thumbnail.getvalue(), preview.getvalue())
        return made


def publish(
    renderer: Renderer, objects: ObjectStore, project: str, task_id: str, record: Callable[[str], None]
) -> dict[str, Any]:
    """Store what ``renderer`` made under ``outputs/<task id>/``; each object is ``record``-ed (to be
    deleted with the task) before it is written. The result's additions: ``annotated_video`` and, by
    track id, ``thumbnail`` / ``preview`` storage URLs."""
    folder = f"outputs/{task_id}"
    added: dict[str, Any] = {}
    video = renderer.annotated_video()
    if video is not None:
        path, frames = video
        try:
            record(storage_url(f"{folder}/annotated.mp4"))
            with path.open("rb") as handle:
                objects.put_stream(project, f"{folder}/annotated.mp4", handle, "video/mp4")
        finally:
            path.unlink(missing_ok=True)
        added["annotated_video"] = {"storage_url": storage_url(f"{folder}/annotated.mp4"), "frames": frames}
    media: dict[int, dict[str, str]] = {}
    for track_id, (thumbnail, preview) in renderer.track_media().items():
        names = {"thumbnail": (f"{folder}/track-{track_id}.jpg", thumbnail, "image/jpeg")}
        names["preview"] = (f"{folder}/track-{track_id}.gif", preview, "image/gif")
        for kind, (name, data, content_type) in names.items():
            record(storage_url(name))
            objects.put_bytes(project, name, data, content_type)
            media.setdefault(track_id, {})[kind] = storage_url(name)
    if media:
        added["track_media"] = media
    return added
