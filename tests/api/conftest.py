"""The API in-process over real components: SQLite, the local S3 server, the collection store and the
ONNX models (loaded lazily, once per module), with no vectors deployment (``vectors=None``: a vector
route that reaches it answers 503, so every validation error must come first).

A module shares one database; each test gets its own pair of projects in it (unique names: the S3
bucket is shared by the session too), so "nothing was stored" can be checked by counting a project's
tasks, objects, collections and uploads.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.services import Services
from pipelines.local_models import LocalModels
from store.archive import Archive
from store.collections import CollectionStore
from store.db import _dispose_engines, open_engine
from store.events import EventLog
from store.keys import KeyStore
from store.objects import ObjectStore
from store.tables import Upload
from store.tasks import TaskStore
from store.uploads import UploadStore
from store.webhooks import WebhookStore
from visiongrid.s3_server import free_ports
from visiongrid.settings import Settings

JSON = {"content-type": "application/json"}


@dataclass
class Api:
    """An app over real stores, and what a test needs to look behind it."""

    app: FastAPI
    services: Services
    engine: Engine
    project: str
    other: str
    key: str
    other_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def task_count(self, project: str | None = None) -> int:
        return sum(self.services.tasks.counts_by_status(project or self.project).values())

    def object_count(self, project: str | None = None) -> int:
        objects = self.services.objects_or_raise()
        items, _ = objects.list(project or self.project, "", None, 1000)
        return len(items)

    def collection_count(self, project: str | None = None) -> int:
        return len(self.services.collections_or_raise().list(project or self.project))

    def upload_count(self, project: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(Upload).where(Upload.project == (project or self.project))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def stored(self) -> tuple[int, int, int, int]:
        """Everything a request of the caller could leave behind (for "nothing stored" checks)."""
        return self.task_count(), self.object_count(), self.collection_count(), self.upload_count()


@dataclass(frozen=True)
class _Stores:
    """What a module's tests share: building them costs ~0.6 s (migrations, boto3 clients)."""

    settings: Settings
    engine: Engine
    tasks: TaskStore
    archive: Archive
    keys: KeyStore
    objects: ObjectStore
    uploads: UploadStore
    collections: CollectionStore
    models: LocalModels


@pytest.fixture(scope="module")
def stores(s3_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Stores]:
    """One database per module (each test has its own projects in it), the session's S3 server, and the
    real ONNX models (they load on first use, so most of these tests never load one)."""
    folder = tmp_path_factory.mktemp("api")
    settings = s3_settings.model_copy(update={"data_dir": folder})
    engine = open_engine(f"sqlite:///{folder / 'visiongrid.db'}")
    objects = ObjectStore(settings)
    yield _Stores(
        settings,
        engine,
        TaskStore(engine),
        Archive(engine),
        KeyStore(engine),
        objects,
        UploadStore(engine, objects, settings),
        CollectionStore(engine),
        LocalModels(settings),
    )
    _dispose_engines()


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api(stores: _Stores) -> ApiFactory:
    """``make_api(**settings_overrides)``: an app over the module's stores and two fresh projects."""

    def make(**overrides: Any) -> Api:
        settings = stores.settings.model_copy(update=overrides) if overrides else stores.settings
        objects = ObjectStore(settings) if overrides else stores.objects
        uploads = UploadStore(stores.engine, objects, settings) if overrides else stores.uploads
        suffix = uuid.uuid4().hex[:12]
        project, other = f"p-{suffix}", f"q-{suffix}"
        _, key = stores.keys.create(project)
        _, other_key = stores.keys.create(other)
        services = Services(
            settings,
            stores.tasks,
            stores.archive,
            stores.keys,
            objects=objects,
            uploads=uploads,
            models=stores.models,
            collections=stores.collections,
            vectors=None,
            webhooks=WebhookStore(stores.engine),
            events=EventLog(stores.engine),
        )
        return Api(create_app(services), services, stores.engine, project, other, key, other_key)

    return make


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    """The caller's client (``Authorization: Bearer`` of ``api.project``); server errors are answered,
    not raised, so a 500 is seen as the client would see it."""
    with TestClient(api.app, headers=api.headers(), raise_server_exceptions=False) as test_client:
        yield test_client


class ResponseLike(Protocol):
    """What ``assert_error`` reads of a response (TestClient's responses are not ``httpx``'s own type)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def assert_error(
    response: ResponseLike, status: int, code: str, field: str | None = None, *, prefixed: bool = False
) -> dict[str, Any]:
    """The response is the envelope ``{"error": {code, message, field}}`` with this status, code and field
    (``field=None``: not checked). ``prefixed``: the message starts with ``"<field>: "``, as a request
    validation error's does (errors a route raises itself carry the field in ``field`` only)."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
        if prefixed:
            assert error["message"].startswith(f"{field}: "), error
    return error


# --- a real server, for what TestClient cannot send (a lying Content-Length, a chunked body) -------


@dataclass
class LiveServer:
    port: int

    def exchange(self, head: bytes, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes, float]:
        """Send raw ``head`` + ``body`` (keeping the connection open) and read until the server closes
        or a full response arrives; returns (status, raw response, seconds until the status line)."""
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(head + body)
            received = b""
            first_at: float | None = None
            while True:
                try:
                    part = sock.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not part:
                    break
                if first_at is None:
                    first_at = time.monotonic() - started
                received += part
                if _complete(received):
                    break
        assert received, "no response before the timeout"
        status = int(received.split(b" ", 2)[1])
        return status, received, first_at if first_at is not None else timeout


def _complete(raw: bytes) -> bool:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip())
    return False


@pytest.fixture
def live_server() -> Iterator[Callable[[FastAPI], LiveServer]]:
    """``live_server(app)``: the app under uvicorn on a free port, in a thread, stopped at teardown."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> LiveServer:
        port = free_ports(1)[0]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return LiveServer(port)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=5)
