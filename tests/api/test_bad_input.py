"""Attacker inputs, one class at a time, sent as raw JSON text (what a client can put on the wire but
``json=`` cannot): non-finite numbers (``1e400`` parses to infinity, ``NaN`` is accepted by Python's
parser), integers beyond int64, and lone UTF-16 surrogates (``"\\ud800"``, valid JSON, invalid
Unicode). Each is a 400 naming the field, nothing is stored, and the project's reads keep working."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from store.records import CollectionRecord
from tests.api.conftest import JSON, Api, ResponseLike, assert_error

VIDEO = '{"input": [{"type": "video_url", "url": "storage://a.mp4"%s}], "steps": [%s]}'
DETECT = '{"model": "detect"}'


def video(input_extra: str = "", steps: str = DETECT) -> str:
    return VIDEO % (input_extra, steps)


def collection(api: Api) -> CollectionRecord:
    return api.services.collections_or_raise().create(api.project, "c", "multimodal", "cosine", ["text", "image"], {})


def post(client: TestClient, route: str, text: str) -> ResponseLike:
    return client.post(route, content=text.encode(), headers=JSON)


# --- non-finite numbers --------------------------------------------------------------------------

NON_FINITE = ["1e400", "NaN", "-Infinity"]

NUMBER_FIELDS: list[tuple[str, str, str, str]] = [
    # (route, body with {n} for the number, code, field)
    ("search", '{{"vector": [0.5, {n}]}}', "invalid_request", "vector[1]"),
    ("search", '{{"text_query": "a", "text_weight": {n}}}', "invalid_request", "text_weight"),
    ("search", '{{"text_query": "a", "where": {{"x": {n}}}}}', "invalid_filter", "where.x"),
    ("search", '{{"text_query": "a", "where": {{"x": {{"$gt": {n}}}}}}}', "invalid_filter", "where.x.$gt"),
    ("search", '{{"text_query": "a", "where": {{"x": {{"$in": [1, {n}]}}}}}}', "invalid_filter", "where.x.$in[1]"),
    (
        "search",
        '{{"text_query": "a", "conditions": [{{"field": "x", "operator": "gt", "value": {n}}}]}}',
        "invalid_filter",
        "conditions[0].value",
    ),
    ("index", '{{"items": [{{"id": "a", "vector": [{n}]}}]}}', "invalid_request", "items[0].vector[0]"),
    (
        "index",
        '{{"items": [{{"id": "a", "text": "a", "metadata": {{"x": {n}}}}}]}}',
        "invalid_request",
        "items[0].metadata.x",
    ),
    ("collections", '{{"name": "a", "metadata": {{"x": {n}}}}}', "invalid_request", "metadata.x"),
    ("video", video(', "sampling": {{"value": {n}}}'), "invalid_request", "input[0].sampling.value"),
    ("video", video(', "range": {{"start": {n}}}'), "invalid_request", "input[0].range.start"),
    (
        "video",
        video(steps=DETECT + ', {{"model": "ocr", "when": {{"min_width": {n}}}}}'),
        "invalid_request",
        "steps[1].when.min_width",
    ),
    ("detect", '{{"image": {{"path": "a.png"}}, "min_confidence": {n}}}', "invalid_request", "min_confidence"),
]


def route_of(api: Api, name: str) -> str:
    if name in ("search", "index"):
        return f"/v1/vectors/collections/{collection(api).id}/{name}"
    return {
        "collections": "/v1/vectors/collections",
        "video": "/v1/video/process",
        "detect": "/v1/vision/detect",
        "upload": "/v1/storage/upload",
        "batch": "/v1/vision/batch",
    }[name]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(
    ("route", "template", "code", "field"), NUMBER_FIELDS, ids=[f"{r}:{f}" for r, _, _, f in NUMBER_FIELDS]
)
def test_a_non_finite_number_is_a_400(
    client: TestClient, api: Api, route: str, template: str, code: str, field: str, number: str
) -> None:
    body = template.replace("{n}", number).replace("{{", "{").replace("}}", "}")
    path = route_of(api, route)
    before = api.stored()
    assert_error(post(client, path, body), 400, code, field)
    assert api.stored() == before


# --- integers beyond int64 -----------------------------------------------------------------------

BIG = ["9223372036854775808", "-99999999999999999999999999999999"]

INTEGER_FIELDS: list[tuple[str, str, str, str]] = [
    ("collections", '{"name": "a", "metadata": {"x": {n}}}', "invalid_request", "metadata.x"),
    (
        "index",
        '{"items": [{"id": "a", "text": "a", "metadata": {"x": {n}}}]}',
        "invalid_request",
        "items[0].metadata.x",
    ),
    ("search", '{"text_query": "a", "where": {"x": {n}}}', "invalid_filter", "where.x"),
    ("search", '{"text_query": "a", "where": {"x": {"$lt": {n}}}}', "invalid_filter", "where.x.$lt"),
    (
        "search",
        '{"text_query": "a", "conditions": [{"field": "x", "operator": "equals", "value": {n}}]}',
        "invalid_filter",
        "conditions[0].value",
    ),
    (
        "search",
        '{"text_query": "a", "conditions": [{"field": "x", "operator": "in", "value": [1, {n}]}]}',
        "invalid_filter",
        "conditions[0].value[1]",
    ),
    ("search", '{"track": {"task_id": "vt_x", "track_id": {n}}}', "invalid_request", "track.track_id"),
    ("search", '{"text_query": "a", "top_k": {n}}', "invalid_request", "top_k"),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a.mp4"}], "steps": [{"model": "detect"}, '
        '{"model": "ocr", "when": {"track_is": [{n}]}}]}',
        "invalid_request",
        "steps[1].when.track_is",
    ),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a.mp4", "max_frames": {n}}], '
        '"steps": [{"model": "detect"}]}',
        "invalid_request",
        "input[0].max_frames",
    ),
    ("upload", '{"path": "a.bin", "size": {n}}', "invalid_request", "size"),
]


@pytest.mark.parametrize("number", BIG)
@pytest.mark.parametrize(
    ("route", "template", "code", "field"), INTEGER_FIELDS, ids=[f"{r}:{f}" for r, _, _, f in INTEGER_FIELDS]
)
def test_an_integer_beyond_int64_is_a_400(
    client: TestClient, api: Api, route: str, template: str, code: str, field: str, number: str
) -> None:
    path = route_of(api, route)
    before = api.stored()
    assert_error(post(client, path, template.replace("{n}", number)), 400, code, field)
    assert api.stored() == before


# --- lone surrogates -------------------------------------------------------------------------------

LONE = [r"\ud800", r"a\udc00b"]

TEXT_FIELDS: list[tuple[str, str, str]] = [
    ("collections", '{"name": "{s}"}', "name"),
    ("collections", '{"name": "a", "metadata": {"{s}": 1}}', "metadata"),
    ("collections", '{"name": "a", "metadata": {"k": "{s}"}}', "metadata.k"),
    ("index", '{"items": [{"id": "{s}", "text": "a"}]}', "items[0].id"),
    ("index", '{"items": [{"id": "a", "text": "{s}"}]}', "items[0].text"),
    ("index", '{"items": [{"id": "a", "text": "a", "metadata": {"k": "{s}"}}]}', "items[0].metadata.k"),
    ("search", '{"text_query": "{s}"}', "text_query"),
    ("search", '{"text_query": "a", "where": {"{s}": 1}}', "where"),
    ("search", '{"text_query": "a", "where": {"k": "{s}"}}', "where.k"),
    ("search", '{"text_query": "a", "where": {"k": {"$in": ["x", "{s}"]}}}', "where.k.$in[1]"),
    (
        "search",
        '{"text_query": "a", "conditions": [{"field": "k", "operator": "equals", "value": "{s}"}]}',
        "conditions[0].value",
    ),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a.mp4"}], '
        '"steps": [{"model": "detect", "parameters": {"classes": ["car", "{s}"]}}]}',
        "steps[0].parameters.classes[1]",
    ),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a.mp4"}], "steps": [{"model": "detect"}, '
        '{"model": "feature", "parameters": {"collection": "{s}"}}]}',
        "steps[1].parameters.collection",
    ),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a{s}.mp4"}], "steps": [{"model": "detect"}]}',
        "input[0].url",
    ),
    (
        "video",
        '{"input": [{"type": "video_url", "url": "storage://a.mp4"}], "steps": [{"model": "detect"}], "model": "{s}"}',
        "model",
    ),
    ("detect", '{"image": {"path": "a{s}.png"}}', "image.path"),
    ("detect", '{"image": {"path": "a.png"}, "classes": ["{s}"]}', "classes[0]"),
    ("batch", '{"images": [{"data_base64": "aGk=", "id": "{s}"}]}', "images[0].id"),
    ("upload", '{"path": "a{s}.bin", "size": 1}', "path"),
]


@pytest.mark.parametrize("lone", LONE)
@pytest.mark.parametrize(("route", "template", "field"), TEXT_FIELDS, ids=[f"{r}:{f}" for r, _, f in TEXT_FIELDS])
def test_a_lone_surrogate_is_a_400_and_the_project_still_reads(
    client: TestClient, api: Api, route: str, template: str, field: str, lone: str
) -> None:
    path = route_of(api, route)
    before = api.stored()
    assert_error(post(client, path, template.replace("{s}", lone)), 400, "invalid_request", field, prefixed=True)
    assert api.stored() == before
    listing = client.get("/v1/vectors/collections")
    assert listing.status_code == 200, listing.text


def test_a_surrogate_pair_is_valid_unicode(client: TestClient, api: Api) -> None:
    """``"\\ud83d\\ude00"`` is one emoji, not two lone halves: it passes validation (and meets the
    missing vectors deployment: a 503, and the half-made collection is removed again)."""
    response = post(
        client, "/v1/vectors/collections", r'{"name": "smile \ud83d\ude00", "metadata": {"k": "\ud83d\ude00"}}'
    )
    assert_error(response, 503, "vectors_unavailable")
    assert api.collection_count() == 0
