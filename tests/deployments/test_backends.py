"""Every model deployment chooses its backend at start-up and reports it; forcing ``cuda`` where no GPU
is visible stops the replica with a clear error instead of silently running on CPU."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.embedder import EmbedderDeployment
from deployments.face import FaceDeployment
from deployments.ocr import OCRDeployment
from deployments.text_embedder import TextEmbedderDeployment
from models.runtime.backend import BackendUnavailableError, gpu_visible
from visiongrid.settings import Settings

pytestmark = pytest.mark.skipif(gpu_visible(), reason="asserts the CPU choice; the GPU machine picks cuda")


def _plain(deployment: Any, settings: Settings) -> Any:
    return deployment.func_or_class(settings)


@pytest.mark.parametrize("deployment", [EmbedderDeployment, FaceDeployment, OCRDeployment])
def test_onnx_deployments_run_on_cpu_without_a_gpu(deployment: Any) -> None:
    import asyncio

    info = asyncio.run(_plain(deployment, Settings()).backend_info())
    assert info == {"backend": "cpu", "runtime": "onnxruntime-cpu"}


def test_the_text_embedder_says_it_is_numpy_on_cpu() -> None:
    import asyncio

    info = asyncio.run(_plain(TextEmbedderDeployment, Settings()).backend_info())
    assert info == {"backend": "cpu", "runtime": "numpy"}


@pytest.mark.parametrize(
    ("deployment", "name"), [(EmbedderDeployment, "embedder"), (FaceDeployment, "face"), (OCRDeployment, "ocr")]
)
def test_forcing_cuda_without_a_gpu_fails_the_replica_start(deployment: Any, name: str) -> None:
    with pytest.raises(BackendUnavailableError, match="no NVIDIA GPU"):
        _plain(deployment, Settings(backend_overrides={name: "cuda"}))
