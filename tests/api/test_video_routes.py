"""The video routes' error mapping, in-process: every refused request is a 400 naming the field the way
the client wrote it (never a 422), nothing is stored for it, and a task of another project or of
another kind is a plain 404."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.records import TaskKind
from tests.api.conftest import JSON, Api, assert_error

VALID: dict[str, Any] = {
    "input": [{"type": "video_url", "url": "storage://clips/missing.mp4"}],
    "steps": [{"model": "detect"}],
}
DETECT = {"model": "detect"}


def with_input(**fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body["input"][0].update(fields)
    return body


def with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(VALID), "steps": list(steps)}


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("sampling value 0", with_input(sampling={"mode": "fps", "value": 0}), "input[0].sampling.value"),
    ("interval not an integer", with_input(sampling={"mode": "interval", "value": 1.5}), "input[0].sampling.value"),
    ("interval without value", with_input(sampling={"mode": "interval"}), "input[0].sampling.value"),
    ("sampling value a string", with_input(sampling={"value": "2"}), "input[0].sampling.value"),
    ("unknown sampling mode", with_input(sampling={"mode": "every"}), "input[0].sampling.mode"),
    ("range end before start", with_input(range={"start": 5, "end": 2}), "input[0].range.end"),
    ("range start negative", with_input(range={"start": -1}), "input[0].range.start"),
    ("range frames fractional", with_input(range={"start": 1.5, "unit": "frames"}), "input[0].range.start"),
    ("range unit unknown", with_input(range={"unit": "hours"}), "input[0].range.unit"),
    ("max_frames 0", with_input(max_frames=0), "input[0].max_frames"),
    ("max_frames a string", with_input(max_frames="10"), "input[0].max_frames"),
    ("max_frames a bool", with_input(max_frames=True), "input[0].max_frames"),
    ("max_frames a float", with_input(max_frames=2.5), "input[0].max_frames"),
    ("url missing", {"input": [{"type": "video_url"}], "steps": [DETECT]}, "input[0]"),
    ("data missing", {"input": [{"type": "video_base64"}], "steps": [DETECT]}, "input[0]"),
    ("two inputs", {**VALID, "input": VALID["input"] * 2}, "input"),
    ("no steps", with_steps(), "steps"),
    ("unknown step", with_steps({"model": "segment"}), "steps[0].model"),
    ("detect not first", with_steps({"model": "ocr"}, DETECT), "steps[1].model"),
    ("step twice", with_steps(DETECT, {"model": "ocr"}, {"model": "ocr"}), "steps[2].model"),
    ("feature without targets", with_steps({"model": "feature"}), "steps[0].model"),
    ("detect with when", with_steps({"model": "detect", "when": {"min_confidence": 0.5}}), "steps[0].when"),
    ("ocr on frame with when", with_steps({"model": "ocr", "when": {"min_width": 4}}), "steps[0].when"),
    ("when empty", with_steps(DETECT, {"model": "ocr", "when": {}}), "steps[1].when"),
    (
        "when unknown class",
        with_steps(DETECT, {"model": "ocr", "when": {"class_is": ["car", "unicorn"]}}),
        "steps[1].when.class_is[1]",
    ),
    (
        "when confidence > 1",
        with_steps(DETECT, {"model": "ocr", "when": {"min_confidence": 1.5}}),
        "steps[1].when.min_confidence",
    ),
    (
        "when bounds reversed",
        with_steps(DETECT, {"model": "ocr", "when": {"min_confidence": 0.8, "max_confidence": 0.2}}),
        "steps[1].when.max_confidence",
    ),
    (
        "when negative track id",
        with_steps(DETECT, {"model": "ocr", "when": {"track_is": [-1]}}),
        "steps[1].when.track_is",
    ),
    (
        "detect classes unknown",
        with_steps({"model": "detect", "parameters": {"classes": ["unicorn"]}}),
        "steps[0].parameters.classes",
    ),
    (
        "confidence as a string",
        with_steps({"model": "detect", "parameters": {"min_confidence": "0.5"}}),
        "steps[0].parameters.min_confidence",
    ),
    (
        "unknown detector",
        with_steps({"model": "detect", "parameters": {"model": "no-such-detector"}}),
        "steps[0].parameters.model",
    ),
    (
        "describe segment 0",
        with_steps(DETECT, {"model": "describe", "parameters": {"segment_frames": 0}}),
        "steps[1].parameters.segment_frames",
    ),
    ("unknown top-level field", {**VALID, "max_frame": 10}, "max_frame"),
    ("unknown input field", with_input(max_frame=10), "input[0].max_frame"),
    ("unknown sampling field", with_input(sampling={"fps": 2}), "input[0].sampling.fps"),
    (
        "unknown parameter",
        with_steps({"model": "detect", "parameters": {"class": ["car"]}}),
        "steps[0].parameters.class",
    ),
    ("unknown when field", with_steps(DETECT, {"model": "ocr", "when": {"klass": ["car"]}}), "steps[1].when.klass"),
    ("several unknown fields: the first by name", {**VALID, "zeta": 1, "alpha": 2}, "alpha"),
    ("output flag as a string", {**VALID, "output": {"annotated_video": "yes"}}, "output.annotated_video"),
    ("unknown output", {**VALID, "output": {"gif": True}}, "output.gif"),
    ("output not an object", {**VALID, "output": [True]}, "output"),
]


@pytest.mark.parametrize(("body", "field"), [(b, f) for _, b, f in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES])
def test_a_bad_process_request_names_its_field(client: TestClient, api: Api, body: dict[str, Any], field: str) -> None:
    before = api.stored()
    assert_error(client.post("/v1/video/process", json=body), 400, "invalid_request", field, prefixed=True)
    assert api.stored() == before


@pytest.mark.parametrize(
    "text",
    [b"{", b"", b"[1, 2]", b'"just a string"', b"null", b'{"input": [}'],
    ids=["truncated", "empty", "array", "string", "null", "broken"],
)
def test_a_body_that_is_not_a_request_object_is_a_400(client: TestClient, api: Api, text: bytes) -> None:
    response = client.post("/v1/video/process", content=text, headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_request")
    assert api.task_count() == 0


def test_invalid_json_names_the_body(client: TestClient) -> None:
    assert_error(client.post("/v1/video/process", content=b"{", headers=JSON), 400, "invalid_json", "body")


def test_a_missing_stored_video_is_refused_before_a_task_exists(client: TestClient, api: Api) -> None:
    assert_error(client.post("/v1/video/process", json=VALID), 400, "media_not_found", "input[0].url")
    assert api.stored() == (0, 0, 0, 0)


def test_bad_base64_video_is_refused_before_staging(client: TestClient, api: Api) -> None:
    body = {"input": [{"type": "video_base64", "data": "not base64!"}], "steps": [DETECT]}
    assert_error(client.post("/v1/video/process", json=body), 400, "invalid_base64", "input[0].data")
    assert api.stored() == (0, 0, 0, 0)


def test_a_private_url_is_refused(client: TestClient, api: Api) -> None:
    body = with_input(url="http://127.0.0.1:9/video.mp4")
    assert_error(client.post("/v1/video/process", json=body), 400, "url_not_allowed", "input[0].url")
    assert api.task_count() == 0


def test_a_live_protocol_this_ffmpeg_lacks_is_refused_at_once(client: TestClient, api: Api) -> None:
    """PyAV's FFmpeg has no libsrt: an srt:// camera is a 400 naming the URL, not a task that fails."""
    body = with_input(url="srt://93.184.216.34:9000?mode=caller", type="live")
    response = client.post("/v1/video/process", json=body)
    assert_error(response, 400, "unsupported_protocol", "input[0].url")
    assert "srt://" in response.json()["error"]["message"] and api.task_count() == 0


