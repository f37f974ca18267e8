"""store.objects against a real S3 server (SeaweedFS, from the session fixture ``s3_settings``).

A real server, because the properties tested here (signed Content-Length, tampered and expired URLs) are
enforced by the server, not by boto3.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from store.objects import (
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StoragePathError,
    normalise_path,
    storage_url,
)
from visiongrid.settings import Settings

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def store(s3_settings: Settings) -> ObjectStore:
    return ObjectStore(s3_settings)


@pytest.fixture
def project() -> str:
    """A fresh project per test so tests never see each other's objects."""
    return f"p-{uuid.uuid4().hex[:12]}"


# --- paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.mp4", "a.mp4"),
        ("videos/2024/clip one.mp4", "videos/2024/clip one.mp4"),
        ("storage://videos/a.mp4", "videos/a.mp4"),
        ("x/..y/z.", "x/..y/z."),  # dots inside a name are not traversal
    ],
)
def test_normalise_path_accepts(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "storage://", "../x", "a/../b", "a/..", "./a", "a/./b", "/abs", "a//b", "a/", "a\\b", "a\x00b", "a\nb",
     "a\x7fb", "x" * 1025],
)  # fmt: skip
def test_normalise_path_refuses(raw: str) -> None:
    with pytest.raises(StoragePathError) as info:
        normalise_path(raw, field="input.path")
    assert info.value.field == "input.path"


def test_storage_url_and_key() -> None:
    assert storage_url("storage://a/b.mp4") == "storage://a/b.mp4"
    assert storage_url("a/b.mp4") == "storage://a/b.mp4"
    with pytest.raises(StoragePathError):
        storage_url("../b.mp4")


def test_key_refuses_bad_project(store: ObjectStore) -> None:
    assert store.key("p1", "a/b") == "projects/p1/a/b"
    for bad in ("", "a/b", "..", ".", "-x"):
        with pytest.raises(StoragePathError) as info:
            store.key(bad, "a")
        assert info.value.field == "project"


# --- objects -------------------------------------------------------------------------


def test_round_trip(store: ObjectStore, project: str, tmp_path: Path) -> None:
    info = store.put_bytes(project, "dir/a.txt", b"hello", content_type="text/plain")
    assert (info.path, info.size, info.content_type) == ("dir/a.txt", 5, "text/plain")
    assert info.etag
    assert store.get_bytes(project, "storage://dir/a.txt") == b"hello"
    head = store.head(project, "dir/a.txt")
    assert (head.size, head.etag) == (5, info.etag)
    dest = store.download_to(project, "dir/a.txt", tmp_path / "out" / "a.txt")
    assert dest.read_bytes() == b"hello"
    assert list((tmp_path / "out").iterdir()) == [dest]  # no temporary file left behind

    store.put_bytes(project, "dir/a.txt", b"replaced")
    assert store.get_bytes(project, "dir/a.txt") == b"replaced"

    assert store.delete(project, "dir/a.txt") is True
    assert store.delete(project, "dir/a.txt") is False
    with pytest.raises(ObjectNotFound):
        store.head(project, "dir/a.txt")
    with pytest.raises(ObjectNotFound):
        store.get_bytes(project, "dir/a.txt")
    with pytest.raises(ObjectNotFound):
        store.download_to(project, "dir/a.txt", tmp_path / "missing.txt")
    assert not (tmp_path / "missing.txt").exists()


def test_put_over_limit_refused(s3_settings: Settings, project: str) -> None:
    small = ObjectStore(s3_settings.model_copy(update={"storage_max_object_bytes": 10}))
    with pytest.raises(ObjectTooLarge):
        small.put_bytes(project, "big.bin", b"x" * 11)
    with pytest.raises(ObjectNotFound):
        small.head(project, "big.bin")


def test_list_pages_with_cursor(store: ObjectStore, project: str) -> None:
    names = [f"v/{i:02d}.bin" for i in range(7)]
    for name in names:
        store.put_bytes(project, name, name.encode())
    store.put_bytes(project, "other/x.bin", b"x")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        items, cursor = store.list(project, prefix="v/", cursor=cursor, limit=3)
        pages += 1
        assert len(items) <= 3
        seen.extend(item.path for item in items)
        if cursor is None:
            break
    assert seen == names
    assert pages == 3
    everything, end = store.list(project)
    assert [i.path for i in everything] == [*sorted(["other/x.bin", *names])]
    assert end is None
    assert all(i.size > 0 and i.etag for i in everything)
    with pytest.raises(StoragePathError):
        store.list(project, prefix="../")
    with pytest.raises(StoragePathError):
        store.list(project, cursor="../../other-project/x")


