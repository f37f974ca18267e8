"""Webhooks of a project: subscriptions (CRUD, secret rotation) and what the API shows of deliveries.

A project-wide webhook subscribes to event names (``*`` for all); a per-request webhook
(``webhook: {url, secret}`` on a task) belongs to one task and gets its terminal event. Secrets are
generated here (``whsec_`` + 256 random bits) unless the client brings its own, and are stored as
given because they must sign every delivery; after rotation only the new secret signs.
"""

from __future__ import annotations

import builtins
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from ulid import ULID

from store.db import write_transaction
from store.event_tables import Webhook, WebhookAttempt, WebhookDelivery

__all__ = ["AttemptRecord", "DeliveryRecord", "WebhookRecord", "WebhookStore", "insert_task_webhook", "new_secret"]

SECRET_PREFIX: Final[str] = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    project: str
    name: str | None
    url: str
    secret: str | None
    events: tuple[str, ...]
    enabled: bool
    task_id: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class AttemptRecord:
    number: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    webhook_id: str
    event_id: int
    event_type: str
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    created_at: float
    finished_at: float | None
    attempt_log: tuple[AttemptRecord, ...] = field(default=())


def _webhook(row: Row[Any]) -> WebhookRecord:
    m = row._mapping
    return WebhookRecord(
        id=m["id"],
        project=m["project"],
        name=m["name"],
        url=m["url"],
        secret=m["secret"],
        events=tuple(m["events"]),
        enabled=bool(m["enabled"]),
        task_id=m["task_id"],
        metadata=dict(m["metadata"] or {}),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _delivery(row: Row[Any], attempts: tuple[AttemptRecord, ...] = ()) -> DeliveryRecord:
    m = row._mapping
    return DeliveryRecord(
        id=m["id"],
        webhook_id=m["webhook_id"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        status=m["status"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"] if m["status"] == "pending" else None,
        last_status_code=m["last_status_code"],
        last_error=m["last_error"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        attempt_log=attempts,
    )


def insert_task_webhook(conn: Connection, project: str, task_id: str, url: str, secret: str | None) -> str:
    """The per-request webhook of a task, inserted in the task's own create transaction (so no event of
    the task can precede it); its id."""
    now = time.time()
    webhook_id = f"wh_{ULID()}"
    conn.execute(
        sa.insert(Webhook).values(
            id=webhook_id,
            project=project,
            name=None,
            url=url,
            secret=secret,
            events=[],
            enabled=True,
            task_id=task_id,
            metadata={},
            created_at=now,
            updated_at=now,
        )
    )
    return webhook_id


class WebhookStore:
    """Webhooks of every project; each call acts on the caller's project only."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        project: str,
        *,
        url: str,
        events: builtins.list[str],
        name: str | None = None,
        secret: str | None = None,
        enabled: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookRecord:
        now = time.time()
        webhook_id = f"wh_{ULID()}"
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(Webhook).values(
                    id=webhook_id,
                    project=project,
                    name=name,
                    url=url,
                    secret=secret or new_secret(),
                    events=builtins.list(events),
                    enabled=enabled,
                    task_id=None,
                    metadata=metadata or {},
                    created_at=now,
                    updated_at=now,
                )
            )
            row = _row(conn, project, webhook_id)
        assert row is not None
        return _webhook(row)

    def count(self, project: str) -> int:
        """The project's own webhooks (per-request ones not counted)."""
        query = sa.select(sa.func.count()).where(Webhook.project == project, Webhook.task_id.is_(None))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def list(self, project: str) -> builtins.list[WebhookRecord]:
        """The project's webhooks, oldest first (per-request webhooks of tasks are not listed)."""
        query = sa.select(Webhook).where(Webhook.project == project, Webhook.task_id.is_(None))
        with self._engine.connect() as conn:
            return [_webhook(row) for row in conn.execute(query.order_by(Webhook.created_at, Webhook.id))]

    def get(self, project: str, webhook_id: str) -> WebhookRecord | None:
        with self._engine.connect() as conn:
            row = _row(conn, project, webhook_id)
        return None if row is None else _webhook(row)

    def update(self, project: str, webhook_id: str, changes: dict[str, Any]) -> WebhookRecord | None:
        """Apply ``changes`` (url, events, name, enabled, metadata); None when there is no such webhook."""
        allowed = {key: value for key, value in changes.items() if key in {"url", "events", "name", "enabled"}}
        if "metadata" in changes:
            allowed["meta"] = changes["metadata"]
        with write_transaction(self._engine) as conn:
            updated = conn.execute(
                sa.update(Webhook)
                .where(Webhook.id == webhook_id, Webhook.project == project)
                .values(**allowed, updated_at=time.time())
            ).rowcount
            row = _row(conn, project, webhook_id) if updated else None
        return None if row is None else _webhook(row)

    def rotate_secret(self, project: str, webhook_id: str) -> WebhookRecord | None:
        """A new signing secret; every attempt from now on (retries of old deliveries too) signs with it."""
        return self.update_secret(project, webhook_id, new_secret())

    def update_secret(self, project: str, webhook_id: str, secret: str) -> WebhookRecord | None:
        with write_transaction(self._engine) as conn:
            updated = conn.execute(
                sa.update(Webhook)
                .where(Webhook.id == webhook_id, Webhook.project == project)
                .values(secret=secret, updated_at=time.time())
            ).rowcount
            row = _row(conn, project, webhook_id) if updated else None
        return None if row is None else _webhook(row)

    def delete(self, project: str, webhook_id: str) -> bool:
        """Remove the webhook with its deliveries and their attempts."""
        with write_transaction(self._engine) as conn:
            if _row(conn, project, webhook_id) is None:
                return False
            delivery_ids = sa.select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook_id)
            conn.execute(sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
            conn.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
            conn.execute(sa.delete(Webhook).where(Webhook.id == webhook_id))
        return True

    def deliveries(self, project: str, webhook_id: str, limit: int = 50) -> builtins.list[DeliveryRecord]:
        """The webhook's deliveries, newest first, each with every attempt made."""
        query = (
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.project == project)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            ids = [row._mapping["id"] for row in rows]
            attempts = conn.execute(
                sa.select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(ids))
                .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
            ).all()
        by_delivery: dict[str, builtins.list[AttemptRecord]] = {}
        for attempt in attempts:
            m = attempt._mapping
            record = AttemptRecord(m["number"], m["at"], m["status_code"], m["error"], m["duration_ms"])
            by_delivery.setdefault(m["delivery_id"], []).append(record)
        return [_delivery(row, tuple(by_delivery.get(row._mapping["id"], []))) for row in rows]

    def retry(self, project: str, webhook_id: str, delivery_id: str) -> DeliveryRecord | None:
        """Send a delivery again now with a fresh attempt budget (a delivered one is sent once more too:
        the receiver asked). None: no such delivery of this webhook in this project."""
        with write_transaction(self._engine) as conn:
            where = (
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.project == project,
            )
            changed = conn.execute(
                sa.update(WebhookDelivery)
                .where(*where)
                .values(
                    status="pending",
                    next_attempt_at=time.time(),
                    leased_until=None,
                    finished_at=None,
                    retry_from=WebhookDelivery.attempts,
                )
            ).rowcount
            row = conn.execute(sa.select(WebhookDelivery).where(*where)).first() if changed else None
        return None if row is None else _delivery(row)


def _row(conn: Connection, project: str, webhook_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(Webhook).where(Webhook.id == webhook_id, Webhook.project == project)).first()
