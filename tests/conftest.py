"""Shared fixtures: real media (fetched by tools/fetch_media.sh) and one detector per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy.engine import Engine

from models.registry import get_model
from models.runtime.detector import Detector
from store.archive import Archive
from store.db import _dispose_engines, open_engine
from store.keys import KeyStore
from store.objects import ObjectStore
from store.tasks import TaskStore
from tests.chroma import chroma_server, chroma_settings  # noqa: F401 - session fixtures
from visiongrid.s3_server import free_ports, start_local_s3, stop_local_s3
from visiongrid.settings import Settings

MEDIA_DIR = Path(__file__).resolve().parent.parent / ".cache" / "media"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """The real photos and clips. Missing media is a setup error, not a reason to skip."""
    if not (MEDIA_DIR / "vtest.avi").exists():
        pytest.fail(f"real test media missing in {MEDIA_DIR}: run `bash tools/fetch_media.sh` (scripts/test.sh does)")
    return MEDIA_DIR


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector(get_model("centernet"), intra_op_threads=2)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file per test (migrated by open_engine)."""
    return f"sqlite:///{tmp_path / 'db' / 'visiongrid.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield open_engine(db_url)
    _dispose_engines()


@pytest.fixture
def tasks(engine: Engine) -> TaskStore:
    return TaskStore(engine)


@pytest.fixture
def archive(engine: Engine) -> Archive:
    return Archive(engine)


@pytest.fixture
def keys(engine: Engine) -> KeyStore:
    return KeyStore(engine)


@pytest.fixture(scope="session")
def s3_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real local S3 server (SeaweedFS) on free ports, with the bucket created; stopped at session end."""
    defaults = Settings()
    port = free_ports(1)[0]
    proc = start_local_s3(tmp_path_factory.mktemp("s3"), port, defaults.s3_access_key, defaults.s3_secret_key)
    try:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("s3-data"),
            s3_endpoint_url=f"http://127.0.0.1:{port}",
            s3_local_server=False,
            s3_bucket="visiongrid-test",
        )
        ObjectStore(settings).ensure_bucket()
        yield settings
    finally:
        stop_local_s3(proc)
