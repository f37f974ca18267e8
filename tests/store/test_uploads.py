"""Resumable chunked uploads against the real S3 server (SeaweedFS) and a real database."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.objects import ObjectStore, ObjectTooLarge, StoragePathError
from store.tables import Upload
from store.uploads import UploadClosed, UploadError, UploadNotFound, UploadStore
from visiongrid.settings import Settings

CHUNK = 5 * 1024**2
DATA = bytes(range(256)) * (CHUNK // 256) + b"tail-bytes" * 10  # 5 MiB + 100 bytes: two chunks


@pytest.fixture
def settings(s3_settings: Settings) -> Settings:
    return s3_settings.model_copy(update={"upload_chunk_bytes": CHUNK, "max_upload_bytes": 64 * 1024**2})


@pytest.fixture
def objects(settings: Settings) -> ObjectStore:
    return ObjectStore(settings)


@pytest.fixture
def uploads(engine: Engine, objects: ObjectStore, settings: Settings) -> UploadStore:
    return UploadStore(engine, objects, settings)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_repeated_and_missing_chunks_then_finalize_across_a_restart(
    uploads: UploadStore, engine: Engine, objects: ObjectStore, settings: Settings
) -> None:
    record = uploads.create("proj", "media/big.bin", len(DATA), sha(DATA), "application/octet-stream")
    assert record.id.startswith("up_") and record.chunks == 2 and record.chunk_size == CHUNK
    assert uploads.received("proj", record.id) == []
    assert uploads.put_chunk("proj", record.id, 1, DATA[CHUNK:]) == [1]
    assert uploads.put_chunk("proj", record.id, 1, DATA[CHUNK:]) == [1]  # re-sent: replaces, still one chunk
    with pytest.raises(UploadError) as missing:
        uploads.finalize("proj", record.id)
    assert missing.value.field == "chunks" and missing.value.extra["missing"] == [0]

    restarted = UploadStore(engine, objects, settings)  # a new API process: state comes from the db and S3
    assert restarted.received("proj", record.id) == [1]
    assert restarted.put_chunk("proj", record.id, 0, DATA[:CHUNK]) == [0, 1]
    assert restarted.finalize("proj", record.id) == "media/big.bin"
    stored = objects.get_bytes("proj", "media/big.bin")
    assert stored == DATA and sha(stored) == record.sha256
    done = restarted.get("proj", record.id)
    assert done is not None and done.status == "completed" and done.completed_at is not None


def test_bad_chunk_number_and_length_are_refused(uploads: UploadStore) -> None:
    record = uploads.create("proj", "media/bad.bin", len(DATA), sha(DATA))
    for n in (-1, 2):
        with pytest.raises(UploadError) as out_of_range:
            uploads.put_chunk("proj", record.id, n, DATA[:CHUNK])
        assert out_of_range.value.field == "n"
    with pytest.raises(UploadError) as short:
        uploads.put_chunk("proj", record.id, 0, DATA[: CHUNK - 1])
    assert short.value.code == "invalid_chunk_length"
    with pytest.raises(UploadError):
        uploads.put_chunk("proj", record.id, 1, DATA[CHUNK:] + b"x")
    assert uploads.received("proj", record.id) == []
    uploads.abort("proj", record.id)
    aborted = uploads.get("proj", record.id)
    assert aborted is not None and aborted.status == "aborted"


def test_checksum_mismatch_deletes_the_object_and_the_upload_can_be_resent(
    uploads: UploadStore, objects: ObjectStore
) -> None:
    wrong = DATA[:CHUNK] + b"X" * 100
    record = uploads.create("proj", "media/sum.bin", len(DATA), sha(DATA))
    uploads.put_chunk("proj", record.id, 0, wrong[:CHUNK])
    uploads.put_chunk("proj", record.id, 1, wrong[CHUNK:])
    with pytest.raises(UploadError) as mismatch:
        uploads.finalize("proj", record.id)
    assert mismatch.value.code == "checksum_mismatch" and mismatch.value.field == "sha256"
    assert objects.delete("proj", "media/sum.bin") is False  # already deleted
    again = uploads.get("proj", record.id)
    assert again is not None and again.status == "open" and again.s3_upload_id != record.s3_upload_id
    assert uploads.received("proj", record.id) == []
    uploads.put_chunk("proj", record.id, 0, DATA[:CHUNK])
    uploads.put_chunk("proj", record.id, 1, DATA[CHUNK:])
    assert uploads.finalize("proj", record.id) == "media/sum.bin"
    assert objects.get_bytes("proj", "media/sum.bin") == DATA


def test_validation_limits_and_project_isolation(uploads: UploadStore) -> None:
    with pytest.raises(ObjectTooLarge):
        uploads.create("proj", "a.bin", 64 * 1024**2 + 1, sha(b""))
    with pytest.raises(UploadError) as bad_sha:
        uploads.create("proj", "a.bin", 10, "abc")
    assert bad_sha.value.field == "sha256"
    record = uploads.create("proj", "a.bin", 10, sha(b"0123456789"))
    assert uploads.get("other", record.id) is None
    with pytest.raises(UploadNotFound):
        uploads.put_chunk("other", record.id, 0, b"0123456789")
    uploads.abort("proj", record.id)


def test_bad_input_is_refused_before_anything_is_stored(uploads: UploadStore, engine: Engine) -> None:
    """A path whose S3 key is over 1024 bytes with the project prefix, or an unsendable content type:
    400 naming the field, and no upload row (nor multipart upload) is made."""
    with pytest.raises(StoragePathError) as long_path:
        uploads.create("proj", "x" * 1020, 10, sha(b"0123456789"))
    assert (long_path.value.code, long_path.value.field) == ("invalid_path", "path")
    with pytest.raises(UploadError) as bad_type:
        uploads.create("proj", "a.bin", 10, sha(b"0123456789"), "video/\ud800")
    assert (bad_type.value.code, bad_type.value.field) == ("invalid_request", "content_type")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Upload)).scalar() == 0


def test_upload_errors_carry_their_codes(uploads: UploadStore) -> None:
    record = uploads.create("proj", "c.bin", 10, sha(b"0123456789"))
    with pytest.raises(UploadNotFound) as missing:
        uploads.put_chunk("other", record.id, 0, b"0123456789")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    uploads.abort("proj", record.id)
    with pytest.raises(UploadClosed) as closed:
        uploads.put_chunk("proj", record.id, 0, b"0123456789")
    assert (closed.value.code, closed.value.status) == ("upload_closed", 409)
