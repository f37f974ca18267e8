"""Typed dependency aliases: handlers declare ``project: ProjectDep`` and get an authenticated project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import PROJECT_STATE_KEY, authenticated_project
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


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer vg_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same API key, as a header")


async def authenticate(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    x_api_key: Annotated[str | None, Security(_api_key)] = None,
) -> str:
    """The project of the caller's key (``Authorization: Bearer`` or ``X-API-Key``); 401 otherwise.
    Requests with a body were authenticated by :class:`api.body_guard.BodyGuard` before their body
    was read; its answer is reused."""
    checked: str | None = request.scope.get("state", {}).get(PROJECT_STATE_KEY)
    if checked is not None:
        return checked
    authorization = f"{bearer.scheme} {bearer.credentials}" if bearer is not None else None
    return await authenticated_project(services, authorization, x_api_key)


ProjectDep = Annotated[str, Depends(authenticate)]
