"""The webhook delivery loop: runs on the cluster (inside each task-worker replica), never in a request.

Each round claims the due deliveries (leased, so replicas never double-send), sends them
concurrently off the event loop, and records every attempt. A retryable failure (5xx, timeout,
network error) is tried again after ``webhook_backoff_base_s * 2**(n-1)`` seconds, capped at
``webhook_backoff_max_s``, with up to 25 % random jitter (so a receiver that comes back is not hit by
every retry at once), until ``webhook_max_attempts`` attempts since the last manual retry; then the
delivery is ``failed``. A 4xx (or 3xx) is a permanent failure at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from store.webhook_deliveries import DeliveryQueue, DueDelivery, Outcome
from store.webhook_sender import send
from visiongrid.settings import Settings

__all__ = ["backoff_s", "dispatch_once", "run_forever"]

logger = logging.getLogger(__name__)


def backoff_s(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """The delay after failed attempt number ``attempt`` (1-based): exponential, capped, with jitter."""
    base = min(settings.webhook_backoff_max_s, settings.webhook_backoff_base_s * 2 ** min(attempt - 1, 60))
    return base * (1.0 + 0.25 * (rng or random).random())


async def _attempt(queue: DeliveryQueue, delivery: DueDelivery, settings: Settings) -> str:
    sent = await asyncio.to_thread(
        send,
        url=delivery.url,
        body=delivery.body,
        secret=delivery.secret,
        webhook_id=delivery.webhook_id,
        delivery_id=delivery.id,
        event_type=delivery.event_type,
        settings=settings,
    )
    if sent.delivered:
        outcome = Outcome("delivered", sent.status_code, None, sent.duration_ms)
    elif sent.retryable and delivery.budget_used + 1 < settings.webhook_max_attempts:
        next_at = time.time() + backoff_s(delivery.budget_used + 1, settings)
        outcome = Outcome("retry", sent.status_code, sent.error, sent.duration_ms, next_at)
    else:
        outcome = Outcome("failed", sent.status_code, sent.error, sent.duration_ms)
    await asyncio.to_thread(queue.record, delivery, outcome)
    return outcome.status


async def _in_order(queue: DeliveryQueue, deliveries: list[DueDelivery], settings: Settings) -> None:
    for delivery in deliveries:
        await _attempt(queue, delivery, settings)


async def dispatch_once(queue: DeliveryQueue, settings: Settings) -> int:
    """One round: every due delivery attempted once; how many were attempted. Webhooks are served
    concurrently, each one's deliveries in event order (a receiver sees task.started before
    task.succeeded, unless a retry intervenes)."""
    due = await asyncio.to_thread(queue.claim_due, _lease_s(settings))
    by_webhook: dict[str, list[DueDelivery]] = {}
    for delivery in due:
        by_webhook.setdefault(delivery.webhook_id, []).append(delivery)
    await asyncio.gather(*(_in_order(queue, group, settings) for group in by_webhook.values()))
    return len(due)


def _lease_s(settings: Settings) -> float:
    """Long enough for a whole claimed batch sent one after another: a live loop never loses its lease."""
    return (settings.webhook_timeout_s + 1) * 16 + 5


async def run_forever(queue: DeliveryQueue, settings: Settings, wakeup: asyncio.Event | None = None) -> None:
    """Deliver until cancelled; a database hiccup is logged and the loop goes on. ``wakeup`` (set by
    the task worker when one of its tasks starts or ends) starts a round at once instead of at the
    next poll: a task's own events then leave within milliseconds of its finish."""
    wakeup = wakeup or asyncio.Event()
    while True:
        try:
            wakeup.clear()
            if await dispatch_once(queue, settings):
                continue  # there may be more due right away
        except Exception:
            logger.exception("webhook delivery round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=settings.webhook_poll_interval_s)
