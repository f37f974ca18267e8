"""Webhooks and the lifecycle events stream on the real cluster: a project webhook and a per-request
webhook receive a real task's events, signed, from the workers' delivery loop; the events stream
replays them with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_video_api import wait_terminal
from tests.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def test_a_task_is_delivered_to_its_webhooks_and_replayed_by_the_events_stream(
    service: Service, receiver: Receiver
) -> None:
    with service.client() as client:
        created = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["task.started", "task.succeeded"]})
        assert created.status_code == 201, created.text
        hook = created.json()
        receiver.secrets.append(hook["secret"])
        body = {
            "input": [{"type": "video_url", "url": f"{service.media_url}/walk.mp4", "max_frames": 5}],
            "steps": [{"model": "detect"}],
            "webhook": {"url": receiver.url, "secret": "per-request-secret-123"},
        }
        receiver.secrets.append("per-request-secret-123")
        response = client.post("/v1/video/process", json=body)
        assert response.status_code == 202, response.text
        task_id = response.json()["id"]
    assert wait_terminal(service, task_id)["status"] == "succeeded"
    got = receiver.wait_for(3, timeout=20)
    mine = [r for r in got if json.loads(r.body)["task_id"] == task_id]
    assert len(mine) == 3, [(r.headers.get("x-webhook-event"), json.loads(r.body)["task_id"]) for r in got]
    assert all(r.signature_ok for r in mine)
    by_hook = {(r.headers["x-webhook-id"], r.headers["x-webhook-event"]) for r in mine}
    assert (hook["id"], "task.started") in by_hook and (hook["id"], "task.succeeded") in by_hook
    per_request = [r for r in mine if r.headers["x-webhook-id"] != hook["id"]]
    assert [r.headers["x-webhook-event"] for r in per_request] == ["task.succeeded"]
    with service.client() as client:
        deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
        assert {d["status"] for d in deliveries if d["event_type"].startswith("task.")} == {"delivered"}
        client.delete(f"/v1/webhooks/{hook['id']}")
    events = _replay(service, task_id, 2)
    assert [e["event_type"] for e in events] == ["task.started", "task.succeeded"]


def _replay(service: Service, task_id: str, count: int) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []
    headers = {"Authorization": f"Bearer {service.key_a}", "Last-Event-ID": "0"}
    url = f"{service.base_url}/v1/processing/events/stream"
    with httpx.stream("GET", url, params={"task_id": task_id}, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if len(got) == count:
                    break
    return got
