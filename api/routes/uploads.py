"""Resumable chunked uploads (contract: initialize / send chunk / finalize; see ``store/uploads.py``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError
from api.services import Services
from store.objects import storage_url
from store.uploads import UploadClosed, UploadError, UploadNotFound, UploadRecord, UploadStore

router = APIRouter(prefix="/v1/storage/uploads", tags=["storage"])


class CreateUpload(BaseModel):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=1)
    sha256: str = Field(min_length=64, max_length=64)
    content_type: str | None = Field(None, max_length=200)


class UploadView(BaseModel):
    id: str
    object: Literal["storage.upload"] = "storage.upload"
    path: str
    size: int
    chunk_size: int
    chunks: int
    received: list[int]
    status: str


class ChunkReceived(BaseModel):
    received: list[int]


class FinalizedUpload(BaseModel):
    path: str
    storage_url: str
    size: int
    sha256: str


def _store(services: Services) -> UploadStore:
    return services.uploads_or_raise()


def _view(record: UploadRecord, received: list[int]) -> UploadView:
    return UploadView(
        id=record.id,
        path=record.path,
        size=record.size,
        chunk_size=record.chunk_size,
        chunks=record.chunks,
        received=received,
        status=record.status,
    )


def _api_error(exc: Exception) -> APIError:
    if isinstance(exc, UploadNotFound):
        return APIError(404, "not_found", str(exc))
    if isinstance(exc, UploadClosed):
        return APIError(409, "upload_closed", str(exc))
    assert isinstance(exc, UploadError)
    return APIError(400, exc.code, exc.message, exc.field, **exc.extra)


@router.post("", status_code=201, response_model=UploadView)
async def create_upload(body: CreateUpload, project: ProjectDep, services: ServicesDep) -> UploadView:
    store = _store(services)
    try:
        record = await run_in_threadpool(store.create, project, body.path, body.size, body.sha256, body.content_type)
    except UploadError as exc:
        raise _api_error(exc) from exc
    return _view(record, [])


@router.put("/{upload_id}/chunks/{n}", response_model=ChunkReceived)
async def put_chunk(
    upload_id: str, n: int, request: Request, project: ProjectDep, services: ServicesDep
) -> ChunkReceived:
    store = _store(services)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > store.chunk_size:
        raise APIError(400, "invalid_chunk_length", f"a chunk is at most {store.chunk_size} bytes", "body")
    data = await request.body()
    try:
        received = await run_in_threadpool(store.put_chunk, project, upload_id, n, data)
    except (UploadError, UploadNotFound, UploadClosed) as exc:
        raise _api_error(exc) from exc
    return ChunkReceived(received=received)


@router.get("/{upload_id}", response_model=UploadView)
async def get_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> UploadView:
    store = _store(services)
    record = await run_in_threadpool(store.get, project, upload_id)
    if record is None:
        raise _api_error(UploadNotFound(f"upload {upload_id!r} not found"))
    received = await run_in_threadpool(store.received, project, upload_id)
    return _view(record, received)


@router.post("/{upload_id}/finalize", response_model=FinalizedUpload)
async def finalize_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> FinalizedUpload:
    store = _store(services)
    try:
        path = await run_in_threadpool(store.finalize, project, upload_id)
    except (UploadError, UploadNotFound, UploadClosed) as exc:
        raise _api_error(exc) from exc
    record = await run_in_threadpool(store.get, project, upload_id)
    assert record is not None
    return FinalizedUpload(path=path, storage_url=storage_url(path), size=record.size, sha256=record.sha256)


@router.delete("/{upload_id}", status_code=204)
async def abort_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    store = _store(services)
    try:
        await run_in_threadpool(store.abort, project, upload_id)
    except (UploadNotFound, UploadClosed) as exc:
        raise _api_error(exc) from exc
    return Response(status_code=204)
