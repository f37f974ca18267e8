"""Progressive decode through the real service: a task's first chunk arrives while its video is still
downloading from a throttled origin, and a cancel stops the transfer at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_video_api import submit, wait_terminal
from tests.range_server import RangeServer

RATE = 2_000_000  # bytes/s: the ~20 MB clip takes about 10 s to download


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Iterator[tuple[RangeServer, int]]:
    """A large H.264 clip (a real person over moving noise), index at the end, behind a slow origin."""
    import cv2

    folder = tmp_path_factory.mktemp("progressive")
    person = cv2.cvtColor(cv2.imread(str(media_dir / "person.jpg")), cv2.COLOR_BGR2RGB)[96:384, 180:286]
    rng = np.random.default_rng(5)
    with av.open(str(folder / "large.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "25", "crf": "16"})
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for index in range(100):
            canvas = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            x = 40 + 4 * index
            canvas[120:408, x : x + 106] = person
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode(None))
    size = (folder / "large.mp4").stat().st_size
    with RangeServer(folder, bytes_per_s=RATE) as server:
        yield server, size


def test_the_first_chunk_arrives_before_the_download_ends_and_cancel_stops_the_transfer(
    service: Service, throttled: tuple[RangeServer, int]
) -> None:
    server, size = throttled
    sent_before = server.bytes_sent
    created = submit(service, server.url("large.mp4"), sampling={"mode": "interval", "value": 1})
    started = time.monotonic()
    with service.client() as client:
        while client.get(f"/v1/video/tasks/{created['id']}").json()["progress"]["processed_frames"] < 1:
            assert time.monotonic() - started < size / RATE, "no frame before the whole file could have arrived"
            time.sleep(0.05)
        at_first_chunk = server.bytes_sent - sent_before
        print(f"\nfirst chunk after {time.monotonic() - started:.2f} s, {at_first_chunk} of {size} bytes transferred")
        assert at_first_chunk < size / 2
        response = client.post(f"/v1/video/tasks/{created['id']}/cancel")
        assert response.status_code in (200, 202)
    task = wait_terminal(service, created["id"], timeout=10)
    assert task["status"] == "cancelled"
    settled = server.bytes_sent
    time.sleep(1.0)
    assert server.bytes_sent - settled < RATE / 2, "the transfer goes on after the task was cancelled"
    assert server.bytes_sent - sent_before < size, "the file was never downloaded whole"
