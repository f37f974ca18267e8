"""``/v1/keys``: create (secret once), masked listings, rotate, revoke, delete, expiry; admin only."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, assert_error


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/keys", json={"name": "ci", "scopes": ["read"], **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_shows_the_secret_once_and_listings_mask_it(client: TestClient, api: Api) -> None:
    created = _create(client, name="Production search key", scopes=["read", "search"], expires_in_days=90)
    secret = created["secret"]
    assert secret.startswith("vg_") and created["status"] == "active"
    assert (created["prefix"], created["last4"]) == (secret[:10], secret[-4:])
    assert created["scopes"] == ["read", "search"] and created["name"] == "Production search key"
    expires = dt.datetime.fromisoformat(created["expires_at"])
    assert abs((expires - dt.datetime.now(dt.UTC)) - dt.timedelta(days=90)) < dt.timedelta(minutes=1)
    listing = client.get("/v1/keys").json()
    assert listing["object"] == "list"
    mine = next(key for key in listing["data"] if key["id"] == created["id"])
    assert "secret" not in mine and secret not in str(listing)
    one = client.get(f"/v1/keys/{created['id']}").json()
    assert one == mine
    assert client.get("/v1/status", headers=_bearer(secret)).json()["project"] == api.project


def test_last_used_at_is_recorded(client: TestClient) -> None:
    created = _create(client)
    assert created["last_used_at"] is None
    assert client.get("/v1/status", headers=_bearer(created["secret"])).status_code == 200
    assert client.get(f"/v1/keys/{created['id']}").json()["last_used_at"] is not None


def test_rotation_invalidates_the_old_secret_at_once(client: TestClient) -> None:
    created = _create(client)
    rotated = client.post(f"/v1/keys/{created['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["id"] == created["id"] and new["secret"] != created["secret"]
    assert_error(client.get("/v1/status", headers=_bearer(created["secret"])), 401, "unauthorized")
    assert client.get("/v1/status", headers=_bearer(new["secret"])).status_code == 200
    assert client.get(f"/v1/keys/{created['id']}").json()["last4"] == new["secret"][-4:]


def test_revoke_soft_disables_and_delete_removes(client: TestClient) -> None:
    created = _create(client)
    revoked = client.post(f"/v1/keys/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    error = assert_error(client.get("/v1/status", headers=_bearer(created["secret"])), 401, "unauthorized")
    assert "revoked" in error["message"]
    assert client.post(f"/v1/keys/{created['id']}/revoke").json()["revoked_at"] == revoked.json()["revoked_at"]
    assert_error(client.post(f"/v1/keys/{created['id']}/rotate"), 409, "key_revoked", "key_id")
    assert client.delete(f"/v1/keys/{created['id']}").status_code == 204
    assert_error(client.get(f"/v1/keys/{created['id']}"), 404, "not_found", "key_id")
    assert_error(client.delete(f"/v1/keys/{created['id']}"), 404, "not_found", "key_id")


def test_expired_keys_are_401s_and_listed_as_expired(client: TestClient, api: Api) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    record, secret = api.services.keys.create(api.project, ("read",), "old", expires_at=past)
    error = assert_error(client.get("/v1/status", headers=_bearer(secret)), 401, "unauthorized")
    assert "expired" in error["message"]
    assert client.get(f"/v1/keys/{record.id}").json()["status"] == "expired"


def test_another_projects_keys_are_not_found(client: TestClient, api: Api) -> None:
    theirs, _ = api.services.keys.create(api.other, ("read",), "theirs")
    for method, path in [
        ("GET", f"/v1/keys/{theirs.id}"),
        ("POST", f"/v1/keys/{theirs.id}/rotate"),
        ("POST", f"/v1/keys/{theirs.id}/revoke"),
        ("DELETE", f"/v1/keys/{theirs.id}"),
    ]:
        assert_error(client.request(method, path), 404, "not_found", "key_id")
    assert theirs.id not in str(client.get("/v1/keys").json())
    assert api.services.keys.authenticate(_) is not None  # untouched


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["read"]}, "name"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "   ", "scopes": ["read"]}, "name"),
        ({"name": "a\x00b", "scopes": ["read"]}, "name"),
        ({"name": "x" * 201, "scopes": ["read"]}, "name"),
        ({"name": "\ud800", "scopes": ["read"]}, "name"),
        ({"name": 5, "scopes": ["read"]}, "name"),
        ({"name": "n"}, "scopes"),
        ({"name": "n", "scopes": []}, "scopes"),
        ({"name": "n", "scopes": ["owner"]}, "scopes[0]"),
        ({"name": "n", "scopes": "read"}, "scopes"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": -1}, "expires_in_days"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": 10**30}, "expires_in_days"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": 1.5}, "expires_in_days"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": True}, "expires_in_days"),
        ({"name": "n", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "n", "scopes": ["read"], "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "n", "scopes": ["read"], "expires_at": "9999-12-31T23:59:59-12:00"}, "expires_at"),
        ({"name": "n", "scopes": ["read"], "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "n", "scopes": ["read"], "secret": "vg_mine"}, "secret"),
    ],
)
def test_bad_create_bodies_are_400s_naming_the_field(
    client: TestClient, api: Api, body: dict[str, Any], field: str
) -> None:
    before = len(api.services.keys.list(api.project))
    sent = json.dumps(body)  # ASCII escapes, so a lone surrogate travels as JSON can carry it
    response = client.post("/v1/keys", content=sent, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request", field)
    assert len(api.services.keys.list(api.project)) == before


def test_an_expiry_at_a_given_time_is_kept(client: TestClient) -> None:
    created = _create(client, expires_at="2999-01-02T03:04:05+02:00")
    assert dt.datetime.fromisoformat(created["expires_at"]) == dt.datetime(2999, 1, 2, 1, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("scope", ["write", "read", "search"])
def test_key_management_needs_admin(client: TestClient, api: Api, scope: str) -> None:
    _, secret = api.services.keys.create(api.project, (scope,), scope)
    headers = _bearer(secret)
    error = assert_error(client.get("/v1/keys", headers=headers), 403, "insufficient_scope")
    assert error["required_scope"] == "admin"
    before = len(api.services.keys.list(api.project))
    response = client.post("/v1/keys", json={"name": "escalate", "scopes": ["admin"]}, headers=headers)
    assert_error(response, 403, "insufficient_scope")
    assert len(api.services.keys.list(api.project)) == before
