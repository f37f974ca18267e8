"""The bare loop: decode → detect → track in one process, no Ray, no HTTP.

It is both the ``visiongrid analyse`` command and the baseline every serving benchmark is
divided by, so it does the same work a task runner does, as directly as possible: frames are
streamed from the decoder in detector-sized batches, never held for the whole video.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kernels.detections import Detections
from kernels.tracking import ByteTracker
from models.coco import resolve_classes
from models.registry import get_model
from models.runtime.detector import Detector
from pipelines.decode import DecodedFrame, DecodeStats, FrameRange, Sampling, VideoDecoder
from pipelines.tracker_settings import tracker_config
from pipelines.tracks import TrackAggregator, TrackSummary
from visiongrid.settings import Settings, get_settings

# ``tracker_config`` moved to pipelines/tracker_settings.py; re-exported here for callers not yet moved.
__all__ = ["KNOWN_STEPS", "AnalysisResult", "UnknownStepError", "analyse_video", "load_detector", "tracker_config"]

KNOWN_STEPS = ("detect",)

FrameCallback = Callable[[DecodedFrame, Detections], None]


class UnknownStepError(ValueError):
    def __init__(self, step: str) -> None:
        super().__init__(f"unknown step {step!r}; known steps: {list(KNOWN_STEPS)}")
        self.step = step


@dataclass
class AnalysisResult:
    tracks: list[TrackSummary]
    processed_frames: int
    stats: DecodeStats
    finish_reason: str
    elapsed_s: float
    requested_classes: dict[int, str] | None


def load_detector(settings: Settings) -> Detector:
    """The bare loop's detector: alone in its process, so ORT's spin-waiting threads only help it."""
    return Detector(
        get_model(settings.detector_model, settings.models_dir),
        intra_op_threads=settings.ort_intra_op_threads,
        inter_op_threads=settings.ort_inter_op_threads,
        spin=True,
    )


def batched(frames: Iterable[DecodedFrame], size: int) -> Iterator[list[DecodedFrame]]:
    iterator = iter(frames)
    while batch := list(islice(iterator, size)):
        yield batch


def analyse_video(
    source: str | Path | BinaryIO,
    *,
    steps: Sequence[str] = ("detect",),
    sampling: Sampling | None = None,
    frame_range: FrameRange | None = None,
    max_frames: int | None = None,
    classes: Sequence[str] | None = None,
    min_confidence: float | None = None,
    settings: Settings | None = None,
    detector: Detector | None = None,
    on_frame: FrameCallback | None = None,
) -> AnalysisResult:
    """Decode, detect and track one video; return per-track summaries.

    ``classes`` may use COCO names or aliases ("pedestrian"); ``on_frame`` sees every
    processed frame with its tracked detections (the runner will build chunks there).
    """
    settings = settings or get_settings()
    for step in steps:
        if step not in KNOWN_STEPS:
            raise UnknownStepError(step)
    requested = resolve_classes(classes)
    class_filter = np.fromiter(requested, dtype=np.int64) if requested else None
    config = tracker_config(settings, min_confidence)
    detector = detector or load_detector(settings)
    tracker = ByteTracker(config)
    aggregator = TrackAggregator()
    processed = 0
    started = time.perf_counter()
    decoder = VideoDecoder(
        source,
        sampling=sampling or Sampling(mode="fps", value=settings.default_sampling_fps),
        frame_range=frame_range,
        max_frames=max_frames if max_frames is not None else settings.default_max_frames,
        max_pixels=settings.max_video_pixels,
        max_duration_s=settings.max_video_duration_s,
    )
    with decoder:
        for batch in batched(decoder, settings.detector_batch_size):
            per_frame = detector.detect(
                [frame.image for frame in batch], min_confidence=config.low_threshold, class_filter=class_filter
            )
            for frame, detections in zip(batch, per_frame, strict=True):
                tracked = tracker.update(detections)
                aggregator.add(frame.frame_index, frame.timestamp_ms, tracked)
                processed += 1
                if on_frame is not None:
                    on_frame(frame, tracked)
    return AnalysisResult(
        tracks=aggregator.tracks,
        processed_frames=processed,
        stats=decoder.stats,
        finish_reason=decoder.finish_reason or "stop",
        elapsed_s=time.perf_counter() - started,
        requested_classes=requested,
    )
