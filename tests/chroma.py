"""A real Chroma server for tests (the session fixture ``chroma_settings``), started from its own venv.

``tests/conftest.py`` imports the fixtures, so every test module can ask for them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from visiongrid.chroma_server import start_local_chroma, stop_local_chroma
from visiongrid.s3_server import free_ports
from visiongrid.settings import Settings


def chroma_test_settings(data_dir: Path, port: int | None = None) -> Settings:
    """Settings for a local Chroma on ``port`` (a free one if None) keeping its data in ``data_dir``."""
    port = port if port is not None else free_ports(1)[0]
    return Settings(data_dir=data_dir, chroma_url=f"http://127.0.0.1:{port}", chroma_timeout_s=5.0)


class ChromaServer:
    """One real Chroma server a test session owns, which a test may stop and start again (same port,
    same data) to check that the service degrades to 503 and recovers."""

    def __init__(self, data_dir: Path) -> None:
        self.start_settings = chroma_test_settings(data_dir)
        #: what clients use: the server is owned here, so nobody else starts one
        self.settings = self.start_settings.model_copy(update={"chroma_local_server": False})
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._proc is None, "already running"
        proc = start_local_chroma(self.start_settings)
        assert proc is not None, f"something already answers on {self.start_settings.chroma_url}"
        self._proc = proc

    def stop(self) -> None:
        if self._proc is not None:
            stop_local_chroma(self._proc)
            self._proc = None


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real local Chroma server on a free port in a temp dir; stopped at session end."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chroma_settings(chroma_server: ChromaServer) -> Settings:
    """Settings pointing at the session's Chroma server (``chroma_local_server=False``)."""
    return chroma_server.settings
