"""A task's outputs (``output.annotated_video`` / ``track_previews``) as the API shows them: the
stored ``storage://`` URLs plus presigned GETs made when the result is read (so they never expire
in the database), and the ``/annotated`` view."""

from __future__ import annotations

import copy
from typing import Any

from api.errors import APIError
from api.services import Services
from contract.errors import ErrorCode
from contract.video import AnnotatedVideo
from store.objects import STORAGE_SCHEME
from store.records import TaskRecord

__all__ = ["annotated_view", "with_presigned_outputs"]


def _presign(services: Services, project: str, url: str) -> tuple[str, int]:
    expires = services.settings.presign_default_expiry_s
    path = url.removeprefix(STORAGE_SCHEME)
    return services.objects_or_raise().presign_get(project, path, expires), expires


def with_presigned_outputs(services: Services, project: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``url`` / ``thumbnail_url`` / ``preview_url`` next to each stored output."""
    video = result.get("annotated_video")
    tracked = any("thumbnail" in track for track in result.get("tracks", []))
    if video is None and not tracked:
        return result
    shown = copy.deepcopy(result)
    if video is not None:
        shown["annotated_video"]["url"] = _presign(services, project, video["storage_url"])[0]
    for track in shown.get("tracks", []):
        for kind in ("thumbnail", "preview"):
            if kind in track:
                track[f"{kind}_url"] = _presign(services, project, track[kind])[0]
    return shown


def annotated_view(services: Services, project: str, task: TaskRecord) -> AnnotatedVideo:
    if task.status != "succeeded" or task.result is None:
        raise APIError(ErrorCode.TASK_NOT_SUCCEEDED, f"task {task.id} is {task.status}", status=task.status)
    video = task.result.get("annotated_video")
    if video is None:
        message = f"task {task.id} has no annotated video: submit it with output.annotated_video true"
        raise APIError(ErrorCode.NOT_FOUND, message)
    url, expires = _presign(services, project, video["storage_url"])
    return AnnotatedVideo(
        task_id=task.id, storage_url=video["storage_url"], url=url, expires_in=expires, frames=video["frames"]
    )
