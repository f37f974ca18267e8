"""The tracker thresholds of one task, from the settings and the request's score floor.

Both the task runner and the bare loop track with :class:`kernels.tracking.ByteTracker`; this is the
one place their :class:`~kernels.tracking.TrackerConfig` is made, so a benchmark's baseline tracks
exactly as a served task does.
"""

from __future__ import annotations

from kernels.tracking import TrackerConfig
from visiongrid.settings import Settings

__all__ = ["tracker_config"]


def tracker_config(settings: Settings, min_confidence: float | None = None) -> TrackerConfig:
    """Tracker thresholds; a request's ``min_confidence`` raises (or lowers) the bar a
    detection must clear to start or directly extend a track. Weaker detections (down to
    ``track_low_threshold``) only continue existing tracks, as ByteTrack intends."""
    high = settings.track_high_threshold if min_confidence is None else min_confidence
    return TrackerConfig(
        high_threshold=high,
        low_threshold=min(settings.track_low_threshold, high),
        new_track_threshold=max(high, settings.track_new_threshold if min_confidence is None else high),
        match_iou=settings.track_match_iou,
        lost_buffer=settings.track_lost_buffer,
    )
