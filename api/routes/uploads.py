"""Resumable chunked uploads (contract: initialize / send chunk / finalize; see ``store/uploads.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses, not_found
from api.services import Services
from contract.errors import ErrorCode
from contract.storage import ChunkReceived, CreateUpload, FinalizedUpload, UploadView
from store.objects import storage_url
from store.uploads import UploadRecord, UploadStore

router = APIRouter(prefix="/v1/storage/uploads", tags=["storage"])


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


@router.post("", status_code=201, response_model=UploadView, responses=error_responses(413, 503))
async def create_upload(body: CreateUpload, project: ProjectDep, services: ServicesDep) -> UploadView:
    store = _store(services)
    record = await run_in_threadpool(store.create, project, body.path, body.size, body.sha256, body.content_type)
    return _view(record, [])


@router.put(
    "/{upload_id}/chunks/{n}",
    response_model=ChunkReceived,
    responses=error_responses(404, 409, 503),
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def put_chunk(
    upload_id: str,
    n: Annotated[int, Path(ge=0, le=2**31, description="chunk number, 0-based")],
    request: Request,
    project: ProjectDep,
    services: ServicesDep,
) -> ChunkReceived:
    store = _store(services)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > store.chunk_size:
        raise APIError(ErrorCode.INVALID_CHUNK_LENGTH, f"a chunk is at most {store.chunk_size} bytes", "body")
    data = await request.body()
    received = await run_in_threadpool(store.put_chunk, project, upload_id, n, data)
    return ChunkReceived(received=received)


@router.get("/{upload_id}", response_model=UploadView, responses=error_responses(404, 503))
async def get_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> UploadView:
    store = _store(services)
    record = await run_in_threadpool(store.get, project, upload_id)
    if record is None:
        raise not_found("upload", upload_id)
    received = await run_in_threadpool(store.received, project, upload_id)
    return _view(record, received)


@router.post("/{upload_id}/finalize", response_model=FinalizedUpload, responses=error_responses(404, 409, 503))
async def finalize_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> FinalizedUpload:
    store = _store(services)
    path = await run_in_threadpool(store.finalize, project, upload_id)
    record = await run_in_threadpool(store.get, project, upload_id)
    assert record is not None
    return FinalizedUpload(path=path, storage_url=storage_url(path), size=record.size, sha256=record.sha256)


@router.delete("/{upload_id}", status_code=204, response_class=Response, responses=error_responses(404, 409, 503))
async def abort_upload(upload_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    store = _store(services)
    await run_in_threadpool(store.abort, project, upload_id)
    return Response(status_code=204)
