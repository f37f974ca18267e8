"""What request handlers need, built once per ingress replica and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from api.errors import APIError
from contract.errors import ErrorCode
from contract.status import DeploymentLoad
from pipelines.describe import VLMDescriber
from pipelines.executor import StepModels
from store.archive import Archive
from store.collections import CollectionStore
from store.db import open_engine
from store.events import EventLog
from store.keys import KeyStore
from store.objects import ObjectStore
from store.tasks import TaskStore
from store.uploads import UploadStore
from store.webhooks import WebhookStore
from visiongrid.settings import Settings

_installed: Services | None = None


def install(services: Services) -> None:
    """Make ``services`` the process-wide default.

    Ray Serve deserialises the FastAPI app inside each ingress replica, so the replica's
    constructor cannot reach that app object's ``state``; it installs its services here and
    the dependency falls back to them.
    """
    global _installed
    _installed = services


def installed() -> Services | None:
    return _installed


@dataclass
class Services:
    settings: Settings
    tasks: TaskStore
    archive: Archive
    keys: KeyStore
    wake_workers: Callable[[], None] | None = None  # nudges a task worker to claim now instead of at its next poll
    objects: ObjectStore | None = None
    uploads: UploadStore | None = None
    models: StepModels | None = None  # the model deployments, for the synchronous vision endpoints
    vlm: VLMDescriber | None = None
    collections: CollectionStore | None = None
    vectors: Any | None = None  # a handle of the vectors deployment (the only Chroma client)
    webhooks: WebhookStore | None = None
    events: EventLog | None = None
    live_load: Callable[[], list[DeploymentLoad]] | None = None  # Ray Serve's load per deployment (the ingress's)
    compute: Callable[[], Awaitable[dict[str, str]]] | None = None  # the detector's backend, asked of a replica

    def webhooks_or_raise(self) -> WebhookStore:
        if self.webhooks is None:
            raise APIError(ErrorCode.INTERNAL_ERROR, "webhooks are not configured in this API process")
        return self.webhooks

    def events_or_raise(self) -> EventLog:
        if self.events is None:
            raise APIError(ErrorCode.INTERNAL_ERROR, "the event log is not configured in this API process")
        return self.events

    def objects_or_raise(self) -> ObjectStore:
        if self.objects is None:
            raise APIError(ErrorCode.STORAGE_UNAVAILABLE, "object storage is not configured")
        return self.objects

    def vlm_client(self) -> VLMDescriber | None:
        """The external describe providers' client, made on first need (none configured: None)."""
        if self.vlm is None and self.settings.vlm_providers:
            from store.vlm import VLMClient

            self.vlm = VLMClient()
        return self.vlm

    def collections_or_raise(self) -> CollectionStore:
        if self.collections is None:
            raise APIError(ErrorCode.VECTORS_UNAVAILABLE, "vector collections are not configured")
        return self.collections

    def models_or_raise(self) -> StepModels:
        if self.models is None:
            raise APIError(ErrorCode.MODELS_UNAVAILABLE, "no model deployments are attached to this API process")
        return self.models

    def uploads_or_raise(self) -> UploadStore:
        if self.uploads is None:
            raise APIError(ErrorCode.STORAGE_UNAVAILABLE, "object storage is not configured")
        return self.uploads

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        wake_workers: Callable[[], None] | None = None,
        models: StepModels | None = None,
        vectors: Any | None = None,
        live_load: Callable[[], list[DeploymentLoad]] | None = None,
        compute: Callable[[], Awaitable[dict[str, str]]] | None = None,
    ) -> Services:
        engine = open_engine(settings.resolved_database_url())
        objects = ObjectStore(settings)
        return cls(
            settings,
            TaskStore(engine),
            Archive(engine),
            KeyStore(engine),
            wake_workers,
            objects,
            UploadStore(engine, objects, settings),
            models,
            collections=CollectionStore(engine),
            vectors=vectors,
            webhooks=WebhookStore(engine),
            events=EventLog(engine),
            live_load=live_load,
            compute=compute,
        )
