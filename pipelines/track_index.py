"""Index a finished video's tracks and described segments into the collection its feature step named.

Each track's mean (un-normalised) embedding goes into the collection's image space and each segment
description into its text space, so an object or a moment can be found from another video. A
vector-store failure does not fail the task: its results stand, and ``vectors.error`` in the result
says what was not indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from contract.errors import ErrorCode
from pipelines.tracks import TrackSummary

__all__ = ["VideoIndexer", "index_items", "index_video_vectors"]

logger = logging.getLogger(__name__)

VideoIndexer = Callable[[str, str, list[dict[str, Any]]], Awaitable[dict[str, Any]]]
"""(project, collection id, items) -> index result: stores a video's tracks and segments as vectors."""


def _track_item(task_id: str, track: TrackSummary, labels: dict[int, str] | None) -> dict[str, Any] | None:
    """The vector item of one track (None for a track the feature step never saw)."""
    mean = track.mean_feature
    if mean is None:
        return None
    metadata = {"source": "video_track", "task_id": task_id, **track.span(labels)}
    return {"id": f"{task_id}:track:{track.track_id}", "vector": mean.tolist(), "space": "image", "metadata": metadata}


def _segment_item(task_id: str, description: dict[str, Any]) -> dict[str, Any]:
    """The text item of one described segment, keyed by the segment's first frame."""
    metadata = {"source": "video_segment", "task_id": task_id, "provider": description["provider"]}
    for key in ("first_frame", "last_frame", "start_ms", "end_ms"):
        if description.get(key) is not None:
            metadata[key] = description[key]
    segment = description.get("first_frame")
    return {"id": f"{task_id}:segment:{segment}", "text": description["text"], "metadata": metadata}


def index_items(
    task_id: str,
    tracks: Sequence[TrackSummary],
    labels: dict[int, str] | None,
    descriptions: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The items to index for a task: its tracks with an embedding, then its described segments."""
    items = [item for track in tracks if (item := _track_item(task_id, track, labels)) is not None]
    items.extend(_segment_item(task_id, description) for description in descriptions)
    return items


async def index_video_vectors(
    indexer: VideoIndexer | None, project: str, collection: str, task_id: str, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """Index ``items`` into ``collection``; the result's ``vectors`` block (counts, or what failed)."""
    summary: dict[str, Any] = {"collection": collection, "indexed_tracks": 0, "indexed_segments": 0}
    if not items:
        return summary
    if indexer is None:
        return {
            **summary,
            "error": {"code": ErrorCode.VECTORS_UNAVAILABLE.value, "message": "no vector index attached"},
        }
    try:
        await indexer(project, collection, items)
    except Exception as exc:
        cause = getattr(exc, "cause", None) or exc
        logger.warning("task %s: indexing into %s failed", task_id, collection, exc_info=True)
        code = getattr(cause, "code", None) or ErrorCode.VECTORS_UNAVAILABLE.value
        return {**summary, "error": {"code": code, "message": f"{type(cause).__name__}: {cause}"}}
    tracks = sum(1 for item in items if "vector" in item)
    return {**summary, "indexed_tracks": tracks, "indexed_segments": len(items) - tracks}
