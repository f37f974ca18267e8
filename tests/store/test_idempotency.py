"""Idempotency-Key records: claim, store, replay, refuse, release, expire — and durable across engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from store.db import open_engine
from store.idempotency import IdempotencyStore, StoredResponse

RESPONSE = StoredResponse(202, [("content-type", "application/json"), ("location", "/v1/x/1")], b'{"id":"1"}')


@pytest.fixture
def keys_store(engine: Engine) -> IdempotencyStore:
    return IdempotencyStore(engine, lease_s=5.0)


def test_a_completed_key_replays_its_response(keys_store: IdempotencyStore) -> None:
    assert keys_store.claim("p", "/r", "k", "f", 60.0, now=1.0).outcome == "proceed"
    assert keys_store.claim("p", "/r", "k", "f", 60.0, now=2.0).outcome == "in_progress"
    keys_store.complete("p", "/r", "k", RESPONSE)
    claim = keys_store.claim("p", "/r", "k", "f", 60.0, now=3.0)
    assert claim.outcome == "replay" and claim.response == RESPONSE


def test_another_body_is_refused_even_in_flight(keys_store: IdempotencyStore) -> None:
    keys_store.claim("p", "/r", "k", "f", 60.0, now=1.0)
    assert keys_store.claim("p", "/r", "k", "other", 60.0, now=2.0).outcome == "reused"
    keys_store.complete("p", "/r", "k", RESPONSE)
    assert keys_store.claim("p", "/r", "k", "other", 60.0, now=3.0).outcome == "reused"


def test_keys_are_scoped_per_project_and_route(keys_store: IdempotencyStore) -> None:
    keys_store.claim("p", "/r", "k", "f", 60.0, now=1.0)
    assert keys_store.claim("q", "/r", "k", "f", 60.0, now=1.0).outcome == "proceed"
    assert keys_store.claim("p", "/s", "k", "f", 60.0, now=1.0).outcome == "proceed"


def test_release_expiry_and_an_abandoned_claim(keys_store: IdempotencyStore) -> None:
    keys_store.claim("p", "/r", "k", "f", 60.0, now=1.0)
    keys_store.release("p", "/r", "k")
    assert keys_store.claim("p", "/r", "k", "other", 60.0, now=2.0).outcome == "proceed"
    assert keys_store.claim("p", "/r", "k", "other", 60.0, now=7.5).outcome == "proceed"  # lease (5 s) over
    keys_store.complete("p", "/r", "k", RESPONSE)
    assert keys_store.claim("p", "/r", "k", "f", 60.0, now=67.0).outcome == "reused"
    assert keys_store.claim("p", "/r", "k", "f", 60.0, now=67.5).outcome == "proceed"  # ttl (60 s) over


def test_a_stored_response_survives_a_new_engine(db_url: str) -> None:
    IdempotencyStore(open_engine(db_url)).claim("p", "/r", "k", "f", 60.0)
    IdempotencyStore(open_engine(db_url)).complete("p", "/r", "k", RESPONSE)
    path = Path(db_url.removeprefix("sqlite:///"))
    claim = IdempotencyStore(open_engine(f"sqlite:///{path.parent}/./{path.name}")).claim("p", "/r", "k", "f", 60.0)
    assert claim.response == RESPONSE
