"""Webhook deliveries end to end below the API: the event log's fan-out, the delivery loop and a real
receiver on loopback that verifies every signature."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from contract.events import EventType
from pipelines.webhook_dispatch import backoff_s, dispatch_once
from store.db import open_engine
from store.events import EventLog
from store.tasks import TaskStore
from store.webhook_deliveries import DeliveryQueue
from store.webhooks import WebhookStore
from tests.webhook_receiver import Receiver
from visiongrid.settings import Settings

PROJECT = "hooks"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        allow_private_urls=True,  # the receiver is on loopback
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.2,
        webhook_max_attempts=3,
        webhook_timeout_s=2.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def _drain(queue: DeliveryQueue, settings: Settings, rounds: int = 40) -> None:
    """Run delivery rounds until nothing has been due for a while (retries included)."""
    idle = 0
    for _ in range(rounds):
        attempted = asyncio.run(dispatch_once(queue, settings))
        idle = 0 if attempted else idle + 1
        if idle >= 5:
            return
        time.sleep(0.06)


def test_a_task_event_is_signed_and_delivered_exactly_as_logged(
    engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["task.succeeded", "task.started"])
    assert hook.secret is not None
    receiver.secrets.append(hook.secret)
    tasks = TaskStore(engine)
    created = tasks.create(PROJECT, {"steps": []}, None)
    claimed = tasks.claim_next("r", max_running=10, max_running_per_project=10)
    assert claimed is not None and claimed.id == created.id
    assert tasks.finish(created.id, "r", status="succeeded", finish_reason="stop", usage={"processed_frames": 0})
    _drain(DeliveryQueue(engine), settings)
    got = receiver.wait_for(2)
    assert [json.loads(r.body)["event_type"] for r in got] == ["task.started", "task.succeeded"]
    assert all(r.signature_ok for r in got)
    first = got[1]
    assert first.headers["x-webhook-id"] == hook.id and first.headers["x-webhook-event"] == "task.succeeded"
    body = json.loads(first.body)
    assert body["task_id"] == created.id and body["payload"]["task"]["status"] == "succeeded"
    logged = EventLog(engine).since(PROJECT, 0)
    assert json.loads(first.body) == logged[-1]  # the bytes sent are the event as logged
    delivery = hooks.deliveries(PROJECT, hook.id)[0]
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.attempt_log[0].status_code == 200


def test_5xx_is_retried_with_the_same_delivery_id_and_a_fresh_signature(
    engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 503])
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["*"])
    assert hook.secret is not None
    receiver.secrets.append(hook.secret)
    EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {"upload_id": "up_1"})
    _drain(DeliveryQueue(engine), settings)
    got = receiver.wait_for(3)
    assert [r.status for r in got] == [500, 503, 200]
    assert len({r.headers["x-webhook-delivery"] for r in got}) == 1
    assert all(r.signature_ok for r in got) and len({r.headers["x-webhook-signature"] for r in got}) >= 1
    (delivery,) = hooks.deliveries(PROJECT, hook.id)
    assert delivery.status == "delivered" and [a.status_code for a in delivery.attempt_log] == [500, 503, 200]
    gaps = [b.at - a.at for a, b in zip(delivery.attempt_log, delivery.attempt_log[1:], strict=False)]
    assert all(gap >= settings.webhook_backoff_base_s for gap in gaps), gaps


def test_4xx_is_a_permanent_failure_and_a_manual_retry_sends_again(
    engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    receiver.statuses.append(400)
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["*"])
    EventLog(engine).emit(PROJECT, EventType.COLLECTION_INDEXED, {"collection_id": "vc_1"})
    queue = DeliveryQueue(engine)
    _drain(queue, settings)
    (delivery,) = hooks.deliveries(PROJECT, hook.id)
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.last_status_code == 400
    assert len(receiver.received) == 1  # no retry after a 400
    assert hooks.retry(PROJECT, hook.id, delivery.id) is not None
    _drain(queue, settings)
    (delivery,) = hooks.deliveries(PROJECT, hook.id)
    assert delivery.status == "delivered" and [a.number for a in delivery.attempt_log] == [1, 2]
    assert hooks.retry("someone-else", hook.id, delivery.id) is None


def test_retries_stop_at_the_attempt_limit(engine: Engine, settings: Settings, receiver: Receiver) -> None:
    receiver.default = 502
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["*"])
    EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {})
    _drain(DeliveryQueue(engine), settings)
    (delivery,) = hooks.deliveries(PROJECT, hook.id)
    assert delivery.status == "failed" and delivery.attempts == settings.webhook_max_attempts
    assert len(receiver.received) == settings.webhook_max_attempts


def test_a_delivery_survives_a_restart_mid_retry(engine: Engine, settings: Settings, receiver: Receiver) -> None:
    receiver.statuses.append(500)
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["*"])
    EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {})
    asyncio.run(dispatch_once(DeliveryQueue(engine), settings))  # attempt 1: 500, a retry scheduled
    # a loop that claimed the retry and died before sending: its lease expires, the delivery is due again
    time.sleep(0.1)  # the retry is due (backoff ≤ 0.0625 s)
    assert DeliveryQueue(engine).claim_due(lease_s=0.3)
    engine.dispose()
    restarted = open_engine(str(engine.url))  # a fresh process's view of the same database
    assert DeliveryQueue(restarted).claim_due(lease_s=0.3) == []  # leased by the "dead" loop
    time.sleep(0.35)
    _drain(DeliveryQueue(restarted), settings)
    (delivery,) = WebhookStore(restarted).deliveries(PROJECT, hook.id)
    assert delivery.status == "delivered" and [a.status_code for a in delivery.attempt_log] == [500, 200]


def test_after_rotation_only_the_new_secret_signs(engine: Engine, settings: Settings, receiver: Receiver) -> None:
    receiver.statuses.append(500)
    hooks = WebhookStore(engine)
    hook = hooks.create(PROJECT, url=receiver.url, events=["*"], secret="an-old-secret-of-mine")
    EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {})
    queue = DeliveryQueue(engine)
    asyncio.run(dispatch_once(queue, settings))
    rotated = hooks.rotate_secret(PROJECT, hook.id)
    assert rotated is not None and rotated.secret not in (None, "an-old-secret-of-mine")
    _drain(queue, settings)
    first, second = receiver.wait_for(2)
    receiver.secrets[:] = ["an-old-secret-of-mine"]
    from tests.webhook_receiver import verify

    assert verify("an-old-secret-of-mine", first.headers["x-webhook-signature"], first.body)
    assert rotated.secret is not None and verify(rotated.secret, second.headers["x-webhook-signature"], second.body)
    assert not verify("an-old-secret-of-mine", second.headers["x-webhook-signature"], second.body)


def test_private_addresses_and_redirects_are_refused_at_delivery(engine: Engine, tmp_path: Path) -> None:
    strict = Settings(data_dir=tmp_path, allow_private_urls=False, webhook_max_attempts=2, webhook_backoff_base_s=0.05)
    redirecting = Receiver(statuses=deque([302]), redirect_to="http://169.254.169.254/").start()
    try:
        hooks = WebhookStore(engine)
        private = hooks.create(PROJECT, url="http://127.0.0.1:9/x", events=["*"])
        EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {})
        _drain(DeliveryQueue(engine), strict)
        (delivery,) = hooks.deliveries(PROJECT, private.id)
        assert delivery.status == "failed" and "url_not_allowed" in (delivery.last_error or "")
        hooks.delete(PROJECT, private.id)
        lax = strict.model_copy(update={"allow_private_urls": True})
        hook = hooks.create(PROJECT, url=redirecting.url, events=["*"])
        EventLog(engine).emit(PROJECT, EventType.UPLOAD_FINALIZED, {})
        _drain(DeliveryQueue(engine), lax)
        (delivery,) = hooks.deliveries(PROJECT, hook.id)
        assert delivery.status == "failed" and delivery.last_status_code == 302 and len(redirecting.received) == 1
    finally:
        redirecting.stop()


def test_a_per_request_webhook_gets_its_tasks_end_only(engine: Engine, settings: Settings, receiver: Receiver) -> None:
    tasks = TaskStore(engine)
    mine = tasks.create(PROJECT, {"steps": []}, None, webhook=(receiver.url, None))
    other = tasks.create(PROJECT, {"steps": []}, None)
    for _ in range(2):
        claimed = tasks.claim_next("r", max_running=10, max_running_per_project=10)
        assert claimed is not None
        tasks.finish(claimed.id, "r", status="failed", finish_reason="error", usage=None, error_code="x")
    _drain(DeliveryQueue(engine), settings)
    (got,) = receiver.wait_for(1)
    assert json.loads(got.body)["task_id"] == mine.id and json.loads(got.body)["event_type"] == "task.failed"
    assert got.signature_ok is None and "x-webhook-signature" not in got.headers  # no secret: unsigned
    assert other.id != mine.id


def test_backoff_is_exponential_capped_and_jittered(settings: Settings) -> None:
    import random

    rng = random.Random(7)
    delays = [backoff_s(n, settings, rng) for n in range(1, 8)]
    assert 0.05 <= delays[0] <= 0.0625 and 0.1 <= delays[1] <= 0.125
    assert all(0.2 <= d <= 0.25 for d in delays[2:])
