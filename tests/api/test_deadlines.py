"""``Max-Processing-Time`` on task creation: a malformed value is a 400 naming the header (nothing
stored), ``0`` is no deadline, a value above the cap is clamped and the task view says so; every 202
carries ``Location``."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, ApiFactory, assert_error
from tests.api.test_vision_routes import png

HEADER = "Max-Processing-Time"
VIDEO = {
    "input": [{"type": "video_base64", "data": base64.b64encode(b"\x00" * 64).decode()}],
    "steps": [{"model": "detect"}],
}


def _batch() -> dict[str, object]:
    return {"images": [{"data_base64": png()}]}


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "inf", "NaN", "1.5.2", "", " ", "0x10", "1" * 13, "10s"])
@pytest.mark.parametrize("route", ["/v1/video/process", "/v1/vision/batch"])
def test_a_malformed_value_is_a_400_naming_the_header(client: TestClient, api: Api, route: str, value: str) -> None:
    body = VIDEO if route.endswith("process") else _batch()
    response = client.post(route, json=body, headers={HEADER: value})
    assert_error(response, 400, "invalid_request", HEADER)
    assert api.stored() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("value", "seconds", "clamped"),
    [("30", 30.0, False), ("2.5", 2.5, False), ("0", None, False), ("86400", 60.0, True)],
)
def test_the_deadline_is_kept_and_clamped_to_the_cap(
    make_api: ApiFactory, value: str, seconds: float | None, clamped: bool
) -> None:
    api = make_api(max_processing_time_cap_s=60.0)
    with TestClient(api.app, headers=api.headers()) as client:
        created = client.post("/v1/video/process", json=VIDEO, headers={HEADER: value})
        assert created.status_code == 202, created.text
        assert created.headers["Location"] == f"/v1/video/tasks/{created.json()['id']}"
        view = client.get(created.headers["Location"]).json()
        assert (view["max_processing_time_s"], view["max_processing_time_clamped"]) == (seconds, clamped)
        batch = client.post("/v1/vision/batch", json=_batch(), headers={HEADER: value})
        assert batch.status_code == 202, batch.text
        batch_view = client.get(batch.headers["Location"]).json()
        assert (batch_view["max_processing_time_s"], batch_view["max_processing_time_clamped"]) == (seconds, clamped)


def test_without_the_header_there_is_no_deadline(client: TestClient) -> None:
    created = client.post("/v1/video/process", json=VIDEO)
    view = client.get(created.headers["Location"]).json()
    assert view["max_processing_time_s"] is None and view["max_processing_time_clamped"] is False


def test_a_202_cancel_carries_location(client: TestClient, api: Api) -> None:
    task = api.services.tasks.create(api.project, {"steps": []}, None)
    while (claimed := api.services.tasks.claim_next("r", max_running=1000, max_running_per_project=1000)) is not None:
        if claimed.id == task.id:
            break  # the module's database holds other tests' pending tasks too
    assert claimed is not None and claimed.id == task.id
    response = client.post(f"/v1/video/tasks/{task.id}/cancel")
    assert response.status_code == 202 and response.headers["Location"] == f"/v1/video/tasks/{task.id}"
