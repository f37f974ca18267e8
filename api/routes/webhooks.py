"""Webhooks (contract: VideoVector): CRUD, secret rotation, a test event, deliveries and their retry,
and the event catalogue. Deliveries are made by the cluster's delivery loop
(:mod:`pipelines.webhook_dispatch`), never in these requests.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses, not_found
from api.services import Services
from contract.errors import ErrorCode
from contract.events import CATALOGUE, EventCatalogue, EventInfo, EventType
from contract.webhooks import (
    AttemptView,
    CreateWebhook,
    DeliveryList,
    DeliveryView,
    TestDelivery,
    UpdateWebhook,
    WebhookList,
    WebhookView,
    WebhookWithSecret,
)
from store import media_fetch
from store.events import epoch_iso
from store.webhooks import DeliveryRecord, WebhookRecord, WebhookStore

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(max_length=64, description="the webhook's id (wh_...)")]
DeliveryId = Annotated[str, Path(max_length=64, description="the delivery's id (whd_...)")]


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else epoch_iso(epoch)


def webhook_view(record: WebhookRecord) -> WebhookView:
    return WebhookView(
        id=record.id,
        name=record.name,
        url=record.url,
        events=list(record.events),
        enabled=record.enabled,
        task_id=record.task_id,
        signed=record.secret is not None,
        metadata=record.metadata,
        created_at=_iso(record.created_at) or "",
        updated_at=_iso(record.updated_at) or "",
    )


def _with_secret(record: WebhookRecord) -> WebhookWithSecret:
    assert record.secret is not None
    return WebhookWithSecret(**webhook_view(record).model_dump(), secret=record.secret)


def delivery_view(record: DeliveryRecord) -> DeliveryView:
    return DeliveryView(
        id=record.id,
        webhook_id=record.webhook_id,
        event_id=record.event_id,
        event_type=record.event_type,
        status=record.status,
        attempts=record.attempts,
        next_attempt_at=_iso(record.next_attempt_at),
        last_status_code=record.last_status_code,
        last_error=record.last_error,
        created_at=_iso(record.created_at) or "",
        finished_at=_iso(record.finished_at),
        attempt_log=[
            AttemptView(
                number=a.number,
                at=_iso(a.at) or "",
                status_code=a.status_code,
                error=a.error,
                duration_ms=round(a.duration_ms, 3),
            )
            for a in record.attempt_log
        ],
    )


def check_webhook_url(services: Services, url: str, field: str) -> None:
    """The media SSRF policy, now (it is checked again at every delivery: DNS can change)."""
    media_fetch.check_url_allowed(url, services.settings, field)


def _store(services: Services) -> WebhookStore:
    return services.webhooks_or_raise()


async def _get(services: Services, project: str, webhook_id: str) -> WebhookRecord:
    record = await run_in_threadpool(_store(services).get, project, webhook_id)
    if record is None:
        raise not_found("webhook", webhook_id, "webhook_id")
    return record


@router.get("/events", response_model=EventCatalogue, responses=error_responses())
async def list_events(project: ProjectDep) -> EventCatalogue:
    """The event names a webhook may subscribe to (``*`` subscribes to all)."""
    return EventCatalogue(data=[EventInfo(name=name, description=text) for name, text in CATALOGUE.items()])


@router.post("", status_code=201, response_model=WebhookWithSecret, responses=error_responses(409))
async def create_webhook(body: CreateWebhook, project: ProjectDep, services: ServicesDep) -> WebhookWithSecret:
    """Subscribe ``url`` to ``events``; the response carries the signing ``secret``."""
    store = _store(services)
    await run_in_threadpool(check_webhook_url, services, body.url, "url")
    if await run_in_threadpool(store.count, project) >= services.settings.webhook_max_per_project:
        limit = services.settings.webhook_max_per_project
        raise APIError(ErrorCode.TOO_MANY_ITEMS, f"a project may have at most {limit} webhooks")
    record = await run_in_threadpool(
        lambda: store.create(
            project,
            url=body.url,
            events=[str(event) for event in body.events],
            name=body.name,
            secret=body.secret,
            enabled=body.enabled,
            metadata=body.metadata,
        )
    )
    return _with_secret(record)


@router.get("", response_model=WebhookList, responses=error_responses())
async def list_webhooks(project: ProjectDep, services: ServicesDep) -> WebhookList:
    records = await run_in_threadpool(_store(services).list, project)
    return WebhookList(data=[webhook_view(record) for record in records])


@router.get("/{webhook_id}", response_model=WebhookView, responses=error_responses(404))
async def get_webhook(webhook_id: WebhookId, project: ProjectDep, services: ServicesDep) -> WebhookView:
    return webhook_view(await _get(services, project, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookView, responses=error_responses(404))
async def update_webhook(
    webhook_id: WebhookId, body: UpdateWebhook, project: ProjectDep, services: ServicesDep
) -> WebhookView:
    """Change the fields sent (url, events, name, enabled, metadata)."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        await run_in_threadpool(check_webhook_url, services, changes["url"], "url")
    if "events" in changes:
        changes["events"] = [str(event) for event in changes["events"]]
    record = await run_in_threadpool(_store(services).update, project, webhook_id, changes)
    if record is None:
        raise not_found("webhook", webhook_id, "webhook_id")
    return webhook_view(record)


