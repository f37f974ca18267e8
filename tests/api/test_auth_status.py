"""Who is asking and what they may see: every route family answers 401 (with ``WWW-Authenticate``) to a
missing or wrong key before it looks at the request, ``X-API-Key`` works like ``Authorization: Bearer``,
``/v1/status`` counts only the caller's tasks, and no route ever answers FastAPI's 422."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.records import TaskKind
from tests.api.conftest import JSON, Api, assert_error

#: One route of each family (and of each way a route gets its input), with a request that would be
#: refused for itself if the key were good: the 401 must come first.
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/status", {}),
    ("GET", "/v1/video/tasks", {"params": {"limit": 0}}),
    ("GET", "/v1/video/tasks/vt_x/stream", {"params": {"offset": -1}}),
    ("POST", "/v1/video/process", {"content": b"{", "headers": JSON}),
    ("POST", "/v1/video/process", {"content": b"\x00", "headers": {"content-type": "video/mp4"}}),
    ("GET", "/v1/vision/models", {}),
    ("POST", "/v1/vision/detect", {"json": {"image": {}}}),
    ("POST", "/v1/vision/batch", {"json": {"images": []}}),
    ("GET", "/v1/vision/batch/ib_x", {}),
    ("GET", "/v1/vectors/models", {}),
    ("GET", "/v1/vectors/collections", {}),
    ("POST", "/v1/vectors/collections", {"json": {"name": ""}}),
    ("POST", "/v1/vectors/collections/vc_x/search", {"json": {"nothing": 1}}),
    ("GET", "/v1/storage/files", {"params": {"path": "../x"}}),
    ("POST", "/v1/storage/upload", {"json": {"path": "../x", "size": 1}}),
    ("POST", "/v1/storage/uploads", {"json": {}}),
    ("PUT", "/v1/storage/uploads/up_x/chunks/0", {"content": b"0"}),
    ("DELETE", "/v1/storage/files/a.bin", {}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]
BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "no key": {},
    "unknown bearer": {"Authorization": "Bearer vg_not_a_key"},
}
OTHER_BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "unknown x-api-key": {"X-API-Key": "vg_not_a_key"},
    "empty bearer": {"Authorization": "Bearer "},
    "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
    "key without scheme": {"Authorization": "vg_not_a_key"},
}


@pytest.fixture
def anonymous(api: Api) -> Any:
    with TestClient(api.app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(("method", "path", "request_args"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_a_missing_or_wrong_key_is_a_401_first(
    anonymous: TestClient,
    api: Api,
    method: str,
    path: str,
    request_args: dict[str, Any],
    credentials: dict[str, str],
) -> None:
    headers = {**request_args.get("headers", {}), **credentials}
    response = anonymous.request(method, path, **{**request_args, "headers": headers})
    assert_error(response, 401, "unauthorized")
    assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert api.stored() == (0, 0, 0, 0)


@pytest.mark.parametrize(("method", "path", "request_args"), [ROUTES[0], ROUTES[6]], ids=[ROUTE_IDS[0], ROUTE_IDS[6]])
@pytest.mark.parametrize("credentials", list(OTHER_BAD_CREDENTIALS.values()), ids=list(OTHER_BAD_CREDENTIALS))
def test_other_bad_credentials_are_401s(
    anonymous: TestClient, method: str, path: str, request_args: dict[str, Any], credentials: dict[str, str]
) -> None:
    response = anonymous.request(method, path, **{**request_args, "headers": credentials})
    assert_error(response, 401, "unauthorized")
    assert response.headers.get("WWW-Authenticate") == "Bearer"


def test_a_revoked_key_is_a_401(anonymous: TestClient, api: Api) -> None:
    record, key = api.services.keys.create(api.project)
    assert anonymous.get("/v1/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert api.services.keys.revoke(api.project, record.id)
    assert_error(anonymous.get("/v1/status", headers={"Authorization": f"Bearer {key}"}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/v1/status", None), ("GET", "/v1/video/tasks", None), ("POST", "/v1/vision/detect", {"image": {}})],
)
def test_x_api_key_works_like_bearer(anonymous: TestClient, api: Api, method: str, path: str, body: Any) -> None:
    response = anonymous.request(method, path, json=body, headers={"X-API-Key": api.key})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["field"] == "image"


def test_healthz_needs_no_key(anonymous: TestClient) -> None:
    assert anonymous.get("/healthz").status_code == 200


def test_status_counts_only_the_callers_tasks(client: TestClient, api: Api) -> None:
    tasks = api.services.tasks
    for _ in range(3):
        tasks.create(api.project, {"steps": []}, None)
    tasks.create(api.project, {"images": []}, None, kind=TaskKind.IMAGE_BATCH)
    for _ in range(5):
        tasks.create(api.other, {"steps": []}, None)
    mine = client.get("/v1/status")
    theirs = client.get("/v1/status", headers=api.headers(api.other_key))
    assert mine.status_code == 200 and theirs.status_code == 200, (mine.text, theirs.text)
    assert mine.json()["project"] == api.project and theirs.json()["project"] == api.other
    assert mine.json()["tasks"]["pending"] == 4 and mine.json()["queue_depth"] == 4
    assert theirs.json()["tasks"]["pending"] == 5 and theirs.json()["queue_depth"] == 5
    assert sum(mine.json()["tasks"].values()) == 4


# --- never a 422 ---------------------------------------------------------------------------------

NONSENSE: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/video/tasks", {"params": {"limit": "many", "status": 3}}),
    ("GET", "/v1/video/tasks/vt_x", {"params": {"include": ["a", "b"]}}),
    ("GET", "/v1/video/tasks/vt_x/results", {"params": {"include": "bogus"}}),
    ("POST", "/v1/video/process", {"content": b"not json", "headers": JSON}),
    ("POST", "/v1/video/process", {"json": {"input": "x", "steps": "y"}}),
    (
        "POST",
        "/v1/video/process",
        {"params": {"value": "x"}, "content": b"0", "headers": {"content-type": "video/mp4"}},
    ),
    ("POST", "/v1/vision/detect", {"content": b"not json", "headers": JSON}),
    ("POST", "/v1/vision/detect", {"json": []}),
    ("POST", "/v1/vision/ocr", {"json": {"image": "a.png"}}),
    ("POST", "/v1/vision/describe", {"content": b"", "headers": JSON}),
    ("POST", "/v1/vision/batch", {"json": {"images": "a"}}),
    ("POST", "/v1/vectors/collections", {"content": b"[", "headers": JSON}),
    ("POST", "/v1/vectors/collections/vc_x/index", {"json": {"items": {"a": 1}}}),
    ("POST", "/v1/vectors/collections/vc_x/search", {"json": {"top_k": None, "where": []}}),
    ("GET", "/v1/vectors/collections/vc_x/items", {"params": {"limit": "x", "cursor": "y"}}),
    ("DELETE", "/v1/vectors/collections/vc_x/items", {}),
    ("GET", "/v1/storage/files", {"params": {"limit": "x"}}),
    ("POST", "/v1/storage/upload", {"json": {"path": 1, "size": []}}),
    ("POST", "/v1/storage/presign", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("POST", "/v1/storage/uploads", {"json": None}),
    ("PUT", "/v1/storage/uploads/up_x/chunks/first", {"content": b"0"}),
]


@pytest.mark.parametrize(("method", "path", "request_args"), NONSENSE, ids=[f"{m} {p}" for m, p, _ in NONSENSE])
def test_no_route_answers_422(client: TestClient, method: str, path: str, request_args: dict[str, Any]) -> None:
    response = client.request(method, path, **request_args)
    assert response.status_code == 400, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] in ("invalid_request", "invalid_json", "invalid_filter") and error["field"], error


def test_unknown_routes_and_methods_use_the_envelope(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.put("/v1/status"), 405, "method_not_allowed")


def test_the_openapi_document_declares_no_422(client: TestClient) -> None:
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert '"422"' not in document.text and "HTTPValidationError" not in document.text
