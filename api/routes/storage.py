"""Per-project object storage: presigned uploads and downloads, listing, deletion.

Contract: VisoWork Storage table (50 MB object cap, short-lived presigned URLs). Bytes never
pass through the API: clients PUT and GET directly against S3 with URLs signed here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError
from api.services import Services
from store.objects import ObjectInfo, normalise_path, storage_url

router = APIRouter(prefix="/v1/storage", tags=["storage"])


class UploadRequest(BaseModel):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0, description="exact byte count the client will PUT (signed as Content-Length)")
    content_type: str | None = Field(None, max_length=200)
    expires_in: int | None = Field(None, ge=1, description="seconds the URL stays valid")


class PresignRequest(BaseModel):
    path: str = Field(min_length=1, max_length=1024)
    method: Literal["GET", "PUT"] = "GET"
    size: int | None = Field(None, ge=0, description="required for PUT")
    content_type: str | None = Field(None, max_length=200)
    expires_in: int | None = Field(None, ge=1)


class PresignedURL(BaseModel):
    method: str
    url: str
    path: str
    storage_url: str
    expires_in: int
    headers: dict[str, str]


class FileInfo(BaseModel):
    path: str
    storage_url: str
    size: int
    etag: str
    last_modified: str
    content_type: str | None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileInfo]
    next_cursor: str | None


def _expiry(services: Services, requested: int | None) -> int:
    settings = services.settings
    expires = requested or settings.presign_default_expiry_s
    if expires > settings.presign_max_expiry_s:
        raise APIError(400, "invalid_request", f"expires_in must be <= {settings.presign_max_expiry_s}", "expires_in")
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


@router.post("/upload", response_model=PresignedURL)
async def upload(body: UploadRequest, project: ProjectDep, services: ServicesDep) -> PresignedURL:
    """A presigned PUT for exactly ``size`` bytes (over the object cap → 413)."""
    path = normalise_path(body.path, "path")
    expires = _expiry(services, body.expires_in)
    return await run_in_threadpool(_put_url, services, project, path, body.size, body.content_type, expires)


@router.post("/presign", response_model=PresignedURL)
async def presign(body: PresignRequest, project: ProjectDep, services: ServicesDep) -> PresignedURL:
    path = normalise_path(body.path, "path")
    expires = _expiry(services, body.expires_in)
    if body.method == "PUT":
        if body.size is None:
            raise APIError(400, "invalid_request", "size is required for a PUT URL", "size")
        return await run_in_threadpool(_put_url, services, project, path, body.size, body.content_type, expires)
    url = await run_in_threadpool(services.objects_or_raise().presign_get, project, path, expires)
    return PresignedURL(method="GET", url=url, path=path, storage_url=storage_url(path), expires_in=expires, headers={})


@router.get("/files", response_model=FileList)
async def list_files(
    project: ProjectDep,
    services: ServicesDep,
    path: str = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FileList:
    prefix = normalise_path(path.rstrip("/"), "path") + "/" if path.strip("/") else ""
    items, next_cursor = await run_in_threadpool(services.objects_or_raise().list, project, prefix, cursor, limit)
    return FileList(data=[_file(item) for item in items], next_cursor=next_cursor)


@router.get("/files/{path:path}")
async def get_file(path: str, project: ProjectDep, services: ServicesDep) -> RedirectResponse:
    """302 to a short-lived presigned GET."""
    clean = normalise_path(path, "path")
    expires = services.settings.presign_default_expiry_s
    url = await run_in_threadpool(services.objects_or_raise().presign_get, project, clean, expires)
    return RedirectResponse(url, status_code=302)


@router.delete("/files/{path:path}", status_code=204)
async def delete_file(path: str, project: ProjectDep, services: ServicesDep) -> Response:
    clean = normalise_path(path, "path")
    if not await run_in_threadpool(services.objects_or_raise().delete, project, clean):
        raise APIError(404, "not_found", f"file {clean!r} not found")
    return Response(status_code=204)
