"""The vision routes' error mapping, in-process (no Ray): a model failing on an image is a 500 naming the
step, every provider failing is a 502, and the replicas are not involved."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.engine import Engine

from api.app import create_app
from api.services import Services
from kernels.detections import Detections
from pipelines.local_models import LocalModels
from store.archive import Archive
from store.keys import KeyStore
from store.tasks import TaskStore
from visiongrid.settings import Settings


class BrokenModels(LocalModels):
    """Step models whose detector and OCR fail on every image."""

    async def detect(
        self, image: np.ndarray, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections:
        raise RuntimeError("the detector replica fell over")

    async def read_text(self, image: np.ndarray) -> Detections:
        raise MemoryError("ocr ran out of memory")


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path)
    keys = KeyStore(engine)
    _, key = keys.create("p")
    services = Services(settings, TaskStore(engine), Archive(engine), keys, models=BrokenModels(settings))
    with TestClient(create_app(services), headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(("path", "code"), [("/v1/vision/detect", "detector_error"), ("/v1/vision/ocr", "ocr_error")])
def test_a_failing_model_is_a_500_naming_the_step(client: TestClient, path: str, code: str) -> None:
    response = client.post(path, json={"image": {"base64": png()}})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == code and ("fell over" in error["message"] or "out of memory" in error["message"])


def test_bad_images_are_refused_before_any_model_runs(client: TestClient) -> None:
    response = client.post("/v1/vision/detect", json={"image": {"base64": base64.b64encode(b"GIF89a").decode()}})
    assert response.status_code == 400 and response.json()["error"]["field"] == "image.base64"
