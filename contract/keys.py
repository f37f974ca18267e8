"""API keys as a resource (contract: VideoVector's API key lifecycle and scope model).

A key belongs to one project and carries scopes from the hierarchy ``admin > write > read >
search``: a key with ``write`` may do everything ``read`` and ``search`` may. The secret is in the
response of create and rotate only; listings show ``prefix`` and ``last4``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator, model_validator

from contract.common import ListEnvelope, RequestBody
from contract.errors import PlanError

__all__ = [
    "MAX_EXPIRY_DAYS",
    "CreateKey",
    "KeyList",
    "KeyView",
    "KeyWithSecret",
    "Scope",
    "granted",
]

#: The longest expiry a key may be given (ten years); longer is almost certainly a unit mistake.
MAX_EXPIRY_DAYS: Final[int] = 3650


class Scope(StrEnum):
    """A key's permission, lowest first: each includes the ones below it."""

    SEARCH = "search"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final[dict[Scope, int]] = {scope: rank for rank, scope in enumerate(Scope)}
#: Keys made before scopes existed were written with ``*``: they could do everything, so admin.
_LEGACY: Final[dict[str, Scope]] = {"*": Scope.ADMIN}


def granted(scopes: tuple[str, ...] | list[str], required: Scope) -> bool:
    """Whether a key holding ``scopes`` may call a route requiring ``required`` (unknown scopes grant nothing)."""
    for name in scopes:
        scope = _LEGACY.get(name) or Scope._value2member_map_.get(name)
        if isinstance(scope, Scope) and scope.rank >= required.rank:
            return True
    return False


KeyName = Annotated[StrictStr, Field(min_length=1, max_length=200, description="what the key is for")]


class CreateKey(RequestBody):
    """``POST /v1/keys``: a name, scopes, and at most one expiry form (none: the key never expires)."""

    name: KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=4, description='e.g. ["read", "search"]')
    expires_in_days: StrictInt | None = Field(None, ge=1, le=MAX_EXPIRY_DAYS)
    expires_at: dt.datetime | None = Field(None, description="ISO-8601; must be in the future")

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be blank")
        if any(not ch.isprintable() for ch in name):
            raise ValueError("must not contain control characters")
        return name

    @field_validator("expires_at")
    @classmethod
    def _aware_future(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        except (OverflowError, ValueError):
            raise ValueError("cannot be held in UTC") from None
        if value <= dt.datetime.now(dt.UTC):
            raise ValueError("must be in the future")
        return value

    @model_validator(mode="after")
    def _one_expiry(self) -> CreateKey:
        if self.expires_in_days is not None and self.expires_at is not None:
            raise PlanError("expires_at", "give expires_in_days or expires_at, not both")
        return self

    def expiry(self, now: dt.datetime) -> dt.datetime | None:
        """When the key stops working (``None``: never)."""
        if self.expires_in_days is not None:
            return now + dt.timedelta(days=self.expires_in_days)
        return self.expires_at


class KeyView(BaseModel):
    """A key as listings show it: never its secret."""

    object: Literal["api_key"] = "api_key"
    id: str
    name: str
    prefix: str = Field(description="the secret's first characters")
    last4: str = Field(description="the secret's last four characters")
    scopes: list[str]
    status: Literal["active", "revoked", "expired"]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = Field(None, description="updated at most once a minute")
    revoked_at: dt.datetime | None = None


class KeyWithSecret(KeyView):
    """The answer of create and rotate: the full secret, shown this once."""

    secret: str = Field(description="send as `Authorization: Bearer <secret>` or `X-API-Key`; not retrievable later")


KeyList = ListEnvelope[KeyView]
