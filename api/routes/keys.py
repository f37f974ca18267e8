"""API keys as a resource (contract: VideoVector's key lifecycle): create, list, get, rotate,
revoke, delete — every one needs an admin key, and acts on the caller's project only.

Create and rotate answer the secret once; they are not Idempotency-Key routes, because replaying
them would mean storing the secret in the replay record.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses, not_found
from contract.errors import ErrorCode
from contract.keys import CreateKey, KeyList, KeyView, KeyWithSecret
from store.records import ApiKeyRecord
from store.tables import utcnow

router = APIRouter(prefix="/v1/keys", tags=["keys"])

KeyPath = Annotated[str, Path(max_length=64, description="the key's id (key_...)")]


def key_view(record: ApiKeyRecord, now: dt.datetime | None = None) -> KeyView:
    """The masked view of a key (``status`` derived now)."""
    now = now or utcnow()
    if record.revoked_at is not None:
        status = "revoked"
    elif not record.usable_at(now):
        status = "expired"
    else:
        status = "active"
    return KeyView(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        last4=record.last4,
        scopes=list(record.scopes),
        status=status,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


def _with_secret(record: ApiKeyRecord, secret: str) -> KeyWithSecret:
    return KeyWithSecret(**key_view(record).model_dump(), secret=secret)


@router.post("", status_code=201, response_model=KeyWithSecret, responses=error_responses())
async def create_key(body: CreateKey, project: ProjectDep, services: ServicesDep) -> KeyWithSecret:
    """A new key of the caller's project; the response carries its full ``secret``, this once."""
    scopes = tuple(scope.value for scope in body.scopes)
    expires_at = body.expiry(utcnow())
    record, secret = await run_in_threadpool(services.keys.create, project, scopes, body.name, expires_at)
    return _with_secret(record, secret)


@router.get("", response_model=KeyList, responses=error_responses())
async def list_keys(project: ProjectDep, services: ServicesDep) -> KeyList:
    """The project's keys, masked (revoked and expired ones included, oldest first)."""
    now = utcnow()
    records = await run_in_threadpool(services.keys.list, project)
    return KeyList(data=[key_view(record, now) for record in records])


@router.get("/{key_id}", response_model=KeyView, responses=error_responses(404))
async def get_key(key_id: KeyPath, project: ProjectDep, services: ServicesDep) -> KeyView:
    record = await run_in_threadpool(services.keys.get, project, key_id)
    if record is None:
        raise not_found("key", key_id, "key_id")
    return key_view(record)


@router.post("/{key_id}/rotate", response_model=KeyWithSecret, responses=error_responses(404, 409))
async def rotate_key(key_id: KeyPath, project: ProjectDep, services: ServicesDep) -> KeyWithSecret:
    """A new secret for the key (same id, name, scopes and expiry); the old secret stops working now."""
    rotated = await run_in_threadpool(services.keys.rotate, project, key_id)
    if rotated is None:
        existing = await run_in_threadpool(services.keys.get, project, key_id)
        if existing is None:
            raise not_found("key", key_id, "key_id")
        raise APIError(ErrorCode.KEY_REVOKED, f"key {key_id!r} is revoked; create a new one", "key_id")
    return _with_secret(*rotated)


@router.post("/{key_id}/revoke", response_model=KeyView, responses=error_responses(404))
async def revoke_key(key_id: KeyPath, project: ProjectDep, services: ServicesDep) -> KeyView:
    """Soft-disable the key (kept in listings as ``revoked``); idempotent."""
    record = await run_in_threadpool(services.keys.revoke, project, key_id)
    if record is None:
        raise not_found("key", key_id, "key_id")
    return key_view(record)


@router.delete("/{key_id}", status_code=204, response_class=Response, responses=error_responses(404))
async def delete_key(key_id: KeyPath, project: ProjectDep, services: ServicesDep) -> Response:
    """Remove the key for good (its secret stops working at once)."""
    if not await run_in_threadpool(services.keys.delete, project, key_id):
        raise not_found("key", key_id, "key_id")
    return Response(status_code=204)