@router.delete("/{webhook_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_webhook(webhook_id: WebhookId, project: ProjectDep, services: ServicesDep) -> Response:
    """Remove the webhook, its pending deliveries and its delivery log."""
    if not await run_in_threadpool(_store(services).delete, project, webhook_id):
        raise not_found("webhook", webhook_id, "webhook_id")
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookWithSecret, responses=error_responses(404))
async def rotate_secret(webhook_id: WebhookId, project: ProjectDep, services: ServicesDep) -> WebhookWithSecret:
    """A new signing secret; from now on only it signs (retries of earlier deliveries too)."""
    record = await run_in_threadpool(_store(services).rotate_secret, project, webhook_id)
    if record is None:
        raise not_found("webhook", webhook_id, "webhook_id")
    return _with_secret(record)


@router.post("/{webhook_id}/test", status_code=202, response_model=TestDelivery, responses=error_responses(404))
async def test_webhook(
    webhook_id: WebhookId, project: ProjectDep, services: ServicesDep, response: Response
) -> TestDelivery:
    """Queue a ``webhook.test`` event for this webhook alone; a disabled webhook receives nothing (409)."""
    record = await _get(services, project, webhook_id)
    if not record.enabled:
        raise APIError(ErrorCode.WEBHOOK_DISABLED, f"webhook {webhook_id!r} is disabled", "webhook_id")
    payload = {"webhook_id": webhook_id, "message": "a test event from VisionGrid"}
    event_id = await run_in_threadpool(
        services.events_or_raise().emit, project, EventType.WEBHOOK_TEST, payload, None, webhook_id
    )
    deliveries = await run_in_threadpool(_store(services).deliveries, project, webhook_id, 5)
    delivery = next((d.id for d in deliveries if d.event_id == event_id), None)
    response.headers["Location"] = f"/v1/webhooks/{webhook_id}/deliveries"
    return TestDelivery(event_id=event_id, delivery_id=delivery)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=error_responses(404))
async def list_deliveries(
    webhook_id: WebhookId,
    project: ProjectDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    """The webhook's deliveries, newest first, with every attempt (status code, error, duration)."""
    await _get(services, project, webhook_id)
    records = await run_in_threadpool(_store(services).deliveries, project, webhook_id, limit)
    return DeliveryList(data=[delivery_view(record) for record in records])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryView,
    responses=error_responses(404),
)
async def retry_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, project: ProjectDep, services: ServicesDep, response: Response
) -> DeliveryView:
    """Send the delivery again now, with a fresh attempt budget."""
    record = await run_in_threadpool(_store(services).retry, project, webhook_id, delivery_id)
    if record is None:
        raise not_found("delivery", delivery_id, "delivery_id")
    response.headers["Location"] = f"/v1/webhooks/{webhook_id}/deliveries"
    return delivery_view(record)
