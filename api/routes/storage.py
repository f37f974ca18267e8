"""Per-project object storage: presigned uploads and downloads, listing, deletion.

Contract: VisoWork Storage table (50 MB object cap, short-lived presigned URLs). Bytes never
pass through the API: clients PUT and GET directly against S3 with URLs signed here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses, not_found
from api.services import Services
from contract.errors import ErrorCode
from contract.storage import FileInfo, FileList, PresignedURL, PresignRequest, UploadRequest
from store.objects import ObjectInfo, normalise_path, storage_url

router = APIRouter(prefix="/v1/storage", tags=["storage"])


def _expiry(services: Services, requested: int | None) -> int:
    settings = services.settings
    expires = requested or settings.presign_default_expiry_s
    if expires > settings.presign_max_expiry_s:
        message = f"expires_in must be <= {settings.presign_max_expiry_s}"
        raise APIError(ErrorCode.INVALID_REQUEST, message, "expires_in")
    return expires


def _file(info: ObjectInfo) -> FileInfo:
    return FileInfo(
        path=info.path,
        storage_url=storage_url(info.path),
        size=info.size,
        etag=info.etag,
        last_modified=info.last_modified.isoformat(),
        content_type=info.content_type,
    )


def _put_url(
    services: Services, project: str, path: str, size: int, content_type: str | None, expires: int
) -> PresignedURL:
    url = services.objects_or_raise().presign_put(project, path, size, content_type, expires)
    headers = {"Content-Length": str(size)}
    if content_type:
        headers["Content-Type"] = content_type
    return PresignedURL(
        method="PUT", url=url, path=path, storage_url=storage_url(path), expires_in=expires, headers=headers
    )


@router.post("/upload", response_model=PresignedURL, responses=error_responses(413, 503))
async def upload(body: UploadRequest, project: ProjectDep, services: ServicesDep) -> PresignedURL:
    """A presigned PUT for exactly ``size`` bytes (over the object cap → 413)."""
    path = normalise_path(body.path, "path")
    expires = _expiry(services, body.expires_in)
    return await run_in_threadpool(_put_url, services, project, path, body.size, body.content_type, expires)


@router.post("/presign", response_model=PresignedURL, responses=error_responses(404, 413, 503))
async def presign(body: PresignRequest, project: ProjectDep, services: ServicesDep) -> PresignedURL:
    path = normalise_path(body.path, "path")
    expires = _expiry(services, body.expires_in)
    if body.method == "PUT":
        if body.size is None:
            raise APIError(ErrorCode.INVALID_REQUEST, "size is required for a PUT URL", "size")
        return await run_in_threadpool(_put_url, services, project, path, body.size, body.content_type, expires)
    url = await run_in_threadpool(services.objects_or_raise().presign_get, project, path, expires)
    return PresignedURL(method="GET", url=url, path=path, storage_url=storage_url(path), expires_in=expires, headers={})


@router.get("/files", response_model=FileList, responses=error_responses(503))
async def list_files(
    project: ProjectDep,
    services: ServicesDep,
    path: Annotated[str, Query(max_length=1024, description="folder to list (project-relative)")] = "",
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FileList:
    prefix = normalise_path(path.rstrip("/"), "path") + "/" if path.strip("/") else ""
    items, next_cursor = await run_in_threadpool(services.objects_or_raise().list, project, prefix, cursor, limit)
    return FileList(data=[_file(item) for item in items], next_cursor=next_cursor)


@router.get(
    "/files/{path:path}",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: {"description": "to a short-lived presigned GET"}, **error_responses(404, 503)},
)
async def get_file(path: str, project: ProjectDep, services: ServicesDep) -> RedirectResponse:
    """302 to a short-lived presigned GET."""
    clean = normalise_path(path, "path")
    expires = services.settings.presign_default_expiry_s
    url = await run_in_threadpool(services.objects_or_raise().presign_get, project, clean, expires)
    return RedirectResponse(url, status_code=302)


@router.delete("/files/{path:path}", status_code=204, response_class=Response, responses=error_responses(404, 503))
async def delete_file(path: str, project: ProjectDep, services: ServicesDep) -> Response:
    clean = normalise_path(path, "path")
    if not await run_in_threadpool(services.objects_or_raise().delete, project, clean):
        raise not_found("file", clean)
    return Response(status_code=204)
