"""The vision routes' error mapping, in-process: a bad image or parameter is refused before any model
runs, naming the request's own field (``image.base64``, ``classes``, ``images[0].data_base64``), and a
refused batch stages nothing."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from store.records import TaskKind
from tests.api.conftest import Api, ApiFactory, assert_error


def png(width: int = 32, height: int = 24) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SINGLE_ROUTES = ["/v1/vision/detect", "/v1/vision/ocr", "/v1/vision/describe"]

BAD_IMAGES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("no source", {}, 400, "invalid_request", "image"),
    ("two sources", {"base64": "aGk=", "path": "a.png"}, 400, "invalid_request", "image"),
    ("empty base64", {"base64": ""}, 400, "invalid_request", "image.base64"),
    ("base64 not a string", {"base64": 12}, 400, "invalid_request", "image.base64"),
    ("unknown source", {"file": "a.png"}, 400, "invalid_request", "image.file"),
    ("not base64", {"base64": "%%%not base64%%%"}, 400, "invalid_base64", "image.base64"),
    ("not an image", {"base64": b64(b"hello, this is text")}, 400, "not_an_image", "image.base64"),
    ("truncated png", {"base64": b64(base64.b64decode(png())[:60])}, 400, "corrupt_image", "image.base64"),
    ("path escaping the project", {"path": "../other/a.png"}, 400, "invalid_path", "image.path"),
    ("missing stored image", {"path": "nothing/here.png"}, 400, "media_not_found", "image.path"),
    ("private url", {"url": "http://127.0.0.1:9/a.png"}, 400, "url_not_allowed", "image.url"),
    ("local file url", {"url": "file:///etc/passwd"}, 400, "url_not_allowed", "image.url"),
]


#: Every case on detect, a few on the other routes (they share the reader).
IMAGE_CASES = [("/v1/vision/detect", *case) for case in BAD_IMAGES] + [
    (route, *case) for route in SINGLE_ROUTES[1:] for case in BAD_IMAGES if case[0] in ("no source", "not an image")
]


@pytest.mark.parametrize(
    ("route", "image", "status", "code", "field"),
    [(c[0], *c[2:]) for c in IMAGE_CASES],
    ids=[f"{c[0].rsplit('/', 1)[1]}:{c[1]}" for c in IMAGE_CASES],
)
def test_a_bad_image_names_its_source(
    client: TestClient, route: str, image: dict[str, Any], status: int, code: str, field: str
) -> None:
    assert_error(client.post(route, json={"image": image}), status, code, field)


@pytest.mark.parametrize("route", SINGLE_ROUTES)
def test_an_image_over_the_pixel_limit_is_a_413(make_api: ApiFactory, route: str) -> None:
    api = make_api(max_image_pixels=100)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post(route, json={"image": {"base64": png()}})
    assert_error(response, 413, "image_too_large", "image.base64")


@pytest.mark.parametrize("route", SINGLE_ROUTES)
def test_an_image_over_the_byte_limit_is_a_413(make_api: ApiFactory, route: str) -> None:
    api = make_api(max_image_bytes=64)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post(route, json={"image": {"base64": png(200, 200)}})
    assert_error(response, 413, "media_too_large", "image.base64")


DETECT_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown class", {"classes": ["car", "unicorn"]}, "classes"),
    ("empty classes", {"classes": []}, "classes"),
    ("class not a string", {"classes": [3]}, "classes[0]"),
    ("unknown detector", {"model": "no-such-detector"}, "model"),
    ("a model that is no detector", {"model": "ppocr"}, "model"),
    ("confidence over 1", {"min_confidence": 1.5}, "min_confidence"),
    ("confidence a string", {"min_confidence": "0.5"}, "min_confidence"),
    ("unknown field", {"threshold": 0.5}, "threshold"),
]


@pytest.mark.parametrize(("extra", "field"), [c[1:] for c in DETECT_FIELDS], ids=[c[0] for c in DETECT_FIELDS])
def test_a_bad_detect_parameter_names_the_top_level_field(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/vision/detect", json={"image": {"base64": png()}, **extra})
    assert_error(response, 400, "invalid_request", field, prefixed=True)


def test_parameters_are_checked_before_the_image_is_read(client: TestClient) -> None:
    """A bad class is named even when the image is bad too: the cheap check comes first."""
    body = {"image": {"path": "nothing/here.png"}, "classes": ["unicorn"]}
    assert_error(client.post("/v1/vision/detect", json=body), 400, "invalid_request", "classes")


@pytest.mark.parametrize(
    ("route", "extra", "field"),
    [
        ("/v1/vision/ocr", {"min_confidence": -0.1}, "min_confidence"),
        ("/v1/vision/ocr", {"classes": ["car"]}, "classes"),
        ("/v1/vision/describe", {"model": ""}, "model"),
        ("/v1/vision/describe", {"model": "no-such-provider"}, "model"),
        ("/v1/vision/describe", {"prompt": "hi"}, "prompt"),
    ],
)
def test_bad_ocr_and_describe_fields(client: TestClient, route: str, extra: dict[str, Any], field: str) -> None:
    assert_error(client.post(route, json={"image": {"base64": png()}, **extra}), 400, "invalid_request", field)


# --- the image batch -------------------------------------------------------------------------------

BAD_BATCHES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no images", {"images": []}, "invalid_request", "images"),
    (
        "data: prefix",
        {"images": [{"data_base64": "data:image/png;base64," + png()}]},
        "invalid_base64",
        "images[0].data_base64",
    ),
    (
        "second not base64",
        {"images": [{"data_base64": png()}, {"data_base64": "@@@"}]},
        "invalid_base64",
        "images[1].data_base64",
    ),
    ("empty data", {"images": [{"data_base64": ""}]}, "invalid_request", "images[0].data_base64"),
    ("unknown item field", {"images": [{"data_base64": png(), "name": "a"}]}, "invalid_request", "images[0].name"),
    (
        "bad step",
        {"images": [{"data_base64": png()}], "steps": [{"model": "segment"}]},
        "invalid_request",
        "steps[0].model",
    ),
    (
        "unknown class in a step",
        {"images": [{"data_base64": png()}], "steps": [{"model": "detect", "parameters": {"classes": ["unicorn"]}}]},
        "invalid_request",
        "steps[0].parameters.classes",
    ),
    (
        "unknown detector in a step",
        {"images": [{"data_base64": png()}], "steps": [{"model": "detect", "parameters": {"model": "nope"}}]},
        "invalid_request",
        "steps[0].parameters.model",
    ),
]


@pytest.mark.parametrize(("body", "code", "field"), [c[1:] for c in BAD_BATCHES], ids=[c[0] for c in BAD_BATCHES])
def test_a_bad_batch_stages_nothing(client: TestClient, api: Api, body: dict[str, Any], code: str, field: str) -> None:
    assert_error(client.post("/v1/vision/batch", json=body), 400, code, field)
    assert api.stored() == (0, 0, 0, 0)


def test_too_many_images_is_a_400(make_api: ApiFactory) -> None:
    api = make_api(max_batch_images=2)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post("/v1/vision/batch", json={"images": [{"data_base64": png()}] * 3})
    assert_error(response, 400, "too_many_images", "images")
    assert api.stored() == (0, 0, 0, 0)


def test_an_oversized_batch_image_is_a_413(make_api: ApiFactory) -> None:
    api = make_api(max_image_bytes=64)
    with TestClient(api.app, headers=api.headers()) as client:
        response = client.post("/v1/vision/batch", json={"images": [{"data_base64": png(200, 200)}]})
    assert_error(response, 413, "media_too_large", "images[0].data_base64")
    assert api.stored() == (0, 0, 0, 0)


def test_a_batch_is_staged_and_queued(client: TestClient, api: Api) -> None:
    response = client.post("/v1/vision/batch", json={"images": [{"data_base64": png(), "id": "a"}]})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["Location"] == f"/v1/vision/batch/{job_id}"
    assert api.task_count() == 1 and api.object_count() == 1
    assert client.get(f"/v1/vision/batch/{job_id}").json()["status"] == "pending"
    assert client.delete(f"/v1/vision/batch/{job_id}").status_code == 204
    assert api.stored() == (0, 0, 0, 0)


BATCH_ROUTES = [
    ("GET", "/v1/vision/batch/{id}"),
    ("POST", "/v1/vision/batch/{id}/cancel"),
    ("DELETE", "/v1/vision/batch/{id}"),
]


@pytest.mark.parametrize(("method", "route"), BATCH_ROUTES)
def test_a_video_task_id_is_no_batch(client: TestClient, api: Api, method: str, route: str) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    assert_error(client.request(method, route.format(id=task.id)), 404, "not_found")
    assert api.services.tasks.get(api.project, task.id).status == "pending"  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "route"), BATCH_ROUTES)
def test_another_projects_batch_is_a_404(client: TestClient, api: Api, method: str, route: str) -> None:
    theirs = api.services.tasks.create(api.other, {"images": []}, None, kind=TaskKind.IMAGE_BATCH)
    assert_error(client.request(method, route.format(id=theirs.id)), 404, "not_found")
    assert api.services.tasks.get(api.other, theirs.id).status == "pending"  # type: ignore[union-attr]


def test_the_model_list_answers(client: TestClient) -> None:
    response = client.get("/v1/vision/models")
    assert response.status_code == 200, response.text
    assert any(model["id"] == "visiongrid-describe" for model in response.json()["data"])
