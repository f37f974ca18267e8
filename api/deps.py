"""Typed dependency aliases: handlers declare ``project: ProjectDep`` and get an authenticated project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.errors import APIError
from api.services import Services, installed
from visiongrid.settings import Settings


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None) or installed()
    if services is None:
        raise RuntimeError("no services installed: build the app with create_app(services) or call install()")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _secret_from(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


async def authenticate(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The project of the caller's key (``Authorization: Bearer`` or ``X-API-Key``); 401 otherwise."""
    secret = _secret_from(authorization, x_api_key)
    if secret is None:
        raise APIError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    record = await run_in_threadpool(services.keys.authenticate, secret)
    if record is None:
        raise APIError(401, "unauthorized", "invalid or revoked API key")
    return record.project


ProjectDep = Annotated[str, Depends(authenticate)]