# --- the task list -------------------------------------------------------------------------------

EDGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday", "2024-13-01T00:00:00Z"]


@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("value", EDGE_TIMES)
def test_a_time_bound_utc_cannot_hold_is_a_400(client: TestClient, param: str, value: str) -> None:
    assert_error(client.get("/v1/video/tasks", params={param: value}), 400, "invalid_request", param)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CURSORS = {
    "garbage": "!!!not-a-cursor!!!",
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    "huge": "A" * 6000,
    "just over the length cap": "A" * 513,
    "far future edge date": _cursor("9999-12-31T23:59:59-14:00|vt_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    "far past edge date": _cursor("0001-01-01T00:00:00+14:00|vt_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    "naive date": _cursor("2024-01-01T00:00:00|vt_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    "another kind's id": _cursor("2024-01-01T00:00:00+00:00|ib_01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    "no separator": _cursor("2024-01-01T00:00:00+00:00"),
}


@pytest.mark.parametrize("cursor", list(CURSORS.values()), ids=list(CURSORS))
def test_a_cursor_the_store_did_not_write_is_a_400(client: TestClient, api: Api, cursor: str) -> None:
    api.services.tasks.create(api.project, {"steps": []}, None)
    assert_error(client.get("/v1/video/tasks", params={"cursor": cursor}), 400, "invalid_request", "cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"), ({"status": "done"}, "status")],
)
def test_bad_list_parameters_are_400s(client: TestClient, params: dict[str, Any], field: str) -> None:
    assert_error(client.get("/v1/video/tasks", params=params), 400, "invalid_request", field)


