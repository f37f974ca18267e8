"""Idempotency-Key over the real app: an identical replay (status, body, Location), 422 on another body,
409 while the first is in flight, durable across a new app and engine, expiry, release after a 5xx."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from api.idempotency import fingerprint
from store.idempotency import IdempotencyStore
from store.platform_tables import IdempotencyRecord
from tests.api.conftest import Api, ApiFactory, assert_error
from tests.api.test_rate_limit import _client
from tests.api.test_vision_routes import png

BATCH = "/v1/vision/batch"


def _body() -> dict[str, object]:
    return {"images": [{"data_base64": png(), "id": "a"}]}


def test_a_retry_replays_the_first_response(api: Api) -> None:
    body = _body()
    with _client(api) as client:
        first = client.post(BATCH, json=body, headers={"Idempotency-Key": "k-1"})
        # The same JSON value written differently is the same body.
        raw = json.dumps(body, indent=2, sort_keys=True)
        again = client.post(BATCH, content=raw, headers={"Idempotency-Key": "k-1", "content-type": "application/json"})
    assert first.status_code == 202, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.task_count() == 1


def test_another_body_with_the_same_key_is_a_422(api: Api) -> None:
    with _client(api) as client:
        assert client.post(BATCH, json=_body(), headers={"Idempotency-Key": "k"}).status_code == 202
        other = {"images": [{"data_base64": png(), "id": "b"}]}
        assert_error(client.post(BATCH, json=other, headers={"Idempotency-Key": "k"}), 422, "idempotency_key_reused")
        # Another route or project has its own keys; no key means no idempotency.
        assert (
            client.post(BATCH, json=_body(), headers={**api.headers(api.other_key), "Idempotency-Key": "k"}).status_code
            == 202
        )
        assert client.post(BATCH, json=_body()).status_code == 202
    assert api.task_count() == 2


def test_a_first_attempt_in_flight_is_a_409(api: Api) -> None:
    body = _body()
    content = json.dumps(body).encode()
    IdempotencyStore(api.engine).claim(
        api.project, BATCH, "busy", fingerprint(content, "application/json"), api.services.settings.idempotency_ttl_s
    )
    with _client(api) as client:
        response = client.post(BATCH, json=body, headers={"Idempotency-Key": "busy"})
    assert_error(response, 409, "idempotency_in_progress", "Idempotency-Key")
    assert api.task_count() == 0


def test_a_replay_survives_a_new_app_and_engine(api: Api) -> None:
    body = _body()
    with _client(api) as client:
        first = client.post(BATCH, json=body, headers={"Idempotency-Key": "durable"})
    with _client(api, fresh_engine=True) as restarted:
        again = restarted.post(BATCH, json=body, headers={"Idempotency-Key": "durable"})
    assert (again.status_code, again.content, again.headers["Location"]) == (
        first.status_code,
        first.content,
        first.headers["Location"],
    )
    assert api.task_count() == 1


def test_a_key_expires_after_the_ttl(make_api: ApiFactory) -> None:
    api = make_api(idempotency_ttl_s=0.5)
    with _client(api) as client:
        assert client.post(BATCH, json=_body(), headers={"Idempotency-Key": "short"}).status_code == 202
        time.sleep(0.6)
        other = {"images": [{"data_base64": png(), "id": "b"}]}
        again = client.post(BATCH, json=other, headers={"Idempotency-Key": "short"})
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    assert api.task_count() == 2


def test_a_5xx_releases_the_key(api: Api) -> None:
    body = {"name": "c1", "model": "text"}
    with _client(api) as client:
        first = client.post("/v1/vectors/collections", json=body, headers={"Idempotency-Key": "retry-me"})
        again = client.post("/v1/vectors/collections", json=body, headers={"Idempotency-Key": "retry-me"})
    assert first.status_code == again.status_code == 503, first.text
    assert "Idempotent-Replayed" not in again.headers
    with api.engine.connect() as conn:
        mine = sa.select(sa.func.count()).where(IdempotencyRecord.project == api.project)
        assert conn.execute(mine).scalar_one() == 0  # the failed attempts left no record behind


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_a_malformed_key_is_a_400(api: Api, key: str) -> None:
    with _client(api) as client:
        response = client.post(BATCH, json=_body(), headers={"Idempotency-Key": key})
    assert_error(response, 400, "invalid_request", "Idempotency-Key")
    assert api.task_count() == 0


def test_replays_count_against_the_rate_limit(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_vision=2)
    with _client(api) as client:
        statuses = [client.post(BATCH, json=_body(), headers={"Idempotency-Key": "r"}).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
