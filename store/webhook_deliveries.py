"""The delivery queue the cluster's delivery loop works from: claim due deliveries, record attempts.

A claim sets a lease (``leased_until``) in one write transaction, so two delivery loops (two worker
replicas) never send the same attempt; a loop that dies mid-attempt leaves a lease that expires and
the delivery is due again — at-least-once, which is why ``X-Webhook-Delivery`` stays the same across
attempts (receivers deduplicate on it). Everything is in the database: a restart loses nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.db import write_transaction
from store.event_tables import Webhook, WebhookAttempt, WebhookDelivery

__all__ = ["DeliveryQueue", "DueDelivery", "Outcome"]

_CLAIM_BATCH: Final[int] = 16  # pipelines.webhook_dispatch sizes its lease for this many in a row


@dataclass(frozen=True)
class DueDelivery:
    """One attempt to make: the frozen body, where to send it and what signs it (read at claim time,
    so a rotated secret signs the very next attempt)."""

    id: str
    webhook_id: str
    event_type: str
    body: bytes
    url: str
    secret: str | None
    attempt: int  # the number of this attempt (1-based, over the delivery's whole life)
    budget_used: int  # attempts since the last manual retry, this one excluded


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``delivered``, ``retry`` (at ``next_attempt_at``) or ``failed``."""

    status: str
    status_code: int | None
    error: str | None
    duration_ms: float
    next_attempt_at: float | None = None


class DeliveryQueue:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim_due(self, lease_s: float, now: float | None = None) -> list[DueDelivery]:
        """Lease up to a batch of due deliveries (pending, due, not leased by a live loop)."""
        now = time.time() if now is None else now
        due = sa.and_(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            sa.or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
        )
        with self._engine.connect() as conn:  # idle loops poll: answer "nothing" without the write lock
            if conn.execute(sa.select(WebhookDelivery.id).where(due).limit(1)).first() is None:
                return []
        claimed: list[DueDelivery] = []
        with write_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(WebhookDelivery, Webhook.url, Webhook.secret)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(due)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_id)
                .limit(_CLAIM_BATCH)
            ).all()
            for row in rows:
                m = row._mapping
                leased = conn.execute(
                    sa.update(WebhookDelivery)
                    .where(WebhookDelivery.id == m["id"], due)
                    .values(leased_until=now + lease_s)
                ).rowcount
                if leased:
                    claimed.append(
                        DueDelivery(
                            id=m["id"],
                            webhook_id=m["webhook_id"],
                            event_type=m["event_type"],
                            body=m["body"],
                            url=m["url"],
                            secret=m["secret"],
                            attempt=m["attempts"] + 1,
                            budget_used=m["attempts"] - m["retry_from"],
                        )
                    )
        return claimed

    def record(self, delivery: DueDelivery, outcome: Outcome, now: float | None = None) -> None:
        """Record the attempt and the delivery's next state."""
        now = time.time() if now is None else now
        final = outcome.status in ("delivered", "failed")
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(WebhookAttempt).values(
                    delivery_id=delivery.id,
                    number=delivery.attempt,
                    at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            conn.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery.id)
                .values(
                    status="pending" if outcome.status == "retry" else outcome.status,
                    attempts=delivery.attempt,
                    next_attempt_at=outcome.next_attempt_at if outcome.next_attempt_at is not None else now,
                    leased_until=None,
                    last_status_code=outcome.status_code,
                    last_error=outcome.error,
                    finished_at=now if final else None,
                )
            )
