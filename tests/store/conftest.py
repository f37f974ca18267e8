"""Fixtures for the store tests (the database and the stores come from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from visiongrid.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)
