"""Status on a real Ray Serve cluster: capacity rises while tasks run and falls after, with Ray Serve's
own per-deployment numbers; the finished tasks become latency measurements; readiness checks the real
database, S3 server and Chroma server."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Service
from tests.e2e.test_video_api import submit, wait_terminal


def _capacity(service: Service) -> dict[str, Any]:
    with service.client() as client:
        response = client.get("/v1/status/capacity")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert 0.0 <= body["used_system_capacity"] <= 1.0
    return body


def test_capacity_rises_while_tasks_run_and_falls_after(service: Service) -> None:
    idle = _capacity(service)
    assert idle["source"] == "ray_serve", idle
    names = {item["name"]: item for item in idle["deployments"]}
    assert "Ingress" not in names, "the ingress (open SSE streams) is not model capacity"
    assert names["DetectorDeployment"]["replicas"] >= 1 and names["DetectorDeployment"]["max_ongoing_requests"] >= 1
    assert idle["task_slots"] == service.settings.max_running_tasks
    url = f"{service.media_url}/vtest.avi"
    created = [submit(service, url, sampling={"mode": "fps", "value": 10}, max_frames=40) for _ in range(2)]

    peak: dict[str, Any] = idle
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = _capacity(service)
        if body["running_tasks"] > peak["running_tasks"]:
            peak = body
        if peak["running_tasks"] == 2:
            break
        time.sleep(0.05)
    assert peak["running_tasks"] == 2, peak
    assert peak["used_system_capacity"] == 1.0  # both of the cluster's task slots busy
    assert peak["used_system_capacity"] > idle["used_system_capacity"]

    for task in created:
        assert wait_terminal(service, task["id"])["status"] == "succeeded"
    after = _capacity(service)
    assert after["running_tasks"] == 0 and after["queue_depth"] == 0
    assert after["used_system_capacity"] < peak["used_system_capacity"]

    with service.client() as client:
        latency = client.get("/v1/status/latency", params={"media_type": "video"}).json()
    assert latency["unit"] == "second" and latency["sample_count"] >= 2, latency
    assert latency["latency_ms_per_unit"] > 0 and latency["units_measured"] > 0


def test_readyz_checks_the_real_dependencies(service: Service) -> None:
    with service.client() as client:
        response = client.get("/readyz", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"database", "object_store", "vectors"} and all(c["ok"] for c in checks.values())
