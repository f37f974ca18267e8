"""KeyStore: secrets shown once, stored hashed, revocation, per-project isolation."""

from __future__ import annotations

import datetime as dt
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
    assert record.scopes == ("admin",)  # a new key can do everything unless told otherwise
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


def test_names_last4_and_expiry_are_kept(keys: KeyStore) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    record, secret = keys.create("p", ("read",), name="ci", expires_at=expires)
    assert (record.name, record.last4, record.expires_at) == ("ci", secret[-4:], expires)
    assert keys.get("p", record.id) == record
    assert keys.get("q", record.id) is None  # another project's key is not found


def test_an_expired_key_no_longer_authenticates_but_is_still_looked_up(keys: KeyStore) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    record, secret = keys.create("p", expires_at=past)
    assert keys.authenticate(secret) is None
    assert keys.lookup(secret) == record  # so the API can say "expired" rather than "invalid"


def test_rotate_replaces_the_secret_at_once_and_keeps_the_key(keys: KeyStore) -> None:
    record, old = keys.create("p", ("write",), name="svc")
    rotated = keys.rotate("p", record.id)
    assert rotated is not None
    new_record, new = rotated
    assert new != old and keys.authenticate(old) is None
    assert keys.authenticate(new) == new_record
    assert (new_record.id, new_record.name, new_record.scopes) == (record.id, "svc", ("write",))
    assert (new_record.prefix, new_record.last4) == (new[:10], new[-4:])
    assert keys.rotate("q", record.id) is None  # another project's
    keys.revoke("p", record.id)
    assert keys.rotate("p", record.id) is None  # a revoked key stays revoked
    assert keys.authenticate(new) is None


def test_delete_removes_the_key_of_its_project_only(keys: KeyStore) -> None:
    record, secret = keys.create("p")
    assert not keys.delete("q", record.id)
    assert keys.authenticate(secret) == record
    assert keys.delete("p", record.id)
    assert keys.authenticate(secret) is None and keys.get("p", record.id) is None
    assert not keys.delete("p", record.id)


def test_touch_writes_last_used_at_at_most_once_a_minute(keys: KeyStore) -> None:
    record, _ = keys.create("p")
    keys.touch(record)
    first = keys.get("p", record.id)
    assert first is not None and first.last_used_at is not None
    keys.touch(first)
    again = keys.get("p", record.id)
    assert again is not None and again.last_used_at == first.last_used_at
    keys.touch(record)  # a stale record (last_used_at None) still cannot write twice within the minute
    assert keys.get("p", record.id) == again
