"""The vector routes' error mapping, in-process, with the real collection store and no vectors
deployment: every refusal of the request itself comes before the deployment is needed (a 400, not a
503), another project's collection is a 404, and a collection the deployment could not make is not
left behind."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.records import CollectionRecord
from tests.api.conftest import Api, assert_error


def collection(api: Api, project: str | None = None, model: str = "multimodal") -> CollectionRecord:
    """A collection row made straight in the store (the API would need the vectors deployment)."""
    spaces = {"multimodal": ["text", "image"], "text": ["text"], "image": ["image"], "face": ["face"]}[model]
    return api.services.collections_or_raise().create(project or api.project, "c", model, "cosine", spaces, {})


def test_creating_a_collection_without_the_deployment_is_a_503_and_leaves_nothing(client: TestClient, api: Api) -> None:
    response = client.post("/v1/vectors/collections", json={"name": "photos"})
    assert_error(response, 503, "vectors_unavailable")
    assert api.collection_count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"name": "a", "model": "audio"}, "model"),
        ({"name": "a", "model": "clip"}, "model"),
        ({"name": "a", "metric": "manhattan"}, "metric"),
        ({"name": "a", "metadata": {"k": [1]}}, "metadata.k"),
        ({"name": "a", "metadata": {"k": {"nested": 1}}}, "metadata.k"),
        ({"name": "a", "metadata": "tags"}, "metadata"),
        ({"name": "a", "dimension": 3}, "dimension"),
    ],
)
def test_a_bad_collection_is_a_400_before_the_deployment(
    client: TestClient, api: Api, body: dict[str, Any], field: str
) -> None:
    assert_error(client.post("/v1/vectors/collections", json=body), 400, "invalid_request", field, prefixed=True)
    assert api.collection_count() == 0


def test_the_list_answers_without_the_deployment(client: TestClient, api: Api) -> None:
    mine = collection(api)
    collection(api, api.other)
    response = client.get("/v1/vectors/collections")
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["data"]] == [mine.id]


COLLECTION_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/vectors/collections/{id}", None),
    ("DELETE", "/v1/vectors/collections/{id}", None),
    ("GET", "/v1/vectors/collections/{id}/items", None),
    ("DELETE", "/v1/vectors/collections/{id}/items?ids=a,b", None),
    ("POST", "/v1/vectors/collections/{id}/index", {"items": [{"id": "a", "text": "hello"}]}),
    ("POST", "/v1/vectors/collections/{id}/search", {"text_query": "hello"}),
]


@pytest.mark.parametrize(("method", "route", "body"), COLLECTION_ROUTES)
def test_another_projects_collection_is_a_404(
    client: TestClient, api: Api, method: str, route: str, body: dict[str, Any] | None
) -> None:
    theirs = collection(api, api.other)
    assert_error(client.request(method, route.format(id=theirs.id), json=body), 404, "not_found")
    assert api.collection_count(api.other) == 1


@pytest.mark.parametrize(("method", "route", "body"), COLLECTION_ROUTES[2:])
def test_what_needs_the_vectors_deployment_is_a_503(
    client: TestClient, api: Api, method: str, route: str, body: dict[str, Any] | None
) -> None:
    mine = collection(api)
    assert_error(client.request(method, route.format(id=mine.id), json=body), 503, "vectors_unavailable")


def test_deleting_a_collection_without_the_deployment_keeps_it(client: TestClient, api: Api) -> None:
    mine = collection(api)
    assert_error(client.delete(f"/v1/vectors/collections/{mine.id}"), 503, "vectors_unavailable")
    assert client.get(f"/v1/vectors/collections/{mine.id}").status_code == 200


@pytest.mark.parametrize(
    "cursor", ["99999999999999999999", "9223372036854775808", "9999999999999999999", "-1", "1e3", "abc"]
)
def test_an_items_cursor_beyond_int64_is_a_400(client: TestClient, api: Api, cursor: str) -> None:
    mine = collection(api)
    response = client.get(f"/v1/vectors/collections/{mine.id}/items", params={"cursor": cursor})
    assert_error(response, 400, "invalid_request", "cursor")


@pytest.mark.parametrize(("params", "field"), [({"limit": 0}, "limit"), ({"limit": 1001}, "limit")])
def test_bad_items_paging_is_a_400(client: TestClient, api: Api, params: dict[str, Any], field: str) -> None:
    mine = collection(api)
    response = client.get(f"/v1/vectors/collections/{mine.id}/items", params=params)
    assert_error(response, 400, "invalid_request", field)


SEARCHES: list[tuple[str, dict[str, Any], str, str]] = [
    ("empty image_path", {"image_path": ""}, "invalid_request", "image_path"),
    ("empty image_url", {"image_url": ""}, "invalid_request", "image_url"),
    ("nothing to search with", {}, "invalid_request", "text_query"),
    ("two images", {"image_url": "http://example.com/a.png", "image_path": "a.png"}, "invalid_request", "image_path"),
    ("data: prefix", {"image_data": "data:image/png;base64,aGk="}, "invalid_base64", "image_data"),
    ("audio", {"audio_data": "aGk="}, "unsupported_modality", "audio_data"),
    ("top_k 0", {"text_query": "a", "top_k": 0}, "invalid_request", "top_k"),
    ("top_k over the cap", {"text_query": "a", "top_k": 1001}, "invalid_request", "top_k"),
    ("top_k a string", {"text_query": "a", "top_k": "5"}, "invalid_request", "top_k"),
    ("both weights 0", {"text_query": "a", "text_weight": 0, "image_weight": 0}, "invalid_request", "text_weight"),
    ("negative weight", {"text_query": "a", "text_weight": -1}, "invalid_request", "text_weight"),
    ("unknown space", {"vector": [1.0], "space": "audio"}, "invalid_request", "space"),
    ("empty vector", {"vector": []}, "invalid_request", "vector"),
    ("vector of strings", {"vector": ["1"]}, "invalid_request", "vector[0]"),
    ("negative track id", {"track": {"task_id": "vt_x", "track_id": -1}}, "invalid_request", "track.track_id"),
    ("unknown field", {"text_query": "a", "filter": {}}, "invalid_request", "filter"),
    ("where two keys", {"text_query": "a", "where": {"a": 1, "b": 2}}, "invalid_filter", "where"),
    ("where bad operator", {"text_query": "a", "where": {"n": {"$regex": "x"}}}, "invalid_filter", "where.n.$regex"),
    (
        "where $and of one",
        {"text_query": "a", "where": {"$and": [{"a": 1}]}},
        "invalid_filter",
        "where.$and",
    ),
    ("where bad field name", {"text_query": "a", "where": {"a b": 1}}, "invalid_filter", "where.a b"),
    (
        "condition bad operator",
        {"text_query": "a", "conditions": [{"field": "n", "operator": "like", "value": 1}]},
        "invalid_filter",
        "conditions[0].operator",
    ),
    (
        "condition type mismatch",
        {"text_query": "a", "conditions": [{"field": "n", "operator": "gt", "value": "x", "type": "number"}]},
        "invalid_filter",
        "conditions[0].value",
    ),
    (
        "condition unknown key",
        {"text_query": "a", "conditions": [{"field": "n", "operator": "equals", "value": 1, "op": 1}]},
        "invalid_filter",
        "conditions[0].op",
    ),
]


@pytest.mark.parametrize(("body", "code", "field"), [c[1:] for c in SEARCHES], ids=[c[0] for c in SEARCHES])
def test_a_bad_search_is_a_400_before_the_deployment(
    client: TestClient, api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    mine = collection(api)
    assert_error(client.post(f"/v1/vectors/collections/{mine.id}/search", json=body), 400, code, field)


def test_a_track_of_another_project_is_a_404_on_its_field(client: TestClient, api: Api) -> None:
    mine = collection(api)
    theirs = api.services.tasks.create(api.other, {"steps": []}, None)
    body = {"track": {"task_id": theirs.id, "track_id": 1}}
    response = client.post(f"/v1/vectors/collections/{mine.id}/search", json=body)
    assert_error(response, 404, "not_found", "track.task_id")


def test_a_track_search_on_a_text_collection_is_a_model_mismatch(client: TestClient, api: Api) -> None:
    mine = collection(api, model="text")
    body = {"track": {"task_id": "vt_x", "track_id": 1}}
    response = client.post(f"/v1/vectors/collections/{mine.id}/search", json=body)
    assert_error(response, 400, "model_mismatch", "track")


INDEXES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no items", {"items": []}, "invalid_request", "items"),
    ("no id", {"items": [{"text": "a"}]}, "invalid_request", "items[0].id"),
    ("nothing to embed", {"items": [{"id": "a"}]}, "invalid_request", "items[0]"),
    ("two things to embed", {"items": [{"id": "a", "text": "a", "vector": [1.0]}]}, "invalid_request", "items[0]"),
    ("duplicate id", {"items": [{"id": "a", "text": "a"}, {"id": "a", "text": "b"}]}, "duplicate_id", "items[1].id"),
    ("audio", {"items": [{"id": "a", "audio": "aGk="}]}, "unsupported_modality", "items[0].audio"),
    (
        "bad metadata",
        {"items": [{"id": "a", "text": "a", "metadata": {"k": None}}]},
        "invalid_request",
        "items[0].metadata.k",
    ),
    ("bad image", {"items": [{"id": "a", "image": {}}]}, "invalid_request", "items[0].image"),
    ("unknown field", {"items": [{"id": "a", "text": "a", "tags": []}]}, "invalid_request", "items[0].tags"),
]


@pytest.mark.parametrize(("body", "code", "field"), [c[1:] for c in INDEXES], ids=[c[0] for c in INDEXES])
def test_a_bad_index_request_is_a_400_before_the_deployment(
    client: TestClient, api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    mine = collection(api)
    assert_error(client.post(f"/v1/vectors/collections/{mine.id}/index", json=body), 400, code, field)


def test_too_many_items_is_a_400(make_api: Any) -> None:
    api = make_api(max_index_items=2)
    mine = collection(api)
    with TestClient(api.app, headers=api.headers()) as client:
        body = {"items": [{"id": str(n), "text": "a"} for n in range(3)]}
        response = client.post(f"/v1/vectors/collections/{mine.id}/index", json=body)
    assert_error(response, 400, "too_many_items", "items")


def test_the_embedding_models_answer(client: TestClient) -> None:
    response = client.get("/v1/vectors/models")
    assert response.status_code == 200, response.text
    assert {model["space"] for model in response.json()["data"]} >= {"text", "image"}
