"""Live input through the real service, against a real GStreamer RTSP server playing a real
clip in real time: chunks stream with ``total_frames: null`` and stable track ids, a killed and
restarted camera is a reconnect the task survives, a camera that stays down ends the task
``source_lost``, frames are dropped (never repeated) when the source is faster than analysis, a
cancel ends the task at once, and credentials in the URL are never echoed; a live HLS playlist
written while it plays, and an RTMP stream from a real nginx-rtmp server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_video_api import wait_terminal
from tests.live import RtspServer


@pytest.fixture
def camera(media_dir: Path) -> Iterator[RtspServer]:
    with RtspServer(media_dir / "vtest.avi") as server:
        yield server


def _submit(service: Service, url: str, **extra: Any) -> str:
    body = {
        "input": [{"type": "live", "url": url, "sampling": {"mode": "fps", "value": 5}, **extra}],
        "steps": [{"model": "detect", "parameters": {"classes": ["pedestrian"]}}],
    }
    with service.client() as client:
        response = client.post("/v1/video/process", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


class Reader:
    """Reads a task's SSE stream in a thread, keeping every chunk as it arrives."""

    def __init__(self, service: Service, task_id: str) -> None:
        self.chunks: list[dict[str, Any]] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(service, task_id), daemon=True)
        self._thread.start()

    def _read(self, service: Service, task_id: str) -> None:
        import json

        headers = {"Authorization": f"Bearer {service.key_a}"}
        client = httpx.Client(base_url=service.base_url, headers=headers, timeout=120)
        with client, client.stream("GET", f"/v1/video/tasks/{task_id}/stream") as response:
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    break
                if line.startswith("data: "):
                    self.chunks.append(json.loads(line[6:]))
        self.done.set()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.chunks) < count:
            assert time.monotonic() < deadline, f"only {len(self.chunks)} chunks after {timeout} s"
            time.sleep(0.05)


def _cancel(service: Service, task_id: str) -> float:
    started = time.monotonic()
    with service.client() as client:
        assert client.post(f"/v1/video/tasks/{task_id}/cancel").status_code in (200, 202)
    task = wait_terminal(service, task_id, timeout=10)
    assert task["status"] == "cancelled", task
    return time.monotonic() - started


def test_a_live_camera_streams_chunks_survives_a_restart_and_cancels_at_once(
    service: Service, camera: RtspServer
) -> None:
    task_id = _submit(service, camera.url)
    reader = Reader(service, task_id)
    reader.wait_for(10)
    frames = [chunk for chunk in reader.chunks if chunk["finish_reason"] is None]
    assert all(chunk["stream_info"]["total_frames"] is None for chunk in frames)
    indices = [chunk["stream_info"]["frame_index"] for chunk in frames]
    stamps = [chunk["stream_info"]["timestamp_ms"] for chunk in frames]
    assert indices == sorted(set(indices)) and stamps == sorted(set(stamps)), "never a frame twice, never back"
    tracks = [t["track_id"] for chunk in frames for t in chunk["delta"]["results"][0]["targets"]]
    assert tracks, "vtest.avi shows pedestrians"
    assert all(chunk["stream_info"]["lag_ms"] is not None for chunk in frames)
    # the camera goes away and comes back: one reconnect, the task goes on
    before = len(reader.chunks)
    camera.kill()
    time.sleep(0.5)
    camera.start()
    reader.wait_for(before + 10, timeout=60)
    later = reader.chunks[-1]["stream_info"]
    assert later["reconnects"] >= 1
    assert later["frame_index"] > indices[-1] and later["timestamp_ms"] > stamps[-1]
    # the source runs at 25 fps, analysis far slower: frames are dropped to keep up
    assert later["dropped_frames"] > 0
    assert _cancel(service, task_id) < 5
    assert reader.done.wait(10)
    assert reader.chunks[-1]["finish_reason"] == "cancelled"


def test_a_camera_that_stays_down_ends_the_task_source_lost(service: Service, camera: RtspServer) -> None:
    task_id = _submit(service, camera.url)
    reader = Reader(service, task_id)
    reader.wait_for(3)
    camera.kill()
    task = wait_terminal(service, task_id, timeout=60)
    assert task["status"] == "failed" and task["error"]["code"] == "source_lost", task
    assert reader.done.wait(10) and reader.chunks[-1]["error"]["code"] == "source_lost"