def test_projects_are_isolated(store: ObjectStore) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    store.put_bytes(a, "same/path.txt", b"from a")
    store.put_bytes(b, "same/path.txt", b"from b")
    store.put_bytes(b, "only-b.txt", b"b")
    assert store.get_bytes(a, "same/path.txt") == b"from a"
    assert store.get_bytes(b, "same/path.txt") == b"from b"
    listed_a, _ = store.list(a)
    assert [i.path for i in listed_a] == ["same/path.txt"]
    with pytest.raises(ObjectNotFound):
        store.get_bytes(a, "only-b.txt")
    assert store.delete(a, "only-b.txt") is False
    assert store.get_bytes(b, "only-b.txt") == b"b"
    # a project id that is a prefix of another does not see its objects
    prefix_project = a[:-1]
    listed, _ = store.list(prefix_project)
    assert listed == []


# --- presigned URLs ------------------------------------------------------------------


def test_presigned_put_then_get(store: ObjectStore, project: str) -> None:
    body = b"0123456789" * 100
    url = store.presign_put(project, "up/clip.mp4", size=len(body), content_type="video/mp4", expires_s=60)
    response = httpx.put(url, content=body, headers={"Content-Type": "video/mp4"})
    assert response.status_code == 200, response.text
    head = store.head(project, "up/clip.mp4")
    assert (head.size, head.content_type) == (len(body), "video/mp4")

    get_url = store.presign_get(project, "up/clip.mp4", expires_s=60)
    fetched = httpx.get(get_url)
    assert fetched.status_code == 200
    assert fetched.content == body


def test_presigned_put_wrong_length_refused(store: ObjectStore, project: str) -> None:
    url = store.presign_put(project, "up/short.bin", size=100, content_type=None, expires_s=60)
    for body in (b"x" * 101, b"x" * 99):
        response = httpx.put(url, content=body)
        assert response.status_code in (400, 403), response.status_code
    with pytest.raises(ObjectNotFound):
        store.head(project, "up/short.bin")


def test_presigned_put_other_content_type_refused(store: ObjectStore, project: str) -> None:
    url = store.presign_put(project, "up/typed.bin", size=3, content_type="video/mp4", expires_s=60)
    response = httpx.put(url, content=b"abc", headers={"Content-Type": "text/html"})
    assert response.status_code in (400, 403)
    with pytest.raises(ObjectNotFound):
        store.head(project, "up/typed.bin")


def test_presigned_get_tampered_refused(store: ObjectStore, project: str) -> None:
    store.put_bytes(project, "secret.txt", b"secret")
    url = store.presign_get(project, "secret.txt", expires_s=60)
    assert httpx.get(url).status_code == 200
    head, sig = url.split("X-Amz-Signature=")
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert httpx.get(f"{head}X-Amz-Signature={flipped}").status_code == 403
    # pointing a valid signature at another key fails too
    other = url.replace("secret.txt", "secres.txt")
    assert httpx.get(other).status_code == 403


def test_presigned_get_expired_refused(store: ObjectStore, project: str) -> None:
    store.put_bytes(project, "soon.txt", b"soon")
    url = store.presign_get(project, "soon.txt", expires_s=1)
    time.sleep(2)
    assert httpx.get(url).status_code == 403


def test_presign_limits(store: ObjectStore, s3_settings: Settings, project: str) -> None:
    with pytest.raises(ObjectTooLarge):
        store.presign_put(project, "big.bin", s3_settings.storage_max_object_bytes + 1, None, 60)
    store.presign_put(project, "ok.bin", s3_settings.storage_max_object_bytes, None, 60)
    with pytest.raises(ObjectNotFound):
        store.presign_get(project, "missing.txt", 60)
    with pytest.raises(ValueError):
        store.presign_put(project, "ok.bin", 1, None, s3_settings.presign_max_expiry_s + 1)
    with pytest.raises(StoragePathError):
        store.presign_put(project, "../ok.bin", 1, None, 60)


def test_presigned_urls_use_public_endpoint(s3_settings: Settings, project: str) -> None:
    public = ObjectStore(s3_settings.model_copy(update={"s3_public_endpoint_url": "https://files.example.com"}))
    public.put_bytes(project, "p.txt", b"p")  # the internal client still reaches the real server
    assert public.presign_get(project, "p.txt", 60).startswith("https://files.example.com/")
    assert public.presign_put(project, "q.txt", 1, None, 60).startswith("https://files.example.com/")


# --- multipart -----------------------------------------------------------------------


