"""Fixtures for the store tests: a fresh, migrated SQLite file per test and the stores on top of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from store.archive import Archive
from store.db import _dispose_engines, open_engine
from store.keys import KeyStore
from store.tasks import TaskStore
from visiongrid.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
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
