"""The status family in-process: latency from what finished tasks recorded, capacity from live counts,
readiness against the real database, S3 server and Chroma server (and against endpoints where nothing
listens), and ``/v1/status`` per project.

Tasks are taken through the real stores the way a runner takes them (create → claim → archive the
terminal chunk and ``[DONE]`` → finish), with the chunk text the pipeline itself writes. This module's
database is its own (``stores`` is module-scoped), so the cluster-wide figures are compared as deltas.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contract.status import DeploymentLoad
from pipelines.chunks import DONE_DATA, sse_event, terminal_chunk
from pipelines.decode import DecodeStats
from store.records import TaskKind, TaskRecord
from tests.api.conftest import Api, ApiFactory, assert_error
from visiongrid.s3_server import free_ports
from visiongrid.settings import Settings

RUNNER = "test-runner"


def _claim(api: Api, task: TaskRecord) -> TaskRecord:
    claimed = api.services.tasks.claim_next(RUNNER, max_running=100, max_running_per_project=100)
    assert claimed is not None and claimed.id == task.id, claimed
    return claimed


def _finish_video(api: Api, *, frames: int, dropped: int, fps: float, ms: int, status: str = "succeeded") -> str:
    """A video task that went through ``frames + dropped`` source frames at ``fps`` in ``ms`` ms."""
    task = _claim(api, api.services.tasks.create(api.project, {"input": []}, None))
    usage = {"processed_frames": frames, "processing_time_ms": ms}
    stats = DecodeStats(decoded_frames=frames, dropped_frames=dropped, fps=fps, width=64, height=48)
    text = terminal_chunk(task.id, finish_reason="stop", usage=usage, stats=stats, elapsed_ms=ms, frame_index=frames)
    end = api.services.archive.append(task.id, sse_event(text, 0))
    api.services.archive.append(task.id, sse_event(DONE_DATA, end))
    assert api.services.tasks.finish(task.id, RUNNER, status=status, finish_reason="stop", usage=usage)
    return task.id


def _finish_batch(api: Api, *, images: int, ms: int) -> str:
    task = api.services.tasks.create(api.project, {"images": []}, None, kind=TaskKind.IMAGE_BATCH)
    _claim(api, task)
    usage = {"processed_frames": images, "processing_time_ms": ms}
    assert api.services.tasks.finish(task.id, RUNNER, status="succeeded", finish_reason="stop", usage=usage)
    return task.id


def _latency(client: TestClient, media_type: str) -> dict[str, Any]:
    response = client.get("/v1/status/latency", params={"media_type": media_type})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _total_ms(body: dict[str, Any]) -> float:
    return float(body["latency_ms_per_unit"] or 0.0) * float(body["units_measured"])


def test_latency_without_samples_is_null_with_count_zero(make_api: ApiFactory) -> None:
    api = make_api(latency_window_s=0.001)  # nothing finished in the last millisecond
    with TestClient(api.app, headers=api.headers()) as client:
        for media_type, unit in (("video", "second"), ("image", "image")):
            body = _latency(client, media_type)
            assert body == {
                "object": "status.latency",
                "media_type": media_type,
                "unit": unit,
                "latency_ms_per_unit": None,
                "sample_count": 0,
                "units_measured": 0.0,
                "window_s": 0.001,
            }


def test_video_latency_is_ms_per_second_of_video(client: TestClient, api: Api) -> None:
    before = _latency(client, "video")
    _finish_video(api, frames=40, dropped=10, fps=25.0, ms=1000)  # 2 s of video in 1 s
    _finish_video(api, frames=30, dropped=0, fps=10.0, ms=3000)  # 3 s of video in 3 s
    _finish_video(api, frames=99, dropped=0, fps=10.0, ms=99, status="failed")  # not a measurement
    after = _latency(client, "video")
    assert after["sample_count"] - before["sample_count"] == 2
    assert math.isclose(after["units_measured"] - before["units_measured"], 5.0, abs_tol=1e-6)
    assert math.isclose(_total_ms(after) - _total_ms(before), 4000.0, rel_tol=1e-3)
    if before["sample_count"] == 0:
        assert after["latency_ms_per_unit"] == 800.0  # 4000 ms over 5 s


def test_image_latency_is_ms_per_image(client: TestClient, api: Api) -> None:
    before = _latency(client, "image")
    _finish_batch(api, images=4, ms=400)
    _finish_batch(api, images=1, ms=350)
    after = _latency(client, "image")
    assert after["sample_count"] - before["sample_count"] == 2
    assert math.isclose(after["units_measured"] - before["units_measured"], 5.0)
    assert math.isclose(_total_ms(after) - _total_ms(before), 750.0, rel_tol=1e-3)
    if before["sample_count"] == 0:
        assert after["latency_ms_per_unit"] == 150.0


@pytest.mark.parametrize("params", [{}, {"media_type": "audio"}, {"media_type": ""}, {"media_type": "VIDEO"}])
def test_latency_needs_a_valid_media_type(client: TestClient, params: dict[str, str]) -> None:
    assert_error(client.get("/v1/status/latency", params=params), 400, "invalid_request", "media_type")


def test_capacity_counts_running_tasks_against_the_slots(make_api: ApiFactory) -> None:
    api = make_api(max_running_tasks=4)
    with TestClient(api.app, headers=api.headers()) as client:
        before = client.get("/v1/status/capacity").json()
        task = _claim(api, api.services.tasks.create(api.other, {"input": []}, None))  # another project's
        api.services.tasks.create(api.project, {"input": []}, None)  # pending: the queue, not the load
        during = client.get("/v1/status/capacity").json()
        assert api.services.tasks.finish(task.id, RUNNER, status="succeeded", finish_reason="stop", usage=None)
        after = client.get("/v1/status/capacity").json()
    assert during["object"] == "status.capacity" and during["source"] == "database" and during["deployments"] == []
    assert during["task_slots"] == 4
    assert during["running_tasks"] == before["running_tasks"] + 1  # cluster-wide: the other project's too
    assert during["queue_depth"] == before["queue_depth"] + 1
    for body in (before, during, after):
        assert body["used_system_capacity"] == min(1.0, body["running_tasks"] / 4)
    assert during["used_system_capacity"] > before["used_system_capacity"]
    assert after["running_tasks"] == before["running_tasks"]
    assert after["used_system_capacity"] == before["used_system_capacity"]


def test_capacity_takes_the_busiest_deployment_from_live_load(api: Api, client: TestClient) -> None:
    loads = [
        DeploymentLoad(
            name="DetectorDeployment", replicas=2, max_ongoing_requests=8, ongoing_requests=12, utilisation=0.75
        ),
        DeploymentLoad(name="OCRDeployment", replicas=1, max_ongoing_requests=16, ongoing_requests=None),
    ]
    api.services.live_load = lambda: loads  # what the ingress's Ray Serve query returns
    body = client.get("/v1/status/capacity").json()
    assert body["source"] == "ray_serve"
    assert [item["name"] for item in body["deployments"]] == ["DetectorDeployment", "OCRDeployment"]
    assert body["used_system_capacity"] == max(0.75, body["running_tasks"] / body["task_slots"])

    def down() -> list[DeploymentLoad]:
        raise ConnectionError("Serve controller unreachable")

    api.services.live_load = down
    fallback = client.get("/v1/status/capacity")
    assert fallback.status_code == 200 and fallback.json()["source"] == "database"


def test_latency_and_capacity_need_a_read_key(api: Api) -> None:
    _, search_key = api.services.keys.create(api.project, scopes=("search",))
    _, read_key = api.services.keys.create(api.project, scopes=("read",))
    with TestClient(api.app, raise_server_exceptions=False) as client:
        for path, params in (("/v1/status/latency", {"media_type": "image"}), ("/v1/status/capacity", {})):
            assert client.get(path, params=params, headers=api.headers(read_key)).status_code == 200
            refused = client.get(path, params=params, headers=api.headers(search_key))
            assert_error(refused, 403, "insufficient_scope")
            assert_error(client.get(path, params=params), 401, "unauthorized")


def test_status_counts_only_the_callers_project(client: TestClient, api: Api) -> None:
    api.services.tasks.create(api.project, {"input": []}, None)
    for _ in range(3):
        api.services.tasks.create(api.other, {"input": []}, None)
    mine = client.get("/v1/status").json()
    theirs = client.get("/v1/status", headers=api.headers(api.other_key)).json()
    assert (mine["project"], sum(mine["tasks"].values()), mine["queue_depth"]) == (api.project, 1, 1)
    assert (theirs["project"], sum(theirs["tasks"].values()), theirs["queue_depth"]) == (api.other, 3, 3)


def test_readyz_passes_with_every_dependency_up(make_api: ApiFactory, chroma_settings: Settings) -> None:
    api = make_api(chroma_url=chroma_settings.chroma_url)
    with TestClient(api.app) as client:  # no key: probes carry none
        response = client.get("/readyz")
        assert client.get("/healthz").json() == {"status": "ok"}
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "object_store", "vectors"}
    assert all(check["ok"] and check["error"] is None for check in body["checks"].values()), body


def test_readyz_names_what_failed(make_api: ApiFactory, chroma_settings: Settings) -> None:
    nowhere = f"http://127.0.0.1:{free_ports(1)[0]}"
    cases = {
        "vectors": {"chroma_url": nowhere},
        "object_store": {"s3_endpoint_url": nowhere, "chroma_url": chroma_settings.chroma_url},
    }
    for failing, overrides in cases.items():
        api = make_api(readiness_timeout_s=0.5, **overrides)
        with TestClient(api.app, raise_server_exceptions=False) as client:
            response = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # liveness does not depend on them
        error = assert_error(response, 503, "not_ready")
        assert error["failed"] == [failing], error
        assert failing in error["message"]
        assert error["checks"]["database"]["ok"] is True
        assert error["checks"][failing]["ok"] is False and error["checks"][failing]["error"]


def test_status_says_where_the_models_run(client: TestClient) -> None:
    compute = client.get("/v1/status").json()["compute"]
    assert compute == {"backend": "cpu", "runtime": "onnxruntime-cpu", "decoder": "pyav"}  # no GPU here
