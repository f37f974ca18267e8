"""KeyStore: secrets shown once, stored hashed, revocation, per-project isolation."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.keys import KeyStore


def test_create_returns_secret_and_stores_only_its_hash(keys: KeyStore, engine: Engine) -> None:
    record, secret = keys.create("p", scopes=("tasks:read", "tasks:write"))
    assert secret.startswith("vg_") and len(secret) >= 40
    assert record.id.startswith("key_") and record.project == "p"
    assert record.prefix == secret[:10]
    assert record.scopes == ("tasks:read", "tasks:write")
    assert record.revoked_at is None and record.created_at.tzinfo is not None
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())


def test_secrets_are_unique(keys: KeyStore) -> None:
    secrets_ = {keys.create("p")[1] for _ in range(20)}
    assert len(secrets_) == 20


def test_authenticate(keys: KeyStore) -> None:
    record, secret = keys.create("p")
    assert keys.authenticate(secret) == record
    assert record.scopes == ("*",)
    assert keys.authenticate(secret + "x") is None
    assert keys.authenticate(secret[:-1]) is None
    assert keys.authenticate("") is None
    assert keys.authenticate("vg_" + "a" * 10_000) is None
    assert keys.authenticate(hashlib.sha256(secret.encode()).hexdigest()) is None  # the hash is not a secret


def test_revoked_keys_fail(keys: KeyStore) -> None:
    record, secret = keys.create("p")
    other, other_secret = keys.create("p")
    assert keys.revoke("p", record.id)
    assert keys.authenticate(secret) is None
    assert keys.authenticate(other_secret) == other
    revoked = next(k for k in keys.list("p") if k.id == record.id)
    assert revoked.revoked_at is not None
    assert keys.revoke("p", record.id)  # idempotent
    assert next(k for k in keys.list("p") if k.id == record.id).revoked_at == revoked.revoked_at


def test_projects_are_isolated(keys: KeyStore) -> None:
    p1, _ = keys.create("p")
    p2, _ = keys.create("p")
    q1, q_secret = keys.create("q")
    assert [k.id for k in keys.list("p")] == [p1.id, p2.id]
    assert [k.id for k in keys.list("q")] == [q1.id]
    assert keys.list("nobody") == []
    assert not keys.revoke("p", q1.id)  # another project's key
    assert not keys.revoke("p", "key_missing")
    assert keys.authenticate(q_secret) == q1


def test_an_unencodable_secret_is_unknown(keys: KeyStore) -> None:
    keys.create("p")
    assert keys.authenticate("vg_\ud800") is None