def test_the_list_shows_only_the_callers_video_tasks(client: TestClient, api: Api) -> None:
    mine = api.services.tasks.create(api.project, {"steps": []}, None)
    api.services.tasks.create(api.other, {"steps": []}, None)
    api.services.tasks.create(api.project, {"images": []}, None, kind=TaskKind.IMAGE_BATCH)
    response = client.get("/v1/video/tasks")
    assert response.status_code == 200, response.text
    assert [task["id"] for task in response.json()["data"]] == [mine.id]


# --- one task ------------------------------------------------------------------------------------

TASK_ROUTES = [
    ("GET", "/v1/video/tasks/{id}"),
    ("GET", "/v1/video/tasks/{id}/results"),
    ("GET", "/v1/video/tasks/{id}/stream"),
    ("POST", "/v1/video/tasks/{id}/cancel"),
    ("DELETE", "/v1/video/tasks/{id}"),
]


@pytest.mark.parametrize(("method", "route"), TASK_ROUTES)
def test_another_projects_task_is_a_404(client: TestClient, api: Api, method: str, route: str) -> None:
    theirs = api.services.tasks.create(api.other, {"steps": []}, None)
    assert_error(client.request(method, route.format(id=theirs.id)), 404, "not_found")
    assert api.services.tasks.get(api.other, theirs.id) is not None  # neither cancelled nor deleted
    assert api.services.tasks.get(api.other, theirs.id).status == "pending"  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "route"), TASK_ROUTES)
def test_an_image_batch_id_is_no_video_task(client: TestClient, api: Api, method: str, route: str) -> None:
    batch = api.services.tasks.create(api.project, {"images": []}, None, kind=TaskKind.IMAGE_BATCH)
    assert_error(client.request(method, route.format(id=batch.id)), 404, "not_found")
    assert api.services.tasks.get(api.project, batch.id).status == "pending"  # type: ignore[union-attr]


@pytest.mark.parametrize("task_id", ["vt_nope", "x" * 300, "vt_01HZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_an_unknown_task_is_a_404(client: TestClient, task_id: str) -> None:
    assert_error(client.get(f"/v1/video/tasks/{task_id}"), 404, "not_found")


def test_results_of_a_pending_task_say_its_status(client: TestClient, api: Api) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    error = assert_error(client.get(f"/v1/video/tasks/{task.id}/results"), 404, "task_not_succeeded")
    assert error["status"] == "pending"
    error = assert_error(client.get(f"/v1/video/tasks/{task.id}/annotated"), 404, "task_not_succeeded")
    assert error["status"] == "pending"


def test_a_task_without_an_annotated_video_says_how_to_get_one(client: TestClient, api: Api) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    claimed = None
    while claimed is None or claimed.id != task.id:  # the module's database also holds other tests' tasks
        claimed = api.services.tasks.claim_next("r", max_running=10**6, max_running_per_project=10**6)
        assert claimed is not None
    usage = {"processed_frames": 0, "processing_time_ms": 1}
    result = {"id": task.id, "object": "mm.pipeline.result", "model": None, "usage": usage, "tracks": []}
    assert api.services.tasks.finish(task.id, "r", status="succeeded", finish_reason="stop", usage=usage, result=result)
    response = client.get(f"/v1/video/tasks/{task.id}/annotated")
    assert_error(response, 404, "not_found")
    assert "output.annotated_video" in response.json()["error"]["message"]
    assert_error(client.get("/v1/video/tasks/vt_nope/annotated"), 404, "not_found")


@pytest.mark.parametrize(
    ("route", "include"), [("/v1/video/tasks/{id}", "bogus"), ("/v1/video/tasks/{id}/results", "bogus")]
)
def test_an_unknown_include_is_a_400(client: TestClient, api: Api, route: str, include: str) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    response = client.get(route.format(id=task.id), params={"include": include})
    assert_error(response, 400, "invalid_request", "include")


def test_include_request_echoes_the_stored_request(client: TestClient, api: Api) -> None:
    task = api.services.tasks.create(api.project, {"steps": [{"model": "detect"}]}, None)
    response = client.get(f"/v1/video/tasks/{task.id}", params={"include": "request"})
    assert response.status_code == 200 and response.json()["request"] == {"steps": [{"model": "detect"}]}
    assert "request" not in client.get(f"/v1/video/tasks/{task.id}").json()


@pytest.mark.parametrize("offset", ["99999999999999999999", "9223372036854775808", "-1", "ten"])
def test_a_stream_offset_beyond_int64_is_a_400(client: TestClient, api: Api, offset: str) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    response = client.get(f"/v1/video/tasks/{task.id}/stream", params={"offset": offset})
    assert_error(response, 400, "invalid_request", "offset")


@pytest.mark.parametrize("last_event_id", ["99999999999999999999", "9223372036854775808", "-5", "abc", "1e3"])
def test_a_bad_last_event_id_is_a_400(client: TestClient, api: Api, last_event_id: str) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    response = client.get(f"/v1/video/tasks/{task.id}/stream", headers={"Last-Event-ID": last_event_id})
    assert_error(response, 400, "invalid_request", "Last-Event-ID")


# --- a raw video body -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"steps": "segment"}, "steps[0].model"),
        ({"classes": "unicorn"}, "steps[0].parameters.classes"),
        ({"sampling": "every"}, "sampling"),
        ({"value": "0"}, "value"),
        ({"value": "nan"}, "value"),
        ({"max_frames": "0"}, "max_frames"),
        ({"max_frames": "99999999999999999999"}, "max_frames"),
    ],
)
def test_bad_options_of_a_raw_body_name_the_query_parameter(
    client: TestClient, api: Api, params: dict[str, str], field: str
) -> None:
    response = client.post(
        "/v1/video/process", params=params, content=b"\x00" * 64, headers={"content-type": "video/mp4"}
    )
    assert_error(response, 400, "invalid_request", field)
    assert api.stored() == (0, 0, 0, 0)


