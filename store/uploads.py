"""Resumable chunked uploads into project storage, one S3 multipart upload each.

Contract (initialize / send chunk / finalize): the client declares ``path``, ``size`` and ``sha256``; the server
answers with the chunk size. Chunk ``n`` (0-based) is S3 part ``n + 1``; every chunk but the last is exactly
``chunk_size`` bytes and the last is the remainder. Re-sending a chunk replaces it. Which chunks arrived is read
from S3 (``list_parts``), not from memory, so an API restart between chunks loses nothing.

Finalize joins the parts into the object at ``path``, streams it back and checks its sha256. On a mismatch the
object is deleted and the record gets a fresh multipart upload (still ``open``, no chunks received): the client
must resend every chunk, then finalize again.

Chunked uploads exist for large media, so their cap is ``max_upload_bytes``, not ``storage_max_object_bytes``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from ulid import ULID

from contract.errors import ErrorCode, VisionGridError
from contract.events import EventType
from store import events
from store.db import write_transaction
from store.objects import MAX_PART_NUMBER, ObjectStore, ObjectTooLarge, normalise_path
from store.tables import Upload, utcnow

if TYPE_CHECKING:
    import datetime as dt

    from visiongrid.settings import Settings

UploadStatus = Literal["open", "completed", "aborted"]
_SHA256_RE: Final[re.Pattern[str]] = re.compile(r"^[0-9a-f]{64}$")
_HASH_BLOCK: Final[int] = 1024 * 1024
_CONTENT_TYPE_RE: Final[re.Pattern[str]] = re.compile(r"^[\x20-\x7e]{1,255}$")  # an S3 header value: ASCII


class UploadError(VisionGridError, ValueError):
    """A request the upload cannot accept (bad chunk number or length, missing chunks, checksum): 400 with
    its ``code`` (``invalid_request``, ``invalid_chunk_length``, ``missing_chunks``, ``checksum_mismatch``)."""

    def __init__(self, code: ErrorCode | str, message: str, field: str, **extra: Any) -> None:
        super().__init__(code, message, field, **extra)


class UploadNotFound(VisionGridError, LookupError):  # noqa: N818 - mirrors ObjectNotFound
    """No such upload in this project: 404 ``not_found``."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class UploadClosed(VisionGridError, ValueError):  # noqa: N818 - mirrors ObjectTooLarge
    """The upload is already completed or aborted: 409 ``upload_closed``."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UPLOAD_CLOSED, message)


@dataclass(frozen=True)
class UploadRecord:
    id: str  # "up_" + ULID
    project: str
    path: str
    size: int
    sha256: str
    chunk_size: int
    content_type: str | None
    s3_upload_id: str
    status: UploadStatus
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def chunks(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk_length(self, n: int) -> int:
        """The exact byte count chunk ``n`` must have."""
        return self.chunk_size if n < self.chunks - 1 else self.size - self.chunk_size * (self.chunks - 1)


def _record(row: Row[Any]) -> UploadRecord:
    m = row._mapping
    return UploadRecord(
        id=m["id"],
        project=m["project"],
        path=m["path"],
        size=m["size"],
        sha256=m["sha256"],
        chunk_size=m["chunk_size"],
        content_type=m["content_type"],
        s3_upload_id=m["s3_upload_id"],
        status=cast(UploadStatus, m["status"]),
        created_at=m["created_at"],
        completed_at=m["completed_at"],
    )


class UploadStore:
    """Uploads of every project: rows in the database, bytes in S3. Holds no per-upload state in memory."""

    def __init__(self, engine: Engine, objects: ObjectStore, settings: Settings) -> None:
        self._engine = engine
        self.settings = settings
        self.chunk_size = settings.upload_chunk_bytes
        self.max_bytes = settings.max_upload_bytes
        if objects.settings.storage_max_object_bytes < self.max_bytes:
            # ObjectStore checks completed objects against storage_max_object_bytes; chunked uploads have their own cap.
            raised = objects.settings.model_copy(update={"storage_max_object_bytes": self.max_bytes})
            objects = ObjectStore(raised)
        self._objects = objects

    # --- create / read ----------------------------------------------------------------------------

    def create(self, project: str, path: str, size: int, sha256: str, content_type: str | None = None) -> UploadRecord:
        path = normalise_path(path, "path", project)  # the whole S3 key must fit: refused before anything is stored
        if size < 1:
            raise UploadError(ErrorCode.INVALID_REQUEST, "must be at least 1", "size")
        if size > self.max_bytes:
            raise ObjectTooLarge(f"{size} bytes is over the upload limit of {self.max_bytes}")
        digest = sha256.lower() if isinstance(sha256, str) else ""
        if not _SHA256_RE.match(digest):
            raise UploadError(ErrorCode.INVALID_REQUEST, "must be 64 hexadecimal characters", "sha256")
        if content_type is not None and not _CONTENT_TYPE_RE.match(content_type):
            raise UploadError(ErrorCode.INVALID_REQUEST, "must be a media type of printable ASCII", "content_type")
        if -(-size // self.chunk_size) > MAX_PART_NUMBER:
            raise ObjectTooLarge(f"{size} bytes needs more than {MAX_PART_NUMBER} chunks of {self.chunk_size}")
        s3_upload_id = self._objects.create_multipart(project, path, content_type)
        upload_id = f"up_{ULID()}"
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(Upload).values(
                    id=upload_id,
                    project=project,
                    path=path,
                    size=size,
                    sha256=digest,
                    chunk_size=self.chunk_size,
                    content_type=content_type,
                    s3_upload_id=s3_upload_id,
                    status="open",
                    created_at=utcnow(),
                    completed_at=None,
                )
            )
        record = self.get(project, upload_id)
        assert record is not None
        return record

    def get(self, project: str, upload_id: str) -> UploadRecord | None:
        """The upload, or None when it does not exist or belongs to another project (same answer: no leak)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(Upload).where(Upload.id == upload_id, Upload.project == project)).first()
        return _record(row) if row is not None else None

    def _require(self, project: str, upload_id: str, open_only: bool = True) -> UploadRecord:
        record = self.get(project, upload_id)
        if record is None:
            raise UploadNotFound(f"upload {upload_id!r} not found")
        if open_only and record.status != "open":
            raise UploadClosed(f"upload {upload_id!r} is {record.status}")
        return record

    def _parts(self, record: UploadRecord) -> dict[int, str]:
        """Chunk number -> etag of the chunks S3 holds with the right length."""
        parts = self._objects.list_parts(record.project, record.path, record.s3_upload_id)
        return {
            number - 1: etag
            for number, (etag, size) in parts.items()
            if 1 <= number <= record.chunks and size == record.chunk_length(number - 1)
        }

    def received(self, project: str, upload_id: str) -> list[int]:
        """The chunk numbers received so far (every chunk once completed, none once aborted)."""
        record = self._require(project, upload_id, open_only=False)
        if record.status == "completed":
            return list(range(record.chunks))
        if record.status == "aborted":
            return []
        return sorted(self._parts(record))

    # --- chunks -----------------------------------------------------------------------------------

    def put_chunk(self, project: str, upload_id: str, n: int, data: bytes) -> list[int]:
        """Store chunk ``n`` (replacing an earlier copy); returns the chunks received so far."""
        record = self._require(project, upload_id)
        if not 0 <= n < record.chunks:
            raise UploadError(ErrorCode.INVALID_REQUEST, f"must be between 0 and {record.chunks - 1}", "n")
        expected = record.chunk_length(n)
        if len(data) != expected:
            raise UploadError(
                "invalid_chunk_length", f"chunk {n} must be exactly {expected} bytes, got {len(data)}", "body"
            )
        self._objects.upload_part(record.project, record.path, record.s3_upload_id, n + 1, data)
        return sorted(self._parts(record))

    # --- finish -----------------------------------------------------------------------------------

    def finalize(self, project: str, upload_id: str) -> str:
        """Join the chunks into ``path``, verify the sha256 and return the path.

        Missing chunks -> UploadError (field ``chunks``, ``missing`` listed). Checksum mismatch -> the object is
        deleted, the upload restarts empty (fresh multipart, still open) and UploadError (field ``sha256``);
        the client must resend every chunk.
        """
        record = self._require(project, upload_id)
        parts = self._parts(record)
        missing = [n for n in range(record.chunks) if n not in parts]
        if missing:
            raise UploadError("missing_chunks", f"chunks not received: {missing}", "chunks", missing=missing)
        self._objects.complete_multipart(
            record.project, record.path, record.s3_upload_id, {n + 1: etag for n, etag in parts.items()}
        )
        actual = self._sha256(record)
        if actual != record.sha256:
            self._objects.delete(record.project, record.path)
            fresh = self._objects.create_multipart(record.project, record.path, record.content_type)
            with write_transaction(self._engine) as conn:
                conn.execute(
                    sa.update(Upload).where(Upload.id == record.id, Upload.status == "open").values(s3_upload_id=fresh)
                )
            raise UploadError(
                "checksum_mismatch",
                f"sha256 of the joined chunks is {actual}, expected {record.sha256}; resend every chunk",
                "sha256",
            )
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                sa.update(Upload)
                .where(Upload.id == record.id, Upload.status == "open")
                .values(status="completed", completed_at=utcnow())
            ).rowcount
            if done:  # the event exactly when the upload became complete (a retried finalize sends none)
                payload = {"upload_id": record.id, "path": record.path, "size": record.size, "sha256": record.sha256}
                events.record(conn, record.project, EventType.UPLOAD_FINALIZED, payload)
        return record.path

    def _sha256(self, record: UploadRecord) -> str:
        """The sha256 of the stored object, hashed as it streams from S3 (one pass, never held in memory)."""
        digest = hashlib.sha256()
        for block in self._objects.iter_bytes(record.project, record.path, _HASH_BLOCK):
            digest.update(block)
        return digest.hexdigest()

    def abort(self, project: str, upload_id: str) -> None:
        """Abandon an open upload and free its chunks (aborting an aborted upload is a no-op)."""
        record = self._require(project, upload_id, open_only=False)
        if record.status == "completed":
            raise UploadClosed(f"upload {upload_id!r} is completed")
        if record.status == "aborted":
            return
        self._objects.abort_multipart(record.project, record.path, record.s3_upload_id)
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.update(Upload).where(Upload.id == record.id, Upload.status == "open").values(status="aborted")
            )
