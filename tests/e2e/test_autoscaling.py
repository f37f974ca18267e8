"""Autoscaling on the real cluster: a deployment configured to scale to zero has no replica until its
first use, which waits for one (a cold start, not a timeout) and then finds what it should.

This module sorts first among the e2e tests, so the session's face deployment (``min_replicas: 0``,
see tests/e2e/conftest.py) has not been woken by another test yet.
"""

from __future__ import annotations

import base64
import io
import time

import httpx

from tests.e2e.conftest import Service


def _running(deployment: str) -> int:
    from ray import serve

    status = serve.status().applications["visiongrid"].deployments[deployment]
    return int(status.replica_states.get("RUNNING", 0))


def _astronaut() -> dict[str, dict[str, str]]:
    from PIL import Image
    from skimage import data as skimage_data

    buffer = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).save(buffer, "JPEG")
    return {"image": {"base64": base64.b64encode(buffer.getvalue()).decode()}}


def test_a_scaled_to_zero_deployment_wakes_on_first_use(service: Service) -> None:
    assert _running("FaceDeployment") == 0, "face should start scaled to zero"
    assert _running("DetectorDeployment") == 1
    started = time.monotonic()
    with service.client(timeout=120) as client:
        response = client.post("/v1/vision/describe", json=_astronaut())
    cold_start_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert any(target["class"] == "face" for target in response.json()["targets"]), response.json()["targets"]
    assert _running("FaceDeployment") == 1
    started = time.monotonic()
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {service.key_a}"}) as client:
        assert client.post("/v1/vision/describe", json=_astronaut()).status_code == 200
    warm_s = time.monotonic() - started
    print(f"\nface deployment: cold start {cold_start_s:.2f} s, warm request {warm_s:.2f} s")
    assert warm_s < cold_start_s
