"""Per-track aggregation: the rolled-up summary of every track_id seen in a task.

Fed once per processed frame with the tracker's output; holds O(tracks) state, never frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kernels.detections import NO_TRACK, Detections


@dataclass
class TrackSummary:
    """One track's summary, the shape of the contract's ``results.tracks[]`` entries."""

    track_id: int
    class_id: int
    first_frame: int
    last_frame: int
    first_timestamp_ms: float
    last_timestamp_ms: float
    frames_seen: int
    best_confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrackAggregator:
    """Accumulates :class:`TrackSummary` per track id, in order of first appearance."""

    def __init__(self) -> None:
        self._tracks: dict[int, TrackSummary] = {}

    def add(self, frame_index: int, timestamp_ms: float, detections: Detections) -> None:
        tracked = detections.track_id != NO_TRACK
        for track_id, class_id, confidence in zip(
            detections.track_id[tracked].tolist(),
            detections.class_id[tracked].tolist(),
            detections.confidence[tracked].tolist(),
            strict=True,
        ):
            summary = self._tracks.get(track_id)
            if summary is None:
                self._tracks[track_id] = TrackSummary(
                    track_id=track_id,
                    class_id=class_id,
                    first_frame=frame_index,
                    last_frame=frame_index,
                    first_timestamp_ms=timestamp_ms,
                    last_timestamp_ms=timestamp_ms,
                    frames_seen=1,
                    best_confidence=float(np.float32(confidence)),
                )
                continue
            summary.last_frame = frame_index
            summary.last_timestamp_ms = timestamp_ms
            summary.frames_seen += 1
            summary.best_confidence = max(summary.best_confidence, float(confidence))

    @property
    def tracks(self) -> list[TrackSummary]:
        return sorted(self._tracks.values(), key=lambda track: track.track_id)
