"""The API half of benchmarks/run.py: end-to-end video tasks, sync detect latency, cold start.

Everything here talks HTTP only (httpx), so the same code measures a local service started by the
runner and a remote cluster given by ``--url``. Walls come from the server's own timestamps
(``created_at`` of the first task → last ``finished_at``), so polling slowly costs no accuracy and
16 pollers do not steal the CPU the tasks need.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("succeeded", "failed", "cancelled")


def call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request that waits out 429s (a remote cluster keeps its rate limits) and fails on the rest."""
    for _ in range(50):
        response = client.request(method, url, **kwargs)
        if response.status_code != 429:
            response.raise_for_status()
            return response
        time.sleep(min(5.0, float(response.headers.get("Retry-After", "1") or 1)))
    response.raise_for_status()
    return response


def parse_time(value: str) -> float:
    stamp = dt.datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def upload_media(client: httpx.Client, path: Path) -> str:
    """Put ``path`` into the caller's storage (presigned PUT) and return its ``storage://`` URL: the way
    to hand a remote cluster media it can read, where a loopback media server is out of its reach."""
    size = path.stat().st_size
    target = f"bench/{path.name}"
    grant = call(client, "POST", "/v1/storage/upload", json={"path": target, "size": size}).json()
    with path.open("rb") as handle:
        httpx.put(grant["url"], content=handle.read(), headers=grant["headers"], timeout=300).raise_for_status()
    return str(grant["storage_url"])


@dataclass
class TaskRun:
    """Aggregate result of ``count`` tasks submitted together."""

    count: int
    frames: int
    wall_s: float
    client_wall_s: float
    failed: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


def task_body(media_url: str, frames: int) -> dict[str, Any]:
    """detect (+ByteTrack) on every frame, up to ``frames``: the bare loop's work."""
    return {
        "input": [
            {"type": "video_url", "url": media_url, "sampling": {"mode": "interval", "value": 1}, "max_frames": frames}
        ],
        "steps": [{"model": "detect"}],
    }


def processed_frames(view: dict[str, Any]) -> int:
    usage = view.get("usage") or {}
    return int(usage.get("processed_frames") or (view.get("progress") or {}).get("processed_frames") or 0)


def poll_views(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    """The views of ``ids``: one list request for the newest 100 tasks, a GET each for any not in it (16
    pollers' GETs every half second would take CPU from the tasks on a small machine)."""
    page = call(client, "GET", "/v1/video/tasks", params={"limit": 100}).json().get("data", [])
    wanted = set(ids)
    views = [view for view in page if view.get("id") in wanted]
    seen = {view["id"] for view in views}
    views += [call(client, "GET", f"/v1/video/tasks/{task_id}").json() for task_id in ids if task_id not in seen]
    return views


def run_tasks(
    client: httpx.Client, media_url: str, count: int, frames: int, *, poll_s: float = 0.5, timeout_s: float = 1800
) -> TaskRun:
    """Submit ``count`` tasks back to back and poll them to a terminal state."""
    body = task_body(media_url, frames)
    started = time.perf_counter()
    ids = [call(client, "POST", "/v1/video/process", json=body).json()["id"] for _ in range(count)]
    views: dict[str, dict[str, Any]] = {}
    while len(views) < count:
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{count - len(views)} of {count} tasks unfinished after {timeout_s:.0f} s")
        time.sleep(poll_s)
        for view in poll_views(client, [task_id for task_id in ids if task_id not in views]):
            if view["status"] in TERMINAL:
                views[view["id"]] = view
    client_wall = time.perf_counter() - started
    done = list(views.values())
    stamps = [v for v in done if v.get("created_at") and v.get("finished_at")]
    wall = client_wall
    if len(stamps) == count:
        wall = max(parse_time(v["finished_at"]) for v in done) - min(parse_time(v["created_at"]) for v in done)
    failed = [f"{v['id']}: {v['status']} {v.get('error')}" for v in done if v["status"] != "succeeded"]
    return TaskRun(count, sum(processed_frames(v) for v in done), wall, client_wall, failed)


def image_body(photo: Path) -> dict[str, Any]:
    return {"image": {"base64": base64.b64encode(photo.read_bytes()).decode()}}


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def detect_latency(client: httpx.Client, photo: Path, requests: int, warmup: int) -> list[float]:
    """Seconds per sequential ``POST /v1/vision/detect`` after ``warmup`` unmeasured calls.

    A 20 ms pause before each lets ONNX Runtime's thread pools stop spinning, as benchmarks/vision.py
    does, so one call's spin does not land on the next."""
    body = image_body(photo)
    times = []
    for index in range(warmup + requests):
        time.sleep(0.02)
        elapsed = timed(lambda: call(client, "POST", "/v1/vision/detect", json=body))
        if index >= warmup:
            times.append(elapsed)
    return times


@dataclass
class ColdStart:
    """How the cold start was produced and what it cost: ``first_s`` is the first request's latency,
    ``warm_s`` the next one's (the difference is the wake-up)."""

    mode: str
    first_s: float
    warm_s: float


def cold_start(
    client: httpx.Client, photo: Path, mode: str, wait_for_zero: Callable[[], None] | None = None
) -> ColdStart:
    """Time the first ``POST /v1/vision/ocr`` and the one after it.

    ``wait_for_zero`` is the scale-to-zero hook: the local runner passes one that returns when the OCR
    deployment has no replica left; with ``None`` the first request is simply the first after deploy."""
    if wait_for_zero is not None:
        wait_for_zero()
    body = image_body(photo)
    first = timed(lambda: call(client, "POST", "/v1/vision/ocr", json=body))
    warm = timed(lambda: call(client, "POST", "/v1/vision/ocr", json=body))
    return ColdStart(mode, first, warm)


def find_backend(status: object) -> str | None:
    """The first ``backend`` value anywhere in a ``/v1/status`` body (where the service reports it)."""
    if isinstance(status, dict):
        for key, value in status.items():
            if key in ("backend", "backends") and isinstance(value, str | dict | list):
                return value if isinstance(value, str) else str(value)
            found = find_backend(value)
            if found:
                return found
    if isinstance(status, list):
        for item in status:
            found = find_backend(item)
            if found:
                return found
    return None
