"""The storage routes' error mapping, in-process, against the real local S3 server: unknown fields and
unsafe or oversized paths are 400s naming the field (checked on the whole S3 key, project prefix
included, before anything is sent), sizes over the cap are 413s, and nothing is written for them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, ApiFactory, assert_error

SHA = "0" * 64
BODY_ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/storage/upload", {"path": "a/b.bin", "size": 10}),
    ("/v1/storage/presign", {"path": "a/b.bin", "method": "PUT", "size": 10}),
    ("/v1/storage/uploads", {"path": "a/b.bin", "size": 10, "sha256": SHA}),
]
ROUTE_IDS = ["upload", "presign", "uploads"]


@pytest.mark.parametrize(("route", "valid"), BODY_ROUTES, ids=ROUTE_IDS)
def test_an_unknown_field_is_named(client: TestClient, api: Api, route: str, valid: dict[str, Any]) -> None:
    response = client.post(route, json={**valid, "zzz": 1, "bucket": "other"})
    assert_error(response, 400, "invalid_request", "bucket", prefixed=True)
    assert api.stored() == (0, 0, 0, 0)


def _long_ascii() -> str:
    """1020 bytes in segments S3 servers accept (< 255 bytes each): fits alone, not once prefixed."""
    path = "/".join(["a" * 200] * 5) + "/" + "b" * 15
    assert len(path.encode()) == 1020
    return path


def _long_accented() -> str:
    """1019 bytes of two-byte characters (512 characters: well under the contract's 1024)."""
    path = "/".join(["é" * 100] * 5) + "/" + "é" * 7
    assert len(path) == 512 and len(path.encode()) == 1019
    return path


BAD_PATHS: list[tuple[str, str]] = [
    ("1020 ascii bytes", _long_ascii()),
    ("1019 bytes of é", _long_accented()),
    ("600 é in one go", "é" * 600),
    ("dot-dot", "a/../b.bin"),
    ("leading dot-dot", "../other-project/b.bin"),
    ("absolute", "/etc/passwd"),
    ("backslash", "a\\b.bin"),
    ("empty segment", "a//b.bin"),
    ("folder", "a/"),
    ("control character", "a\nb.bin"),
    ("storage scheme with dot-dot", "storage://../b.bin"),
]


#: Every path on /upload; the long ones and dot-dot on the other two (the rule is one function).
PATH_CASES = [(*BODY_ROUTES[0], *case) for case in BAD_PATHS] + [
    (*route, *case)
    for route in BODY_ROUTES[1:]
    for case in BAD_PATHS
    if case[0] in ("1020 ascii bytes", "1019 bytes of é", "dot-dot")
]


@pytest.mark.parametrize(
    ("route", "valid", "path"),
    [(r, v, p) for r, v, _, p in PATH_CASES],
    ids=[f"{r.rsplit('/', 1)[1]}:{n}" for r, _, n, _ in PATH_CASES],
)
def test_an_unsafe_or_oversized_path_is_invalid_path(
    client: TestClient, api: Api, route: str, valid: dict[str, Any], path: str
) -> None:
    response = client.post(route, json={**valid, "path": path})
    assert_error(response, 400, "invalid_path", "path")
    assert api.stored() == (0, 0, 0, 0)


def test_a_path_over_the_contract_length_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/storage/upload", json={"path": "a" * 1025, "size": 1})
    assert_error(response, 400, "invalid_request", "path")


@pytest.mark.parametrize("path", ["a/../b.bin", _long_ascii()], ids=["dot-dot", "long"])
def test_a_bad_path_of_a_presigned_get_is_invalid_path(client: TestClient, path: str) -> None:
    response = client.post("/v1/storage/presign", json={"path": path, "method": "GET"})
    assert_error(response, 400, "invalid_path", "path")


@pytest.mark.parametrize(("params", "field"), [({"path": "../x"}, "path"), ({"cursor": "a/../b"}, "cursor")])
def test_a_bad_listing_is_a_400(client: TestClient, params: dict[str, str], field: str) -> None:
    assert_error(client.get("/v1/storage/files", params=params), 400, "invalid_path", field)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/storage/upload", {"path": "a.bin", "size": 1001}),
        ("/v1/storage/presign", {"path": "a.bin", "method": "PUT", "size": 1001}),
    ],
)
def test_a_size_over_the_object_cap_is_a_413(make_api: ApiFactory, route: str, body: dict[str, Any]) -> None:
    api = make_api(storage_max_object_bytes=1000)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post(route, json=body)
    assert_error(response, 413, "object_too_large", "size")


