"""Typed dependency aliases: handlers declare ``project: ProjectDep`` and get the project of an
authenticated key whose scopes allow the route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import authenticated_key
from api.scopes import require
from api.services import Services, installed
from store.records import ApiKeyRecord
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


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer vg_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same API key, as a header")


async def authenticate_key(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    x_api_key: Annotated[str | None, Security(_api_key)] = None,
) -> ApiKeyRecord:
    """The caller's key (``Authorization: Bearer`` or ``X-API-Key``; 401 otherwise), checked against
    the scope this route requires (:mod:`api.scopes`; 403 ``insufficient_scope``). Requests with a
    body were authenticated by :class:`api.body_guard.BodyGuard` before their body was read; its
    answer is reused. (``bearer``/``x_api_key`` are declared so OpenAPI documents both schemes.)"""
    record = await authenticated_key(services, request.scope)
    require(request.scope.get("route"), record.scopes)
    return record


async def authenticate(key: Annotated[ApiKeyRecord, Depends(authenticate_key)]) -> str:
    """The project of the caller's (scope-checked) key."""
    return key.project


ProjectDep = Annotated[str, Depends(authenticate)]
KeyDep = Annotated[ApiKeyRecord, Depends(authenticate_key)]
