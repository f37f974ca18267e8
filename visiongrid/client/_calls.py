"""Every call of the client, described once (method, path, body, answer model); the sync and async
resources only send these. Request bodies are the contract's own models or plain mappings."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from contract.chunks import TaskResult
from contract.status import StatusView
from contract.storage import ChunkReceived, FileList, FinalizedUpload, PresignedURL, UploadView
from contract.vectors import Collection, CollectionList, IndexResult, SearchResults
from contract.video import TaskCreated, TaskList, TaskView
from contract.vision import ModelList, VisionResult
from visiongrid.client._core import Call, body_of

__all__ = ["ImageSource", "image_in"]

#: An image to analyse: a local file (``Path``, or a ``str`` naming one), raw bytes, an http(s) URL,
#: ``storage://path`` in the project's storage, or the contract's ``{"url"|"base64"|"path": ...}``.
ImageSource = Path | str | bytes | Mapping[str, str]

Body = BaseModel | Mapping[str, Any]


def image_in(image: ImageSource) -> dict[str, str]:
    """The contract's ``ImageIn`` for any :data:`ImageSource`."""
    if isinstance(image, Mapping):
        return dict(image)
    if isinstance(image, bytes):
        return {"base64": base64.b64encode(image).decode()}
    text = str(image)
    if isinstance(image, str) and text.startswith(("http://", "https://")):
        return {"url": text}
    if isinstance(image, str) and text.startswith("storage://"):
        return {"path": text}
    return {"base64": base64.b64encode(Path(text).read_bytes()).decode()}


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _id(value: str) -> str:
    return quote(value, safe="")


# --- video -------------------------------------------------------------------------------------


def process(request: Body) -> Call[TaskCreated]:
    return Call("POST", "/v1/video/process", TaskCreated, json=body_of(request))


def process_file(data: bytes, *, steps: Sequence[str], **query: Any) -> Call[TaskCreated]:
    """The raw-body route: the video's bytes as the body, the options in the query."""
    params = _drop_none(steps=",".join(steps), **query)
    headers = {"Content-Type": "application/octet-stream"}
    return Call("POST", "/v1/video/process", TaskCreated, content=data, params=params, headers=headers)


def get_task(task_id: str, *, include_request: bool = False) -> Call[TaskView]:
    params = {"include": "request"} if include_request else None
    return Call("GET", f"/v1/video/tasks/{_id(task_id)}", TaskView, params=params)


def list_tasks(*, status: str | None = None, limit: int = 20, cursor: str | None = None) -> Call[TaskList]:
    return Call("GET", "/v1/video/tasks", TaskList, params=_drop_none(status=status, limit=limit, cursor=cursor))


def cancel_task(task_id: str) -> Call[TaskView]:
    return Call("POST", f"/v1/video/tasks/{_id(task_id)}/cancel", TaskView)


def delete_task(task_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/video/tasks/{_id(task_id)}", None)


def task_results(task_id: str) -> Call[TaskResult]:
    return Call("GET", f"/v1/video/tasks/{_id(task_id)}/results", TaskResult)


def stream_path(task_id: str) -> str:
    return f"/v1/video/tasks/{_id(task_id)}/stream"


# --- vision ------------------------------------------------------------------------------------


def detect(
    image: ImageSource, *, classes: Sequence[str] | None = None, min_confidence: float | None = None
) -> Call[VisionResult]:
    body = _drop_none(image=image_in(image), classes=list(classes) if classes else None, min_confidence=min_confidence)
    return Call("POST", "/v1/vision/detect", VisionResult, json=body)


def ocr(image: ImageSource, *, min_confidence: float | None = None) -> Call[VisionResult]:
    body = _drop_none(image=image_in(image), min_confidence=min_confidence)
    return Call("POST", "/v1/vision/ocr", VisionResult, json=body)


def describe(image: ImageSource, *, model: str | None = None) -> Call[VisionResult]:
    return Call("POST", "/v1/vision/describe", VisionResult, json=_drop_none(image=image_in(image), model=model))


def vision_models() -> Call[ModelList]:
    return Call("GET", "/v1/vision/models", ModelList)


# --- storage -----------------------------------------------------------------------------------


def create_upload(path: str, size: int, sha256: str, content_type: str | None) -> Call[UploadView]:
    body = _drop_none(path=path, size=size, sha256=sha256, content_type=content_type)
    return Call("POST", "/v1/storage/uploads", UploadView, json=body)


def put_chunk(upload_id: str, n: int, data: bytes) -> Call[ChunkReceived]:
    headers = {"Content-Type": "application/octet-stream"}
    return Call("PUT", f"/v1/storage/uploads/{_id(upload_id)}/chunks/{n}", ChunkReceived, content=data, headers=headers)


def get_upload(upload_id: str) -> Call[UploadView]:
    return Call("GET", f"/v1/storage/uploads/{_id(upload_id)}", UploadView)


def finalize_upload(upload_id: str) -> Call[FinalizedUpload]:
    return Call("POST", f"/v1/storage/uploads/{_id(upload_id)}/finalize", FinalizedUpload)


def list_files(path: str = "", *, limit: int = 100, cursor: str | None = None) -> Call[FileList]:
    return Call("GET", "/v1/storage/files", FileList, params=_drop_none(path=path, limit=limit, cursor=cursor))


def delete_file(path: str) -> Call[None]:
    return Call("DELETE", f"/v1/storage/files/{quote(path.removeprefix('storage://'))}", None)


def presign(path: str, *, method: str = "GET", expires_in: int | None = None) -> Call[PresignedURL]:
    body = _drop_none(path=path, method=method, expires_in=expires_in)
    return Call("POST", "/v1/storage/presign", PresignedURL, json=body)


# --- vectors -----------------------------------------------------------------------------------


def create_collection(name: str, *, model: str = "multimodal", metric: str = "cosine") -> Call[Collection]:
    return Call("POST", "/v1/vectors/collections", Collection, json={"name": name, "model": model, "metric": metric})


def list_collections() -> Call[CollectionList]:
    return Call("GET", "/v1/vectors/collections", CollectionList)


def get_collection(collection_id: str) -> Call[Collection]:
    return Call("GET", f"/v1/vectors/collections/{_id(collection_id)}", Collection)


def delete_collection(collection_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/vectors/collections/{_id(collection_id)}", None)


def index(collection_id: str, items: Sequence[Body]) -> Call[IndexResult]:
    body = {"items": [body_of(item) for item in items]}
    return Call("POST", f"/v1/vectors/collections/{_id(collection_id)}/index", IndexResult, json=body)


def search(collection_id: str, request: Body) -> Call[SearchResults]:
    return Call("POST", f"/v1/vectors/collections/{_id(collection_id)}/search", SearchResults, json=body_of(request))


# --- status ------------------------------------------------------------------------------------


def status() -> Call[StatusView]:
    return Call("GET", "/v1/status", StatusView)