def test_a_chunked_upload_over_its_cap_is_a_413(make_api: ApiFactory) -> None:
    api = make_api(max_upload_bytes=1000)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post("/v1/storage/uploads", json={"path": "a.bin", "size": 1001, "sha256": SHA})
    assert_error(response, 413, "object_too_large", "size")
    assert api.upload_count() == 0


@pytest.mark.parametrize(
    ("route", "body", "code", "field"),
    [
        ("/v1/storage/upload", {"path": "a.bin", "size": -1}, "invalid_request", "size"),
        ("/v1/storage/upload", {"path": "a.bin", "size": "10"}, "invalid_request", "size"),
        ("/v1/storage/upload", {"path": "a.bin", "size": 1, "expires_in": 0}, "invalid_request", "expires_in"),
        ("/v1/storage/upload", {"path": "a.bin", "size": 1, "expires_in": 604801}, "invalid_request", "expires_in"),
        ("/v1/storage/presign", {"path": "a.bin", "method": "PUT"}, "invalid_request", "size"),
        ("/v1/storage/presign", {"path": "a.bin", "method": "DELETE"}, "invalid_request", "method"),
        ("/v1/storage/uploads", {"path": "a.bin", "size": 0, "sha256": SHA}, "invalid_request", "size"),
        ("/v1/storage/uploads", {"path": "a.bin", "size": 1, "sha256": "abc"}, "invalid_request", "sha256"),
        (
            "/v1/storage/uploads",
            {"path": "a.bin", "size": 1, "sha256": SHA, "content_type": "text/\u00e9"},
            "invalid_request",
            "content_type",
        ),
    ],
)
def test_bad_storage_fields(
    client: TestClient, api: Api, route: str, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(client.post(route, json=body), 400, code, field)
    assert api.stored() == (0, 0, 0, 0)


def test_a_missing_file_is_a_404(client: TestClient) -> None:
    assert_error(client.post("/v1/storage/presign", json={"path": "nothing.bin"}), 404, "not_found")
    assert_error(client.get("/v1/storage/files/nothing.bin", follow_redirects=False), 404, "not_found")
    assert_error(client.delete("/v1/storage/files/nothing.bin"), 404, "not_found")


def test_another_projects_file_is_a_404(client: TestClient, api: Api) -> None:
    api.services.objects_or_raise().put_bytes(api.other, "secret.bin", b"theirs")
    assert_error(client.get("/v1/storage/files/secret.bin", follow_redirects=False), 404, "not_found")
    assert_error(client.delete("/v1/storage/files/secret.bin"), 404, "not_found")
    assert client.get("/v1/storage/files").json()["data"] == []
    assert api.object_count(api.other) == 1


def test_another_projects_upload_is_a_404(client: TestClient, api: Api) -> None:
    theirs = api.services.uploads_or_raise().create(api.other, "big.bin", 10, SHA)
    try:
        for method, route in [
            ("GET", "/v1/storage/uploads/{id}"),
            ("PUT", "/v1/storage/uploads/{id}/chunks/0"),
            ("POST", "/v1/storage/uploads/{id}/finalize"),
            ("DELETE", "/v1/storage/uploads/{id}"),
        ]:
            response = client.request(method, route.format(id=theirs.id), content=b"0123456789")
            assert_error(response, 404, "not_found")
    finally:
        api.services.uploads_or_raise().abort(api.other, theirs.id)


@pytest.mark.parametrize("n", ["-1", "2147483649", "99999999999999999999", "x"])
def test_a_bad_chunk_number_is_a_400(client: TestClient, n: str) -> None:
    response = client.put(f"/v1/storage/uploads/up_x/chunks/{n}", content=b"0")
    assert_error(response, 400, "invalid_request", "n")
