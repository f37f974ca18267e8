"""Tables of the lifecycle event log and webhooks, on the same ``Base`` as the rest (migration 0008).

* ``events``: the durable, ordered log of a project's task, batch, upload, collection and webhook
  events; its integer id is the SSE ``id`` of ``/v1/processing/events/stream`` (``Last-Event-ID``).
* ``webhooks``: subscriptions — project-wide ones (``task_id`` NULL) and the per-request webhook of
  one task (``task_id`` set, its terminal event only). The secret is stored as given: it must sign.
* ``webhook_deliveries``: one event to one webhook, its body frozen at fan-out (the bytes signed and
  sent on every attempt), its retry state and lease; ``webhook_attempts``: every attempt made.

Times are epoch seconds (floats), compared against each process's ``time.time()``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from store.tables import Base

__all__ = ["Event", "Webhook", "WebhookAttempt", "WebhookDelivery"]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_project_id", "project", "id"), sa.Index("ix_events_created_at", "created_at"))

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(sa.String(64))
    task_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(sa.Float)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "wh_" + ULID
    project: Mapped[str] = mapped_column(sa.String(128), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    secret: Mapped[str | None] = mapped_column(sa.String(256), nullable=True)  # None: deliveries unsigned
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    task_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON)
    created_at: Mapped[float] = mapped_column(sa.Float)
    updated_at: Mapped[float] = mapped_column(sa.Float)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # "whd_" + ULID
    webhook_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    project: Mapped[str] = mapped_column(sa.String(128))
    event_id: Mapped[int] = mapped_column(sa.Integer)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(sa.Integer)  # every attempt made (numbers of webhook_attempts)
    retry_from: Mapped[int] = mapped_column(sa.Integer)  # attempts at the last manual retry: the budget restarts
    next_attempt_at: Mapped[float] = mapped_column(sa.Float)
    leased_until: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[float] = mapped_column(sa.Float)
    finished_at: Mapped[float | None] = mapped_column(sa.Float, nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    number: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    at: Mapped[float] = mapped_column(sa.Float)
    status_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(sa.Float)