def test_limits_end_a_live_task_and_credentials_are_never_echoed(service: Service, camera: RtspServer) -> None:
    secret_url = camera.url.replace("rtsp://", "rtsp://admin:hunter2@")
    task_id = _submit(service, secret_url, max_frames=3)
    task = wait_terminal(service, task_id, timeout=60)
    assert task["status"] == "succeeded" and task["finish_reason"] == "max_frames", task
    with service.client() as client:
        view = client.get(f"/v1/video/tasks/{task_id}", params={"include": "request"})
        results = client.get(f"/v1/video/tasks/{task_id}/results")
    assert view.status_code == 200 and results.status_code == 200
    assert "hunter2" not in view.text and "hunter2" not in results.text
    assert view.json()["request"]["input"][0]["url"].startswith("rtsp://***@127.0.0.1")
    timed = _submit(service, camera.url, max_duration_s=1.5)
    task = wait_terminal(service, timed, timeout=60)
    assert task["status"] == "succeeded" and task["finish_reason"] == "max_duration", task


def test_a_live_hls_playlist_is_analysed_while_it_is_written_and_ends_with_it(
    service: Service, media_dir: Path, tmp_path: Path
) -> None:
    """An HLS event playlist written by an encoder in real time (PyAV's HLS muxer, 1 s segments, no
    #EXT-X-ENDLIST until it stops), served over HTTP: live, and the task ends when the playlist does."""
    import av

    from tests.range_server import RangeServer

    frames_written = threading.Event()

    def encode() -> None:
        with (
            av.open(str(media_dir / "vtest.avi")) as source,
            av.open(
                str(tmp_path / "live.m3u8"), "w", format="hls", options={"hls_time": "1", "hls_playlist_type": "event"}
            ) as out,
        ):
            stream = out.add_stream("libx264", rate=25, options={"g": "25", "preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
            for index, frame in enumerate(source.decode(video=0)):
                if index >= 150:  # 6 s of video, written in real time
                    break
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
                time.sleep(0.04)
            out.mux(stream.encode(None))
        frames_written.set()

    writer = threading.Thread(target=encode, daemon=True)
    writer.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "live.m3u8").exists():
        assert time.monotonic() < deadline, "the encoder wrote no playlist"
        time.sleep(0.1)
    assert "#EXT-X-ENDLIST" not in (tmp_path / "live.m3u8").read_text()
    with RangeServer(tmp_path) as origin:
        task_id = _submit(service, origin.url("live.m3u8"))
        reader = Reader(service, task_id)
        reader.wait_for(3, timeout=30)
        assert not frames_written.is_set(), "chunks arrive while the playlist is still being written"
        task = wait_terminal(service, task_id, timeout=60)
    assert task["status"] == "succeeded" and task["finish_reason"] == "stop", task
    assert reader.done.wait(10)
    frames = [chunk for chunk in reader.chunks if chunk["finish_reason"] is None]
    assert all(chunk["stream_info"]["total_frames"] is None for chunk in frames)
    stamps = [chunk["stream_info"]["timestamp_ms"] for chunk in frames]
    assert stamps == sorted(set(stamps)) and stamps[-1] > 4000, "sampled on the playlist's own clock"


def test_cancel_ends_a_live_task_at_once_while_its_camera_is_down(service: Service, camera: RtspServer) -> None:
    task_id = _submit(service, camera.url)
    Reader(service, task_id).wait_for(3)
    camera.kill()
    time.sleep(0.5)  # no frames arrive now: the decoder is in a read or a reconnect backoff
    assert _cancel(service, task_id) < 2.5


def test_an_rtmp_stream_is_analysed_through_the_service(service: Service, media_dir: Path) -> None:
    """An ``rtmp://`` URL is live whatever its type: a real nginx-rtmp server fed by an encoder."""
    from tests.live import RtmpServer

    with RtmpServer(media_dir / "vtest.avi") as server:
        body = {
            "input": [
                {"type": "video_url", "url": server.url, "sampling": {"mode": "fps", "value": 5}, "max_frames": 4}
            ],
            "steps": [{"model": "detect", "parameters": {"classes": ["pedestrian"]}}],
        }
        with service.client() as client:
            response = client.post("/v1/video/process", json=body)
        assert response.status_code == 202, response.text
        task = wait_terminal(service, str(response.json()["id"]), timeout=60)
        with service.client() as client:
            view = client.get(f"/v1/video/tasks/{task['id']}", params={"include": "request"}).json()
            results = client.get(f"/v1/video/tasks/{task['id']}/results").json()
    assert task["status"] == "succeeded" and task["finish_reason"] == "max_frames", task
    assert view["request"]["input"][0]["type"] == "live"
    assert results["tracks"], "vtest.avi shows pedestrians"
