"""Per-track aggregation: the rolled-up summary of every track_id seen in a task.

Fed once per processed frame with the tracker's output; holds O(tracks) state, never frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.detections import NO_TRACK, Detections
from models.coco import class_name
from pipelines.executor import FACES, FEATURE, TEXT, TEXT_CONFIDENCE


def feature_digest(vector: npt.NDArray[np.floating[Any]]) -> str:
    """The contract's ``dim=N;norm=X`` (X to 4 decimals) of an embedding."""
    values = np.asarray(vector, dtype=np.float64).reshape(-1)
    return f"dim={values.size};norm={float(np.linalg.norm(values)):.4f}"


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
    feature_sum: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    feature_frames: int = 0
    text: str | None = None
    text_confidence: float = 0.0
    face_frames: int = 0
    best_face_confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def span(self, labels: dict[int, str] | None) -> dict[str, Any]:
        """Which track, of what, from when to when: the one builder of the fields that a result's
        ``tracks[]`` entry and a track's vector metadata share (in this order)."""
        return {
            "track_id": self.track_id,
            "class": class_name(self.class_id, labels),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_timestamp_ms": round(self.first_timestamp_ms, 3),
            "last_timestamp_ms": round(self.last_timestamp_ms, 3),
        }

    @property
    def mean_feature(self) -> npt.NDArray[np.float32] | None:
        """The mean un-normalised embedding over the frames the feature step saw this track in."""
        if self.feature_sum is None or not self.feature_frames:
            return None
        return (self.feature_sum / self.feature_frames).astype(np.float32)

    def absorb(self, data: dict[str, Any], row: int) -> None:
        """Fold one frame's step results for this track in: feature sum, best text, faces seen."""
        feature = data[FEATURE][row] if FEATURE in data else None
        if feature is not None:
            vector = np.asarray(feature, dtype=np.float64)
            self.feature_sum = vector.copy() if self.feature_sum is None else self.feature_sum + vector
            self.feature_frames += 1
        text = data[TEXT][row] if TEXT in data else None
        if text:
            confidence = data[TEXT_CONFIDENCE][row] if TEXT_CONFIDENCE in data else None
            score = float(confidence) if confidence is not None else 0.0
            if self.text is None or score > self.text_confidence:  # the best reading wins
                self.text, self.text_confidence = text, score
        faces = data[FACES][row] if FACES in data else None
        if faces is not None and len(faces):
            self.face_frames += 1
            self.best_face_confidence = max(self.best_face_confidence, float(faces.confidence.max()))


class TrackAggregator:
    """Accumulates :class:`TrackSummary` per track id, in order of first appearance."""

    def __init__(self) -> None:
        self._tracks: dict[int, TrackSummary] = {}

    def add(self, frame_index: int, timestamp_ms: float, detections: Detections) -> None:
        tracked = np.flatnonzero(detections.track_id != NO_TRACK)
        for row, track_id, class_id, confidence in zip(
            tracked.tolist(),
            detections.track_id[tracked].tolist(),
            detections.class_id[tracked].tolist(),
            detections.confidence[tracked].tolist(),
            strict=True,
        ):
            summary = self._tracks.get(track_id)
            if summary is None:
                summary = self._tracks[track_id] = TrackSummary(
                    track_id=track_id,
                    class_id=class_id,
                    first_frame=frame_index,
                    last_frame=frame_index,
                    first_timestamp_ms=timestamp_ms,
                    last_timestamp_ms=timestamp_ms,
                    frames_seen=1,
                    best_confidence=float(np.float32(confidence)),
                )
            else:
                summary.last_frame = frame_index
                summary.last_timestamp_ms = timestamp_ms
                summary.frames_seen += 1
                summary.best_confidence = max(summary.best_confidence, float(confidence))
            summary.absorb(detections.data, row)

    @property
    def tracks(self) -> list[TrackSummary]:
        return sorted(self._tracks.values(), key=lambda track: track.track_id)
