"""``/v1/webhooks`` and ``/v1/processing/events/stream`` in-process: CRUD with field-named 400s, the
catalogue, test events and deliveries, project isolation, and the events stream's live start,
filters and ``Last-Event-ID`` replay (under a real uvicorn: the stream never ends by itself)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contract.events import EventType
from tests.api.conftest import Api, ApiFactory, LiveServer, assert_error

URL = "https://hooks.example.com/visiongrid"


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={"url": URL, "events": ["task.succeeded"], **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def lax(make_api: ApiFactory) -> Api:
    """Private URLs allowed (the create-time SSRF check would resolve example.com otherwise)."""
    return make_api(allow_private_urls=True)


@pytest.fixture
def lax_client(lax: Api) -> TestClient:
    return TestClient(lax.app, headers=lax.headers(), raise_server_exceptions=False)


def test_crud_and_the_secret_shown_on_create_and_rotate_only(lax_client: TestClient) -> None:
    created = _create(lax_client, name="ops", metadata={"owner": "ops"})
    assert created["secret"].startswith("whsec_") and created["signed"] is True
    assert created["events"] == ["task.succeeded"] and created["metadata"] == {"owner": "ops"}
    one = lax_client.get(f"/v1/webhooks/{created['id']}").json()
    assert "secret" not in one and one["url"] == URL
    assert [w["id"] for w in lax_client.get("/v1/webhooks").json()["data"]] == [created["id"]]
    patched = lax_client.patch(f"/v1/webhooks/{created['id']}", json={"events": ["*"], "enabled": False})
    assert patched.status_code == 200 and patched.json()["events"] == ["*"] and patched.json()["enabled"] is False
    assert patched.json()["name"] == "ops"  # unsent fields unchanged
    rotated = lax_client.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()
    assert rotated["secret"] != created["secret"]
    assert lax_client.delete(f"/v1/webhooks/{created['id']}").status_code == 204
    assert_error(lax_client.get(f"/v1/webhooks/{created['id']}"), 404, "not_found", "webhook_id")


def test_own_secret_and_the_catalogue(lax_client: TestClient) -> None:
    assert _create(lax_client, secret="my-own-signing-secret")["secret"] == "my-own-signing-secret"
    names = [item["name"] for item in lax_client.get("/v1/webhooks/events").json()["data"]]
    assert names == [event.value for event in EventType]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["task.succeeded"]}, "url"),
        ({"url": "ftp://x.example/a", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@x.example/a", "events": ["*"]}, "url"),
        ({"url": "https://", "events": ["*"]}, "url"),
        ({"url": "https://x.example:99999/", "events": ["*"]}, "url"),
        ({"url": "https://x.example/" + "a" * 3000, "events": ["*"]}, "url"),
        ({"url": URL}, "events"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["task.exploded"]}, "events[0]"),
        ({"url": URL, "events": ["*", "*"]}, "events"),
        ({"url": URL, "events": ["*"], "secret": "short"}, "secret"),
        ({"url": URL, "events": ["*"], "secret": "with spaces in it!!"}, "secret"),
        ({"url": URL, "events": ["*"], "enabled": "yes"}, "enabled"),
        ({"url": URL, "events": ["*"], "metadata": {"a": {"nested": 1}}}, "metadata.a"),
        ({"url": URL, "events": ["*"], "bogus": 1}, "bogus"),
        ({"url": "https://x.example/\ud800", "events": ["*"]}, "url"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(lax_client: TestClient, body: dict[str, Any], field: str) -> None:
    response = lax_client.post("/v1/webhooks", content=json.dumps(body), headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request", field)
    assert lax_client.get("/v1/webhooks").json()["data"] == []


def test_a_private_address_is_refused_at_creation(client: TestClient) -> None:
    response = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:8080/x", "events": ["*"]})
    assert_error(response, 400, "url_not_allowed", "url")
    body = {
        "input": [{"type": "video_base64", "data": "AAAA"}],
        "steps": [{"model": "detect"}],
        "webhook": {"url": "http://10.0.0.1/x"},
    }
    assert_error(client.post("/v1/video/process", json=body), 400, "url_not_allowed", "webhook.url")


def test_another_projects_webhook_is_not_found(lax: Api, lax_client: TestClient) -> None:
    created = _create(lax_client)
    other = TestClient(lax.app, headers=lax.headers(lax.other_key), raise_server_exceptions=False)
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
        ("POST", "/deliveries/whd_x/retry"),
    ]:
        response = other.request(method, f"/v1/webhooks/{created['id']}{path}", json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    assert other.get("/v1/webhooks").json()["data"] == []


def test_a_test_event_queues_one_delivery_for_that_webhook_only(lax: Api, lax_client: TestClient) -> None:
    first, second = _create(lax_client, events=["*"]), _create(lax_client, events=["*"])
    response = lax_client.post(f"/v1/webhooks/{first['id']}/test")
    assert response.status_code == 202 and response.headers["Location"].endswith("/deliveries")
    deliveries = lax_client.get(f"/v1/webhooks/{first['id']}/deliveries").json()["data"]
    assert [d["event_type"] for d in deliveries] == ["webhook.test"] and deliveries[0]["status"] == "pending"
    assert deliveries[0]["id"] == response.json()["delivery_id"]
    assert lax_client.get(f"/v1/webhooks/{second['id']}/deliveries").json()["data"] == []
    retried = lax_client.post(f"/v1/webhooks/{first['id']}/deliveries/{deliveries[0]['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    lax_client.patch(f"/v1/webhooks/{first['id']}", json={"enabled": False})
    assert_error(lax_client.post(f"/v1/webhooks/{first['id']}/test"), 409, "webhook_disabled")


def test_null_for_a_required_field_in_a_patch_is_a_400(lax_client: TestClient) -> None:
    created = _create(lax_client)
    assert_error(lax_client.patch(f"/v1/webhooks/{created['id']}", json={"url": None}), 400, "invalid_request", "url")


# --- the lifecycle events stream --------------------------------------------------------------------


def _events(
    server: LiveServer, key: str, count: int, headers: dict[str, str] | None = None, **params: str
) -> list[dict[str, Any]]:
    """The first ``count`` events of the stream (then the connection is closed)."""
    got: list[dict[str, Any]] = []
    url = f"http://127.0.0.1:{server.port}/v1/processing/events/stream"
    with httpx.stream(
        "GET", url, params=params, headers={"Authorization": f"Bearer {key}", **(headers or {})}, timeout=10
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["event_id"] == event_id
                got.append(event)
                if len(got) == count:
                    break
    return got


def test_the_stream_replays_from_last_event_id_with_filters(
    make_api: ApiFactory, live_server: Callable[[FastAPI], LiveServer]
) -> None:
    api = make_api(events_poll_interval_s=0.02)
    log = api.services.events_or_raise()
    ids = [log.emit(api.project, EventType.UPLOAD_FINALIZED, {"n": n}, task_id=f"vt_{n % 2}") for n in range(4)]
    log.emit(api.other, EventType.UPLOAD_FINALIZED, {"n": "theirs"})
    server = live_server(api.app)
    replayed = _events(server, api.key, 3, headers={"Last-Event-ID": str(ids[0])})
    assert [e["event_id"] for e in replayed] == ids[1:]  # after the id given, oldest first, not another project's
    assert {e["project"] for e in replayed} == {api.project}
    only = _events(server, api.key, 2, headers={"Last-Event-ID": "0"}, task_id="vt_1")
    assert [e["payload"]["n"] for e in only] == [1, 3]
    typed = _events(server, api.key, 1, headers={"Last-Event-ID": "0"}, event_types="webhook.test,upload.finalized")
    assert typed[0]["event_type"] == "upload.finalized"


def test_without_last_event_id_the_stream_starts_live(
    make_api: ApiFactory, live_server: Callable[[FastAPI], LiveServer]
) -> None:
    api = make_api(events_poll_interval_s=0.02, sse_heartbeat_interval_s=0.1)
    log = api.services.events_or_raise()
    log.emit(api.project, EventType.UPLOAD_FINALIZED, {"n": "old"})
    server = live_server(api.app)
    url = f"http://127.0.0.1:{server.port}/v1/processing/events/stream"
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {api.key}"}, timeout=10) as response:
        lines = response.iter_lines()
        assert next(lines).startswith(":")  # a keep-alive: the stream is open and past its starting point
        log.emit(api.project, EventType.UPLOAD_FINALIZED, {"n": "new"})
        data = next(line for line in lines if line.startswith("data: "))
    assert json.loads(data[6:])["payload"] == {"n": "new"}


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"event_types": "task.bogus"}, {}, "event_types[0]"),
        ({"event_types": "task.started,nope"}, {}, "event_types[1]"),
        ({}, {"Last-Event-ID": "-1"}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "99999999999999999999"}, "Last-Event-ID"),
        ({"task_id": "x" * 65}, {}, "task_id"),
    ],
)
def test_bad_stream_parameters_are_400s(
    client: TestClient, params: dict[str, str], headers: dict[str, str], field: str
) -> None:
    response = client.get("/v1/processing/events/stream", params=params, headers=headers)
    assert_error(response, 400, "invalid_request", field)
