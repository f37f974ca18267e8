"""Storage (contract: VisoWork Storage table): presigned URLs, listing, resumable chunked uploads.

Bytes never pass through the API for single objects: clients PUT and GET directly against S3 with
URLs signed by VisionGrid. Unknown fields are refused here as everywhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from contract.common import ListEnvelope, RequestBody

__all__ = [
    "ChunkReceived",
    "CreateUpload",
    "FileInfo",
    "FileList",
    "FinalizedUpload",
    "PresignRequest",
    "PresignedURL",
    "UploadRequest",
    "UploadView",
]

Path = Annotated[StrictStr, Field(min_length=1, max_length=1024, description="project-relative path")]
ContentType = Annotated[StrictStr, Field(max_length=200)]
ByteCount = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
Seconds = Annotated[StrictInt, Field(ge=1, le=2**31)]


class UploadRequest(RequestBody):
    path: Path
    size: ByteCount = Field(description="exact byte count the client will PUT (signed as Content-Length)")
    content_type: ContentType | None = None
    expires_in: Seconds | None = Field(None, description="seconds the URL stays valid")


class PresignRequest(RequestBody):
    path: Path
    method: Literal["GET", "PUT"] = "GET"
    size: ByteCount | None = Field(None, description="required for PUT")
    content_type: ContentType | None = None
    expires_in: Seconds | None = None


class PresignedURL(BaseModel):
    method: Literal["GET", "PUT"]
    url: str
    path: str
    storage_url: str
    expires_in: int
    headers: dict[str, str] = Field(description="send these with the PUT (Content-Length is signed)")


class FileInfo(BaseModel):
    path: str
    storage_url: str
    size: int
    etag: str
    last_modified: str
    content_type: str | None


FileList = ListEnvelope[FileInfo]


class CreateUpload(RequestBody):
    path: Path
    size: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    sha256: Annotated[StrictStr, Field(pattern="^[0-9a-fA-F]{64}$")]
    content_type: ContentType | None = None


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
