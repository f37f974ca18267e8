"""The video API end to end over HTTP on a real Ray Serve cluster with the real detector."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.sse import Event, parse, without_comments

TERMINAL = {"succeeded", "failed", "cancelled"}


def submit(service: Service, url: str, key: str | None = None, **input_fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": [{"type": "video_url", "url": url, **input_fields}],
        "steps": [{"model": "detect", "parameters": {"classes": ["pedestrian"]}}],
        "model": "visiongrid-local",
    }
    with service.client(key) as client:
        response = client.post("/v1/video/process", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/video/tasks/{response.json()['id']}"
    created: dict[str, Any] = response.json()
    return created


def wait_terminal(service: Service, task_id: str, key: str | None = None, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with service.client(key) as client:
        while time.monotonic() < deadline:
            task: dict[str, Any] = client.get(f"/v1/video/tasks/{task_id}").json()
            if task["status"] in TERMINAL:
                return task
            time.sleep(0.1)
    raise AssertionError(f"task {task_id} not terminal after {timeout}s")


def read_stream(service: Service, task_id: str, headers: dict[str, str] | None = None, params: Any = None) -> bytes:
    with service.client() as client:
        response = client.get(f"/v1/video/tasks/{task_id}/stream", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"].startswith("no-cache")
    assert response.headers["x-accel-buffering"] == "no"
    return response.content


def data_events(raw: bytes) -> list[Event]:
    return [event for event in parse(raw) if not event.comment]


@pytest.fixture(scope="module")
def walk_task(service: Service) -> dict[str, Any]:
    created = submit(service, f"{service.media_url}/walk.mp4", sampling={"mode": "interval", "value": 1})
    assert created["id"].startswith("vt_") and created["status"] == "pending"
    assert created["stream_url"] == f"/v1/video/tasks/{created['id']}/stream"
    task = wait_terminal(service, created["id"])
    assert task["status"] == "succeeded", task
    return task


def test_chunks_follow_the_contract_and_agree_with_results(service: Service, walk_task: dict[str, Any]) -> None:
    raw = read_stream(service, walk_task["id"])
    events = data_events(raw)
    assert events[-1].data == "[DONE]"
    chunks = [event.json() for event in events[:-1]]
    frames, terminal = chunks[:-1], chunks[-1]
    assert len(frames) == 20, "one chunk per processed frame"
    assert frames[0]["model"] == "visiongrid-local" and "model" not in frames[1]
    indices = [chunk["stream_info"]["frame_index"] for chunk in frames]
    assert indices == sorted(indices) == list(range(20))
    track_ids = set()
    for position, chunk in enumerate(frames):
        assert chunk["object"] == "mm.pipeline.chunk" and chunk["id"] == walk_task["id"]
        assert chunk["finish_reason"] is None
        info = chunk["stream_info"]
        assert info["total_frames"] == 20 and info["fps"] == pytest.approx(10)
        assert info["decoded_frames"] == position + 1 and info["dropped_frames"] == 0
        assert isinstance(info["elapsed_ms"], int) and info["timestamp_ms"] == pytest.approx(100 * position, abs=1)
        for target in chunk["delta"]["results"][0]["targets"]:
            assert target["class"] == "pedestrian"
            assert set(target["roi"]) == {"left", "top", "width", "height"}
            assert all(isinstance(value, int) for value in target["roi"].values())
            track_ids.add(target["track_id"])
    assert track_ids == {1}, "the walking person keeps one track id"
    assert terminal["finish_reason"] == "stop" and terminal["usage"]["processed_frames"] == 20
    with service.client() as client:
        result = client.get(f"/v1/video/tasks/{walk_task['id']}/results").json()
    assert result["object"] == "mm.pipeline.result" and result["model"] == "visiongrid-local"
    (track,) = result["tracks"]
    seen = sum(1 for chunk in frames for t in chunk["delta"]["results"][0]["targets"] if t["track_id"] == 1)
    assert track["frames_seen"] == seen and track["class"] == "pedestrian"
    assert (track["first_frame"], track["last_frame"]) == (0, 19)


def test_event_ids_are_byte_offsets_and_replay_resumes_exactly(service: Service, walk_task: dict[str, Any]) -> None:
    raw = without_comments(read_stream(service, walk_task["id"]))
    events = data_events(raw)
    for event in events:
        assert event.id == str(event.end), "each id is the byte offset just after its event"
    middle = events[7].end
    assert without_comments(read_stream(service, walk_task["id"], params={"offset": middle})) == raw[middle:]
    by_header = read_stream(service, walk_task["id"], headers={"Last-Event-ID": str(middle)})
    assert without_comments(by_header) == raw[middle:]
    assert read_stream(service, walk_task["id"], params={"offset": len(raw)}) == b""


def test_task_view_reports_progress_usage_and_the_request(service: Service, walk_task: dict[str, Any]) -> None:
    with service.client() as client:
        plain = client.get(f"/v1/video/tasks/{walk_task['id']}").json()
        echoed = client.get(f"/v1/video/tasks/{walk_task['id']}", params={"include": "request"}).json()
    assert plain["progress"]["processed_frames"] == 20 and plain["progress"]["percent"] == 100.0
    assert plain["usage"]["processed_frames"] == 20 and plain["finish_reason"] == "stop"
    assert plain["created_at"] <= plain["started_at"] <= plain["finished_at"]
    assert "request" not in plain
    assert echoed["request"]["input"][0]["url"].endswith("/walk.mp4")


def test_live_reconnect_mid_run_returns_exactly_the_remaining_bytes(service: Service) -> None:
    created = submit(service, f"{service.media_url}/vtest.avi", sampling={"mode": "fps", "value": 10}, max_frames=40)
    first_part = b""
    with (
        service.client() as client,
        client.stream("GET", f"/v1/video/tasks/{created['id']}/stream") as response,
    ):
        for piece in response.iter_bytes():
            first_part += piece
            if len(data_events(first_part)) >= 3:
                break
    first_part = without_comments(first_part)
    resume_at = data_events(first_part)[2].end
    task_status = httpx.get(
        f"{service.base_url}/v1/video/tasks/{created['id']}", headers={"X-API-Key": service.key_a}
    ).json()["status"]
    rest = without_comments(read_stream(service, created["id"], headers={"Last-Event-ID": str(resume_at)}))
    full = without_comments(read_stream(service, created["id"]))
    assert task_status in {"running", "pending"}, "the reconnect happened while the task was live"
    assert first_part[:resume_at] + rest == full
    assert data_events(full)[-1].data == "[DONE]"
    assert data_events(full)[-2].json()["finish_reason"] == "max_frames"


def test_cancel_mid_run_ends_cancelled_within_a_chunk(service: Service) -> None:
    created = submit(service, f"{service.media_url}/vtest.avi", sampling={"mode": "interval", "value": 1})
    with service.client() as client:
        while client.get(f"/v1/video/tasks/{created['id']}").json()["progress"]["processed_frames"] < 3:
            time.sleep(0.05)
        response = client.post(f"/v1/video/tasks/{created['id']}/cancel")
        assert response.status_code in (200, 202) and response.json()["status"] in ("cancelling", "cancelled")
        frames_at_cancel = response.json()["progress"]["processed_frames"]
    task = wait_terminal(service, created["id"])
    assert task["status"] == "cancelled" and task["finish_reason"] == "cancelled"
    chunks = [e.json() for e in data_events(read_stream(service, created["id"]))[:-1]]
    assert chunks[-1]["finish_reason"] == "cancelled"
    frame_chunks = len(chunks) - 1
    # heartbeat 0.2 s at ~30 frames/s: the runner stops within a few frames of the request
    assert frame_chunks - frames_at_cancel <= 15
    with service.client() as client:
        late = client.get(f"/v1/video/tasks/{created['id']}/results")
    assert late.status_code == 404 and late.json()["error"]["code"] == "task_not_succeeded"
    assert late.json()["error"]["status"] == "cancelled"


def test_a_killed_runner_is_reaped_to_failed_and_its_stream_ends(service: Service) -> None:
    from ray import serve

    created = submit(service, f"{service.media_url}/vtest.avi", sampling={"mode": "interval", "value": 1})
    with service.client() as client:
        while client.get(f"/v1/video/tasks/{created['id']}").json()["status"] != "running":
            time.sleep(0.05)
    worker = serve.get_deployment_handle("TaskWorker", app_name="visiongrid")
    for _ in range(20):  # find the replica running it (one replica in tests)
        if created["id"] in worker.running_tasks.remote().result():
            break
        time.sleep(0.05)
    os.kill(worker.pid.remote().result(), signal.SIGKILL)
    task = wait_terminal(service, created["id"], timeout=60)
    assert task["status"] == "failed" and task["error"]["code"] == "runner_lost"
    raw = read_stream(service, created["id"])
    events = data_events(raw)
    assert len(events) >= 2, raw
    assert events[-1].data == "[DONE]" and events[-2].json()["finish_reason"] == "error"
    # the restarted worker keeps serving new tasks
    after = submit(service, f"{service.media_url}/walk.mp4", max_frames=3, sampling={"mode": "interval", "value": 1})
    assert wait_terminal(service, after["id"], timeout=60)["status"] == "succeeded"


def test_unreachable_and_undecodable_media_fail_with_a_code(service: Service) -> None:
    missing = submit(service, f"{service.media_url}/nope.mp4")
    text = submit(service, f"{service.media_url}/notes.txt")
    assert wait_terminal(service, missing["id"])["error"]["code"] == "media_unreachable"
    failed = wait_terminal(service, text["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "not_a_video"
    events = data_events(read_stream(service, text["id"]))
    assert events[-1].data == "[DONE]" and events[-2].json()["error"]["code"] == "not_a_video"


def test_base64_input_runs(service: Service, media_dir: Any, tmp_path: Any) -> None:
    import base64

    from tests.clips import write_walking_person_clip

    clip = write_walking_person_clip(media_dir, tmp_path / "short.mp4", frames=5)
    body = {
        "input": [
            {
                "type": "video_base64",
                "data": base64.b64encode(clip.read_bytes()).decode(),
                "max_frames": 5,
                "sampling": {"mode": "interval", "value": 1},
            }
        ],
        "steps": [{"model": "detect"}],
    }
    with service.client() as client:
        response = client.post("/v1/video/process", json=body)
    assert response.status_code == 202, response.text
    created = response.json()
    task = wait_terminal(service, created["id"])
    assert task["status"] == "succeeded" and task["usage"]["processed_frames"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": [], "steps": [{"model": "detect"}]}, "input"),
        (
            {"input": [{"type": "video_url", "url": "http://x/a.mp4"}] * 2, "steps": [{"model": "detect"}]},
            "input",
        ),
        ({"input": [{"type": "video_url"}], "steps": [{"model": "detect"}]}, "input[0]"),
        (
            {"input": [{"type": "video_url", "url": "file:///etc/passwd"}], "steps": [{"model": "detect"}]},
            "input[0].url",
        ),
        (
            {
                "input": [{"type": "video_url", "url": "http://x/a.mp4", "sampling": {"mode": "fps", "value": -1}}],
                "steps": [{"model": "detect"}],
            },
            "input[0].sampling.value",
        ),
        (
            {"input": [{"type": "video_url", "url": "http://x/a.mp4"}], "steps": [{"model": "telepathy"}]},
            "steps[0].model",
        ),
        (
            {
                "input": [{"type": "video_url", "url": "http://x/a.mp4"}],
                "steps": [{"model": "detect", "parameters": {"classes": ["unicorn"]}}],
            },
            "steps[0].parameters.classes",
        ),
        (
            {"input": [{"type": "video_url", "url": "http://x/a.mp4", "max_frame": 3}], "steps": [{"model": "detect"}]},
            "input[0].max_frame",
        ),
    ],
)
def test_bad_requests_get_400_naming_the_field(service: Service, body: dict[str, Any], field: str) -> None:
    with service.client() as client:
        response = client.post("/v1/video/process", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["code"] and error["message"]
    if field == "steps[0].model":
        assert "detect" in error["message"], "lists the known step models"


def test_missing_or_bad_keys_get_401_and_x_api_key_works(service: Service, walk_task: dict[str, Any]) -> None:
    path = f"/v1/video/tasks/{walk_task['id']}"
    assert httpx.get(service.base_url + path).status_code == 401
    bad = httpx.get(service.base_url + path, headers={"Authorization": "Bearer vg_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    assert httpx.get(service.base_url + path, headers={"X-API-Key": service.key_a}).status_code == 200


def test_projects_are_isolated(service: Service, walk_task: dict[str, Any]) -> None:
    with service.client(service.key_b) as other:
        for method, suffix in [
            ("GET", ""),
            ("GET", "/stream"),
            ("GET", "/results"),
            ("POST", "/cancel"),
            ("DELETE", ""),
        ]:
            response = other.request(method, f"/v1/video/tasks/{walk_task['id']}{suffix}")
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        assert walk_task["id"] not in {task["id"] for task in other.get("/v1/video/tasks").json()["data"]}


def test_list_filters_and_pages(service: Service, walk_task: dict[str, Any]) -> None:
    with service.client() as client:
        everything = client.get("/v1/video/tasks", params={"limit": 100}).json()
        assert everything["object"] == "list" and walk_task["id"] in {t["id"] for t in everything["data"]}
        succeeded = client.get("/v1/video/tasks", params={"status": "succeeded"}).json()["data"]
        assert succeeded and all(task["status"] == "succeeded" for task in succeeded)
        first = client.get("/v1/video/tasks", params={"limit": 1}).json()
        second = client.get("/v1/video/tasks", params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert first["next_cursor"] and first["data"][0]["id"] != second["data"][0]["id"]
        future = client.get("/v1/video/tasks", params={"from": "2999-01-01T00:00:00Z"}).json()
        assert future["data"] == []
        assert client.get("/v1/video/tasks", params={"status": "sleeping"}).json()["error"]["field"] == "status"
        assert client.get("/v1/video/tasks", params={"from": "yesterday"}).status_code == 400


def test_burst_queues_fifo_and_delete_removes_everything(service: Service) -> None:
    ids = [
        submit(service, f"{service.media_url}/vtest.avi", sampling={"mode": "interval", "value": 1})["id"]
        for _ in range(3)
    ]
    with service.client() as client:
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [client.get(f"/v1/video/tasks/{task_id}").json()["status"] for task_id in ids]
            if statuses[:2] == ["running", "running"]:
                break
            time.sleep(0.05)
        assert statuses == ["running", "running", "pending"], "max_running_tasks=2 keeps the third queued"
        with client.stream("GET", f"/v1/video/tasks/{ids[2]}/stream") as response:
            first = next(response.iter_bytes())
        assert first.startswith(b":"), "a pending task's stream sends keep-alive comments"
        for task_id in ids:
            assert client.delete(f"/v1/video/tasks/{task_id}").status_code == 204
            assert client.get(f"/v1/video/tasks/{task_id}").status_code == 404
            assert client.get(f"/v1/video/tasks/{task_id}/stream").status_code == 404


def test_metrics_are_exported_through_ray(service: Service, walk_task: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{service.settings.metrics_export_port}/metrics").text
        wanted = ("visiongrid_frames_processed_total", "visiongrid_tasks{", "visiongrid_queue_depth")
        if all(name in text for name in wanted):  # "visiongrid_tasks" alone matches the finished counter too
            break
        time.sleep(1)
    assert "visiongrid_frames_processed_total" in text
    assert "visiongrid_step_latency_seconds" in text
    assert "visiongrid_queue_depth" in text


def test_restarting_the_ingress_does_not_touch_running_tasks(service: Service) -> None:
    import psutil

    created = submit(
        service, f"{service.media_url}/vtest.avi", sampling={"mode": "interval", "value": 1}, max_frames=60
    )
    with service.client() as client:
        while client.get(f"/v1/video/tasks/{created['id']}").json()["status"] != "running":
            time.sleep(0.05)
    (ingress,) = [
        process
        for process in psutil.process_iter(["cmdline"])
        if "ServeReplica:visiongrid:Ingress" in " ".join(process.info["cmdline"] or [])
    ]
    ingress.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Serve replaces the replica; the API answers again
        try:
            if httpx.get(f"{service.base_url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    task = wait_terminal(service, created["id"])
    assert task["status"] == "succeeded" and task["usage"]["processed_frames"] == 60
