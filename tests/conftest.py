"""Shared fixtures: real media (fetched by tools/fetch_media.sh) and one detector per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy.engine import Engine

from deployments.detector import Detector
from models.registry import get_model
from store.archive import Archive
from store.db import _dispose_engines, open_engine
from store.keys import KeyStore
from store.tasks import TaskStore

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
