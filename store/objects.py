"""The one S3 client: per-project object storage in one bucket.

Why it is built this way:

* Isolation: every object of a project lives under ``projects/{project}/``. :meth:`ObjectStore.key` is the
  only place a key is built, and it only accepts paths that passed :func:`normalise_path` (no ``..``, no
  absolute paths, no empty segments, no backslashes or control characters), so a user path can never name
  another project's object. Listing always sends the project prefix, so a cursor cannot leave it either.
* Two clients: servers talk to ``s3_endpoint_url`` (often an in-cluster name), but presigned URLs are
  handed to clients outside, so they are signed for ``s3_public_endpoint_url`` (the host is part of the
  SigV4 signature; rewriting a signed URL afterwards would break it).
* Presigned PUTs sign ``Content-Length`` (and ``Content-Type`` when given): the server then refuses a body
  of any other length, so the size checked against ``storage_max_object_bytes`` here is the size stored.
* Errors: botocore's ``ClientError`` is translated to :class:`ObjectNotFound` / :class:`ObjectTooLarge` /
  :class:`StoragePathError` so callers (the API) never depend on boto3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from store.paths import (
    MAX_PATH_BYTES,
    STORAGE_SCHEME,
    ObjectNotFound,
    ObjectTooLarge,
    StoragePathError,
    StorageRequestError,
    normalise_path,
    normalise_prefix,
    object_key,
    project_prefix,
    storage_url,
)

if TYPE_CHECKING:
    from visiongrid.settings import Settings

__all__ = [
    "MAX_LIST_LIMIT",
    "MAX_PART_NUMBER",
    "MAX_PATH_BYTES",
    "MIN_PART_BYTES",
    "STORAGE_SCHEME",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectTooLarge",
    "StoragePathError",
    "normalise_path",
    "storage_url",
]

MIN_PART_BYTES: Final[int] = 5 * 1024**2  # S3: every part but the last must be at least this big
MAX_PART_NUMBER: Final[int] = 10_000
MAX_LIST_LIMIT: Final[int] = 1000
_NOT_FOUND_CODES: Final[frozenset[str]] = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})


@dataclass(frozen=True)
class ObjectInfo:
    """What callers may know about an object; ``path`` is project-relative (never the full key)."""

    path: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str | None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(exc) in _NOT_FOUND_CODES or status == 404


@contextmanager
def _key_accepted(field: str = "path") -> Iterator[None]:
    """A key the server refuses as too long (SeaweedFS: a segment over 255 bytes) is the caller's 400."""
    try:
        yield
    except ClientError as exc:
        if _error_code(exc) == "KeyTooLongError":
            raise StoragePathError(
                "too long for the storage server (at most 255 bytes between slashes)", field
            ) from None
        raise


def _etag(raw: Any) -> str:
    return str(raw or "").strip('"')