def test_an_empty_raw_body_is_a_400(client: TestClient, api: Api) -> None:
    response = client.post("/v1/video/process", content=b"", headers={"content-type": "video/mp4"})
    assert_error(response, 400, "invalid_request", "body")
    assert api.stored() == (0, 0, 0, 0)


# --- what is accepted: stored videos, our own presigned URLs, base64 ---------------------------------


def _presigned(client: TestClient, api: Api, project: str, path: str) -> str:
    api.services.objects_or_raise().put_bytes(project, path, b"not really a video")
    if project == api.project:
        response = client.post("/v1/storage/presign", json={"path": path})
    else:
        response = client.post("/v1/storage/presign", json={"path": path}, headers=api.headers(api.other_key))
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


def test_a_presigned_url_of_the_project_is_read_as_its_storage_path(client: TestClient, api: Api) -> None:
    url = _presigned(client, api, api.project, "clips/a.mp4")
    response = client.post("/v1/video/process", json=with_input(url=url))
    assert response.status_code == 202, response.text
    task = api.services.tasks.get(api.project, response.json()["id"])
    assert task is not None and task.request is not None
    assert task.request["input"][0]["url"] == "storage://clips/a.mp4"


def test_a_presigned_url_of_another_project_is_not_found(client: TestClient, api: Api) -> None:
    url = _presigned(client, api, api.other, "clips/theirs.mp4")
    response = client.post("/v1/video/process", json=with_input(url=url))
    assert_error(response, 400, "media_not_found", "input[0].url")
    assert api.task_count() == 0


def test_a_tampered_presigned_url_is_refused(client: TestClient, api: Api) -> None:
    url = _presigned(client, api, api.project, "clips/a.mp4")
    tampered = url.replace("clips/a.mp4", "clips/b.mp4")
    response = client.post("/v1/video/process", json=with_input(url=tampered))
    assert_error(response, 400, "url_not_allowed", "input[0].url")
    assert api.task_count() == 0


def test_a_base64_video_is_staged_and_deleted_with_its_task(client: TestClient, api: Api) -> None:
    body = {"input": [{"type": "video_base64", "data": base64.b64encode(b"\x00" * 100).decode()}], "steps": [DETECT]}
    response = client.post("/v1/video/process", json=body)
    assert response.status_code == 202, response.text
    assert api.task_count() == 1 and api.object_count() == 1
    assert client.delete(f"/v1/video/tasks/{response.json()['id']}").status_code == 204
    assert api.stored() == (0, 0, 0, 0)
