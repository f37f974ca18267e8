"""Webhooks (contract: VideoVector's webhook resource; Noxovision's per-request ``webhook``).

A webhook has a URL (http/https; checked against the SSRF policy at creation and again at every
delivery), the event names it wants (``*``: all), a signing secret (generated unless given; shown on
create and rotate), and its deliveries with every attempt.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictStr, field_validator, model_validator

from contract.common import ListEnvelope, RequestBody, Strict
from contract.errors import PlanError
from contract.events import EventType

__all__ = [
    "AttemptView",
    "CreateWebhook",
    "DeliveryList",
    "DeliveryView",
    "TestDelivery",
    "UpdateWebhook",
    "WebhookConfig",
    "WebhookList",
    "WebhookView",
    "WebhookWithSecret",
]

_MAX_URL: Final[int] = 2048


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials (use the signing secret)")
    return value


WebhookURL = Annotated[StrictStr, Field(min_length=1, max_length=_MAX_URL), AfterValidator(_http_url)]
Secret = Annotated[StrictStr, Field(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")]
EventName = Literal["*"] | EventType
Metadata = dict[StrictStr, StrictStr | int | float | bool | None]


def _events(value: list[Any]) -> list[Any]:
    if len(set(value)) != len(value):
        raise ValueError("lists an event twice")
    return value


class WebhookConfig(Strict):
    """A per-request webhook (``webhook`` on video process and batch): the task's terminal event is
    POSTed to ``url``; signed when ``secret`` is given, unsigned otherwise (as Noxovision)."""

    url: WebhookURL
    secret: Secret | None = None


class CreateWebhook(RequestBody):
    url: WebhookURL
    events: list[EventName] = Field(min_length=1, max_length=20, description='event names, or ["*"] for all')
    name: Annotated[StrictStr, Field(max_length=200)] | None = None
    secret: Secret | None = Field(None, description="bring your own signing secret (else one is generated)")
    enabled: StrictBool = True
    metadata: Metadata = Field(default_factory=dict, max_length=50)

    _unique = field_validator("events")(_events)


class UpdateWebhook(RequestBody):
    """``PATCH``: only the fields sent change (``secret``: use rotate-secret)."""

    url: WebhookURL | None = None
    events: list[EventName] | None = Field(None, min_length=1, max_length=20)
    name: Annotated[StrictStr, Field(max_length=200)] | None = None
    enabled: StrictBool | None = None
    metadata: Metadata | None = Field(None, max_length=50)

    _unique = field_validator("events")(lambda value: value if value is None else _events(value))

    @model_validator(mode="after")
    def _no_nulls(self) -> UpdateWebhook:
        """Only ``name`` may be cleared; a null ``url``, ``events``, ``enabled`` or ``metadata`` is refused."""
        for key in ("url", "events", "enabled", "metadata"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise PlanError(key, "must not be null")
        return self


class WebhookView(BaseModel):
    object: Literal["webhook"] = "webhook"
    id: str
    name: str | None
    url: str
    events: list[str]
    enabled: bool
    task_id: str | None = Field(None, description="set for a task's per-request webhook")
    signed: bool
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


class WebhookWithSecret(WebhookView):
    secret: str = Field(description="HMAC-SHA256 key of X-Webhook-Signature; shown on create and rotate only")


class AttemptView(BaseModel):
    number: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryView(BaseModel):
    object: Literal["webhook.delivery"] = "webhook.delivery"
    id: str
    webhook_id: str
    event_id: int
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    finished_at: str | None
    attempt_log: list[AttemptView]


class TestDelivery(BaseModel):
    event_id: int
    delivery_id: str | None


WebhookList = ListEnvelope[WebhookView]
DeliveryList = ListEnvelope[DeliveryView]