def test_multipart_complete(store: ObjectStore, project: str) -> None:
    first, second = b"a" * (5 * MIB), b"tail-bytes"
    upload_id = store.create_multipart(project, "mp/video.mp4", content_type="video/mp4")
    stale = store.upload_part(project, "mp/video.mp4", upload_id, 1, b"b" * (5 * MIB))
    time.sleep(1.1)  # SeaweedFS lists both copies of a re-uploaded part; LastModified (1 s resolution) orders them
    etag1 = store.upload_part(project, "mp/video.mp4", upload_id, 1, first)  # replaces the first try
    assert etag1 != stale
    etag2 = store.upload_part(project, "mp/video.mp4", upload_id, 2, second)
    parts = store.list_parts(project, "mp/video.mp4", upload_id)
    assert parts == {1: (etag1, len(first)), 2: (etag2, len(second))}

    info = store.complete_multipart(project, "mp/video.mp4", upload_id, {1: etag1, 2: etag2})
    assert info.size == len(first) + len(second)
    assert info.content_type == "video/mp4"
    assert store.get_bytes(project, "mp/video.mp4") == first + second


def test_multipart_abort(store: ObjectStore, project: str) -> None:
    upload_id = store.create_multipart(project, "mp/gone.bin", content_type=None)
    store.upload_part(project, "mp/gone.bin", upload_id, 1, b"x" * 10)
    assert list(store.list_parts(project, "mp/gone.bin", upload_id)) == [1]
    store.abort_multipart(project, "mp/gone.bin", upload_id)
    with pytest.raises(ObjectNotFound):
        store.list_parts(project, "mp/gone.bin", upload_id)
    with pytest.raises(ObjectNotFound):
        store.head(project, "mp/gone.bin")
    store.abort_multipart(project, "mp/gone.bin", upload_id)  # idempotent


def test_multipart_over_limit_refused(s3_settings: Settings, project: str) -> None:
    small = ObjectStore(s3_settings.model_copy(update={"storage_max_object_bytes": 5 * MIB + 5}))
    upload_id = small.create_multipart(project, "mp/big.bin", content_type=None)
    e1 = small.upload_part(project, "mp/big.bin", upload_id, 1, b"a" * (5 * MIB))
    e2 = small.upload_part(project, "mp/big.bin", upload_id, 2, b"b" * 6)
    with pytest.raises(ObjectTooLarge):
        small.complete_multipart(project, "mp/big.bin", upload_id, {1: e1, 2: e2})
    with pytest.raises(ValueError):
        small.complete_multipart(project, "mp/big.bin", upload_id, {1: e1, 3: e2})
    small.abort_multipart(project, "mp/big.bin", upload_id)


# --- bad input ---------------------------------------------------------------------------


def test_a_path_too_long_once_prefixed_is_refused_naming_the_field(store: ObjectStore, project: str) -> None:
    """1024 bytes fit alone but not under ``projects/{project}/``: 400 invalid_path, nothing stored."""
    room = 1024 - len(f"projects/{project}/")
    longest = "/".join(["x" * 200] * 4) + "/" + "y" * (room - 805)  # SeaweedFS: <= 255 bytes per segment
    assert normalise_path("x" * 1024) == "x" * 1024  # without a project only the path itself counts
    for path in ("x" * (room + 1), "é" * (room // 2 + 1)):
        with pytest.raises(StoragePathError) as info:
            normalise_path(path, "input[0].path", project)
        assert (info.value.code, info.value.field, info.value.status) == ("invalid_path", "input[0].path", 400)
        with pytest.raises(StoragePathError) as info:
            store.put_bytes(project, path, b"x")
        assert info.value.field == "path"
    assert store.list(project)[0] == []
    assert store.put_bytes(project, longest, b"x").path == longest
    with pytest.raises(StoragePathError) as info:  # what the server refuses is a 400 too, not a 500
        store.put_bytes(project, "z" * 300, b"x")
    assert info.value.field == "path"


def test_storage_errors_carry_their_codes(store: ObjectStore, s3_settings: Settings, project: str) -> None:
    with pytest.raises(ObjectNotFound) as missing:
        store.head(project, "nothing.bin")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    with pytest.raises(ObjectTooLarge) as large:
        store.put_bytes(project, "big.bin", b"x" * (s3_settings.storage_max_object_bytes + 1))
    assert (large.value.code, large.value.field, large.value.status) == ("object_too_large", "size", 413)
    with pytest.raises(ValueError) as expiry:
        store.presign_put(project, "a.bin", 1, None, 0)
    assert getattr(expiry.value, "field", None) == "expires_s"