class ObjectStore:
    """Per-project object storage on one S3 bucket (see the module docstring for the guarantees)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        common: dict[str, Any] = {
            "aws_access_key_id": settings.s3_access_key,
            "aws_secret_access_key": settings.s3_secret_key,
            "region_name": settings.s3_region,
            "config": config,
        }
        internal = settings.s3_endpoint_url or None
        public = settings.s3_public_endpoint_url or internal
        self._client: Any = boto3.client("s3", endpoint_url=internal, **common)
        self._signer: Any = boto3.client("s3", endpoint_url=public, **common)

    # --- keys -------------------------------------------------------------------------
    def key(self, project: str, path: str) -> str:
        """The full S3 key of a project's object (:func:`store.paths.object_key`: at most 1024 bytes)."""
        return object_key(project, path)

    def _check_size(self, size: int) -> None:
        if size > self.settings.storage_max_object_bytes:
            raise ObjectTooLarge(f"{size} bytes is over the limit of {self.settings.storage_max_object_bytes}")

    def _check_expiry(self, expires_s: int) -> int:
        if not 1 <= expires_s <= self.settings.presign_max_expiry_s:
            raise StorageRequestError(f"must be between 1 and {self.settings.presign_max_expiry_s}", "expires_s")
        return int(expires_s)

    # --- bucket -----------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (idempotent; safe when several replicas start at once)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _is_not_found(exc) and _error_code(exc) != "NoSuchBucket":
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.settings.s3_region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.s3_region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    # --- objects ----------------------------------------------------------------------
    def put_bytes(self, project: str, path: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Store ``data`` at ``path`` (replacing any object there); returns the stored object's info."""
        key = self.key(project, path)
        self._check_size(len(data))
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data}
        if content_type:
            kwargs["ContentType"] = content_type
        with _key_accepted():
            self._client.put_object(**kwargs)
        return self.head(project, path)

    def _get_object(self, project: str, path: str) -> Any:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.key(project, path))
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(normalise_path(path)) from exc
            raise

    def get_bytes(self, project: str, path: str) -> bytes:
        """The whole object in memory (objects are capped by ``storage_max_object_bytes``)."""
        body: bytes = self._get_object(project, path)["Body"].read()
        return body

    def iter_bytes(self, project: str, path: str, block: int = 1024 * 1024) -> Iterator[bytes]:
        """The object as a stream of blocks, for one pass over large objects (hashing, copying)."""
        yield from self._get_object(project, path)["Body"].iter_chunks(block)

    def put_stream(self, project: str, path: str, body: Any, content_type: str | None = None) -> ObjectInfo:
        """Upload a readable stream of unknown length (multipart in bounded memory: boto3's transfer)."""
        extra = {"ContentType": content_type} if content_type else None
        with _key_accepted():
            self._client.upload_fileobj(body, self.bucket, self.key(project, path), ExtraArgs=extra)
        return self.head(project, path)

    def open_range(self, project: str, path: str, offset: int) -> Any:
        """The object's body from byte ``offset`` on (an S3 ranged GET): a stream to read and close."""
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=self.key(project, path), Range=f"bytes={offset}-"
            )
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(normalise_path(path)) from exc
            raise
        return response["Body"]

    def download_to(self, project: str, path: str, dest: Path) -> Path:
        """Stream the object to ``dest``; written to a temporary name first so a partial file never looks done."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        blocks = self.iter_bytes(project, path)
        try:
            with tmp.open("wb") as out:
                for chunk in blocks:
                    out.write(chunk)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def head(self, project: str, path: str) -> ObjectInfo:
        """Metadata of one object; :class:`ObjectNotFound` if absent."""
        key = self.key(project, path)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(normalise_path(path)) from exc
            raise
        return ObjectInfo(
            path=normalise_path(path),
            size=int(response["ContentLength"]),
            etag=_etag(response.get("ETag")),
            last_modified=response["LastModified"],
            content_type=response.get("ContentType") or None,
        )

    def delete(self, project: str, path: str) -> bool:
        """Delete the object; False if it did not exist (S3 deletes are silent, so this asks first)."""
        try:
            self.head(project, path)
        except ObjectNotFound:
            return False
        self._client.delete_object(Bucket=self.bucket, Key=self.key(project, path))
        return True

    def list(
        self, project: str, prefix: str = "", cursor: str | None = None, limit: int = 100
    ) -> tuple[list[ObjectInfo], str | None]:
        """One page of the project's objects under ``prefix``, in key order, and the cursor of the next page.

        The cursor is the last path returned (not the server's opaque token): it is validated like any path
        and the project prefix is always sent, so a forged cursor cannot list another project.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise StorageRequestError(f"must be between 1 and {MAX_LIST_LIMIT}", "limit")
        base = project_prefix(project)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base + normalise_prefix(prefix), "MaxKeys": limit}
        if cursor:
            kwargs["StartAfter"] = base + normalise_path(cursor, "cursor")
        response = self._client.list_objects_v2(**kwargs)
        items = [
            ObjectInfo(
                path=obj["Key"][len(base) :],
                size=int(obj["Size"]),
                etag=_etag(obj.get("ETag")),
                last_modified=obj["LastModified"],
                content_type=None,
            )
            for obj in response.get("Contents", [])
            if obj["Key"].startswith(base) and not obj["Key"].endswith("/")
        ]
        next_cursor = items[-1].path if response.get("IsTruncated") and items else None
        return items, next_cursor

    # --- presigned URLs ---------------------------------------------------------------
    def presign_get(self, project: str, path: str, expires_s: int) -> str:
        """A URL that downloads the object until it expires; the object must exist now (ObjectNotFound)."""
        self.head(project, path)
        url: str = self._signer.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(project, path)},
            ExpiresIn=self._check_expiry(expires_s),
        )
        return url

    def presign_put(self, project: str, path: str, size: int, content_type: str | None, expires_s: int) -> str:
        """A URL that uploads exactly ``size`` bytes (Content-Length is signed); over the limit -> ObjectTooLarge.

        The client must send the same Content-Type header when one is given (it is signed too).
        """
        if size < 0:
            raise StorageRequestError("must not be negative", "size")
        self._check_size(size)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(project, path), "ContentLength": size}
        if content_type:
            params["ContentType"] = content_type
        url: str = self._signer.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=self._check_expiry(expires_s)
        )
        return url

    # --- multipart (resumable chunked uploads) ----------------------------------------
    def create_multipart(self, project: str, path: str, content_type: str | None) -> str:
        """Start a multipart upload; returns its upload id (parts >= 5 MiB except the last)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(project, path)}
        if content_type:
            kwargs["ContentType"] = content_type
        with _key_accepted():
            upload_id: str = self._client.create_multipart_upload(**kwargs)["UploadId"]
        return upload_id

    def upload_part(self, project: str, path: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Upload (or re-upload, replacing it) one part; returns its etag."""
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise StorageRequestError(f"must be between 1 and {MAX_PART_NUMBER}", "part_number")
        self._check_size(len(data))
        try:
            response = self._client.upload_part(
                Bucket=self.bucket,
                Key=self.key(project, path),
                UploadId=upload_id,
                PartNumber=part_number,
                Body=data,
            )
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(f"multipart upload {upload_id}") from exc
            raise
        return _etag(response.get("ETag"))

    def list_parts(self, project: str, path: str, upload_id: str) -> dict[int, tuple[str, int]]:
        """The parts uploaded so far: part number -> (etag, size). Lets a client resume after a failure.

        A re-uploaded part replaces the earlier one, but SeaweedFS keeps every copy and lists them all (in no
        particular order); the newest by LastModified is reported. Its LastModified has one-second resolution,
        so two uploads of one part within the same second cannot be told apart here — completing by etag is
        still exact, because :meth:`complete_multipart` names the etag of each part it joins.
        """
        key = self.key(project, path)
        seen: dict[int, tuple[str, int, datetime | None]] = {}
        marker = 0
        while True:
            try:
                response = self._client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if _is_not_found(exc):
                    raise ObjectNotFound(f"multipart upload {upload_id}") from exc
                raise
            for part in response.get("Parts", []):
                number, modified = int(part["PartNumber"]), part.get("LastModified")
                earlier = seen.get(number)
                if earlier is None or (modified and (earlier[2] is None or modified >= earlier[2])):
                    seen[number] = (_etag(part.get("ETag")), int(part["Size"]), modified)
            if not response.get("IsTruncated"):
                return {number: (etag, size) for number, (etag, size, _) in seen.items()}
            marker = int(response["NextPartNumberMarker"])

    def complete_multipart(self, project: str, path: str, upload_id: str, parts: dict[int, str]) -> ObjectInfo:
        """Join the given parts into the object. The total is checked against the limit first."""
        if not parts:
            raise StorageRequestError("must not be empty", "parts")
        uploaded = self.list_parts(project, path, upload_id)
        missing = sorted(set(parts) - set(uploaded))
        if missing:
            raise StorageRequestError(f"parts not uploaded: {missing}", "parts")
        self._check_size(sum(uploaded[n][1] for n in parts))
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key(project, path),
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{parts[n]}"'} for n in sorted(parts)]},
            )
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(f"multipart upload {upload_id}") from exc
            raise
        return self.head(project, path)

    def abort_multipart(self, project: str, path: str, upload_id: str) -> None:
        """Abandon the upload and free its parts (idempotent: an unknown upload is not an error)."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key(project, path), UploadId=upload_id)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
