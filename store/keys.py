"""API keys: the secret is shown once at creation and only its SHA-256 is stored.

A leaked database therefore leaks no usable key. Secrets are 256 random bits, so a plain (unsalted,
fast) hash is enough: there is nothing to brute-force. The lookup is by hash (indexed, unique) and the
final comparison uses ``hmac.compare_digest`` so its timing says nothing about how much of a hash matched.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from ulid import ULID

from contract.filters import text_problem
from store.db import write_transaction
from store.records import ApiKeyRecord
from store.tables import ApiKey, utcnow

SECRET_PREFIX: Final[str] = "vg_"
PREFIX_CHARS: Final[int] = 10
_MAX_SECRET_CHARS: Final[int] = 256  # anything longer is not one of ours; do not hash megabytes


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a secret: what is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: Row[Any]) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        id=m["id"],
        project=m["project"],
        prefix=m["prefix"],
        scopes=tuple(m["scopes"]),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


class KeyStore:
    """Keys of every project. Holds only the engine; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, project: str, scopes: tuple[str, ...] = ("*",)) -> tuple[ApiKeyRecord, str]:
        """A new key and its secret ("vg_" + 43 url-safe chars). The secret is never retrievable again."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key_id = f"key_{ULID()}"
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(ApiKey).values(
                    id=key_id,
                    project=project,
                    key_hash=hash_secret(secret),
                    prefix=secret[:PREFIX_CHARS],
                    scopes=builtins.list(scopes),
                    created_at=utcnow(),
                    revoked_at=None,
                )
            )
            row = conn.execute(sa.select(ApiKey).where(ApiKey.id == key_id)).one()
        return _record(row), secret

    def authenticate(self, secret: str) -> ApiKeyRecord | None:
        """The key a presented secret belongs to, or None (unknown, malformed or revoked)."""
        if not secret or len(secret) > _MAX_SECRET_CHARS or text_problem(secret) is not None:
            return None  # not one of ours (and a lone surrogate could not even be hashed)
        presented = hash_secret(secret)
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(ApiKey).where(ApiKey.key_hash == presented)).first()
        if row is None or not hmac.compare_digest(row._mapping["key_hash"], presented):
            return None
        record = _record(row)
        return None if record.revoked_at is not None else record

    def list(self, project: str) -> builtins.list[ApiKeyRecord]:
        """The project's keys, revoked ones included, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(ApiKey).where(ApiKey.project == project).order_by(ApiKey.created_at, ApiKey.id)
            ).all()
        return [_record(row) for row in rows]

    def revoke(self, project: str, key_id: str) -> bool:
        """Revoke the project's key; False when no such key exists in this project.

        Idempotent: revoking an already revoked key returns True and keeps the first revocation time.
        """
        with write_transaction(self._engine) as conn:
            exists = conn.execute(sa.select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.project == project)).first()
            if exists is None:
                return False
            conn.execute(
                sa.update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.project == project, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return True
