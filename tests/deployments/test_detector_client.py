"""Where the detector runs: ``detector_placement`` resolved, and the in-process client giving what the
plain detector gives, batching concurrent callers with the deployment's own batcher."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from deployments import scaling
from deployments.detector_client import InProcessDetector
from deployments.scaling import detector_in_process, replica_options
from models.runtime.detector import Detector
from tests.conftest import read_rgb
from visiongrid.settings import Scaling, Settings


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scaling, "gpu_visible", lambda: False)


@pytest.mark.usefixtures("no_gpu")
def test_auto_runs_the_detector_in_process_on_cpu_and_as_a_deployment_for_a_gpu() -> None:
    assert detector_in_process(Settings())
    assert not detector_in_process(Settings(scaling_detector=Scaling(min_replicas=1, max_replicas=2, num_gpus=0.5)))
    assert not detector_in_process(Settings(backend_overrides={"detector": "cuda"}))
    assert not detector_in_process(Settings(inference_backend="cuda"))
    assert detector_in_process(Settings(inference_backend="cuda", backend_overrides={"detector": "cpu"}))
    assert not detector_in_process(Settings(detector_placement="deployment"))
    assert detector_in_process(Settings(detector_placement="in_process", inference_backend="cuda"))


def test_auto_keeps_the_deployment_where_this_machine_has_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scaling, "gpu_visible", lambda: True)
    assert not detector_in_process(Settings())


@pytest.mark.usefixtures("no_gpu")
def test_an_in_process_detector_leaves_its_deployment_at_zero_unless_its_scaling_was_set() -> None:
    idle = replica_options(Settings(), "detector")["autoscaling_config"]
    assert (idle["min_replicas"], idle["initial_replicas"]) == (0, 0)
    separate = replica_options(Settings(detector_placement="deployment"), "detector")["autoscaling_config"]
    assert (separate["min_replicas"], separate["initial_replicas"]) == (1, 1)
    chosen = Settings(scaling_detector=Scaling(min_replicas=2, max_replicas=3))
    assert detector_in_process(chosen)
    assert replica_options(chosen, "detector")["autoscaling_config"]["min_replicas"] == 2


def test_in_process_detections_equal_the_plain_detector_and_concurrent_calls_share_model_calls(
    detector: Detector, media_dir: Path
) -> None:
    photo = read_rgb(media_dir / "dog.jpg")
    settings = Settings(detector_batch_wait_s=0.05, detector_max_batch_size=4, detector_num_cpus=2)

    async def run() -> tuple[list[object], dict[int, int], dict[str, str]]:
        client = InProcessDetector(settings)
        found = await asyncio.gather(
            *[client.detect(photo, model=None, min_confidence=0.3, class_filter=None) for _ in range(3)]
        )
        return list(found), await client.batch_stats(), await client.backend_info()

    found, stats, info = asyncio.run(run())
    expected = detector.detect([photo], min_confidence=0.3)[0]
    for result in found:
        np.testing.assert_allclose(result.xyxy, expected.xyxy, atol=1e-3)  # type: ignore[attr-defined]
        assert result.class_id.tolist() == expected.class_id.tolist()  # type: ignore[attr-defined]
    assert stats == {3: 1}, "three concurrent callers, one model call"
    assert info == {"backend": "cpu", "runtime": "onnxruntime-cpu", "placement": "in_process"}
