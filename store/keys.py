"""API keys: the secret is shown once (at creation or rotation) and only its SHA-256 is stored.

A leaked database therefore leaks no usable key. Secrets are 256 random bits, so a plain (unsalted,
fast) hash is enough: there is nothing to brute-force. The lookup is by hash (indexed, unique) and the
final comparison uses ``hmac.compare_digest`` so its timing says nothing about how much of a hash matched.

``last_used_at`` is written at most once per :data:`LAST_USED_RESOLUTION_S` per key: a write per
request would turn every GET into a database write (and serialise SQLite's writers).
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from ulid import ULID

from contract.filters import text_problem
from store.db import write_transaction
from store.records import ApiKeyRecord
from store.tables import ApiKey, utcnow

SECRET_PREFIX: Final[str] = "vg_"
PREFIX_CHARS: Final[int] = 10
LAST_USED_RESOLUTION_S: Final[float] = 60.0
_MAX_SECRET_CHARS: Final[int] = 256  # anything longer is not one of ours; do not hash megabytes


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a secret: what is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    """ "vg_" + 43 url-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _secret_columns(secret: str) -> dict[str, str]:
    return {"key_hash": hash_secret(secret), "prefix": secret[:PREFIX_CHARS], "last4": secret[-4:]}


def _record(row: Row[Any]) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        id=m["id"],
        project=m["project"],
        prefix=m["prefix"],
        scopes=tuple(m["scopes"]),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        name=m["name"],
        last4=m["last4"],
        expires_at=m["expires_at"],
        last_used_at=m["last_used_at"],
    )


class KeyStore:
    """Keys of every project. Holds only the engine; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        project: str,
        scopes: tuple[str, ...] = ("admin",),
        name: str = "key",
        expires_at: dt.datetime | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """A new key and its secret. The secret is never retrievable again."""
        secret = _new_secret()
        key_id = f"key_{ULID()}"
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(ApiKey).values(
                    id=key_id,
                    project=project,
                    scopes=builtins.list(scopes),
                    created_at=utcnow(),
                    revoked_at=None,
                    name=name,
                    expires_at=expires_at,
                    last_used_at=None,
                    **_secret_columns(secret),
                )
            )
            row = conn.execute(sa.select(ApiKey).where(ApiKey.id == key_id)).one()
        return _record(row), secret

    def lookup(self, secret: str) -> ApiKeyRecord | None:
        """The key a presented secret belongs to, revoked or expired ones included (None: unknown)."""
        if not secret or len(secret) > _MAX_SECRET_CHARS or text_problem(secret) is not None:
            return None  # not one of ours (and a lone surrogate could not even be hashed)
        presented = hash_secret(secret)
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(ApiKey).where(ApiKey.key_hash == presented)).first()
        if row is None or not hmac.compare_digest(row._mapping["key_hash"], presented):
            return None
        return _record(row)

    def authenticate(self, secret: str) -> ApiKeyRecord | None:
        """The usable key a secret belongs to (None: unknown, malformed, revoked or expired)."""
        record = self.lookup(secret)
        return record if record is not None and record.usable_at(utcnow()) else None

    def touch(self, record: ApiKeyRecord) -> None:
        """Record a use of ``record`` unless one was recorded within the last minute."""
        now = utcnow()
        if record.last_used_at is not None and (now - record.last_used_at).total_seconds() < LAST_USED_RESOLUTION_S:
            return
        cutoff = now - dt.timedelta(seconds=LAST_USED_RESOLUTION_S)
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.update(ApiKey)
                .where(ApiKey.id == record.id, sa.or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < cutoff))
                .values(last_used_at=now)
            )

    def get(self, project: str, key_id: str) -> ApiKeyRecord | None:
        """The project's key ``key_id`` (None: no such key in this project)."""
        with self._engine.connect() as conn:
            row = _row(conn, project, key_id)
        return None if row is None else _record(row)

    def list(self, project: str) -> builtins.list[ApiKeyRecord]:
        """The project's keys, revoked ones included, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(ApiKey).where(ApiKey.project == project).order_by(ApiKey.created_at, ApiKey.id)
            ).all()
        return [_record(row) for row in rows]

    def revoke(self, project: str, key_id: str) -> ApiKeyRecord | None:
        """Revoke the project's key (None: no such key in this project).

        Idempotent: revoking an already revoked key keeps the first revocation time.
        """
        with write_transaction(self._engine) as conn:
            if _row(conn, project, key_id) is None:
                return None
            conn.execute(
                sa.update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.project == project, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = _row(conn, project, key_id)
        return None if row is None else _record(row)

    def rotate(self, project: str, key_id: str) -> tuple[ApiKeyRecord, str] | None:
        """A new secret for the key (same id, name, scopes, expiry); the old secret stops working at once.

        None: no such key in this project, or it is revoked (a revoked key stays revoked)."""
        secret = _new_secret()
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                sa.update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.project == project, ApiKey.revoked_at.is_(None))
                .values(**_secret_columns(secret), last_used_at=None)
            ).rowcount
            row = _row(conn, project, key_id) if changed else None
        return None if row is None else (_record(row), secret)

    def delete(self, project: str, key_id: str) -> bool:
        """Remove the project's key for good; False when there was no such key in this project."""
        with write_transaction(self._engine) as conn:
            removed = conn.execute(sa.delete(ApiKey).where(ApiKey.id == key_id, ApiKey.project == project)).rowcount
        return bool(removed)


def _row(conn: Connection, project: str, key_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.project == project)).first()
