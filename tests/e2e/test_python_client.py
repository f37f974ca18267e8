"""The Python client against the real service through a proxy that breaks real connections: the
stream iterator resumes from its byte offset after the connection is cut mid-event (no chunk lost
or repeated), and a chunked upload whose chunk request is dropped retries it and lands whole."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.e2e.conftest import Service
from tests.flaky_proxy import FlakyProxy
from visiongrid.client import Client, RetryPolicy

FAST = RetryPolicy(max_retries=3, backoff_s=0.05, max_backoff_s=2)


def test_the_stream_iterator_resumes_after_the_connection_is_cut(service: Service, proxy: FlakyProxy) -> None:
    with Client(service.base_url, service.key_a, retry=FAST) as direct:
        created = direct.video.process(
            {
                "input": [
                    {
                        "type": "video_url",
                        "url": f"{service.media_url}/walk.mp4",
                        "sampling": {"mode": "fps", "value": 10},
                    }
                ],
                "steps": [{"model": "detect", "parameters": {"classes": ["person"]}}],
            }
        )
        clean = list(direct.video.stream(created.id))
    assert clean[-1].finish_reason == "stop" and len(clean) > 5
    proxy.break_next(rb"GET /v1/video/tasks/[^ ]+/stream", after_bytes=2500)  # mid-way through an event
    with Client(proxy.url, service.key_a, retry=FAST) as flaky:
        resumed = list(flaky.video.stream(created.id))
    assert proxy.broken == 1
    assert [chunk.model_dump() for chunk in resumed] == [chunk.model_dump() for chunk in clean]


def test_a_dropped_chunk_request_is_retried_and_the_upload_lands_whole(
    service: Service, proxy: FlakyProxy, tmp_path: Path
) -> None:
    chunk = service.settings.upload_chunk_bytes
    data = os.urandom(chunk + 1024)  # two chunks
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    proxy.break_next(rb"PUT /v1/storage/uploads/[^ ]+/chunks/1 ")
    progress: list[int] = []
    with Client(proxy.url, service.key_a, retry=FAST) as client:
        done = client.storage.upload("client/big.bin", source, progress=lambda sent, _total: progress.append(sent))
        listed = client.storage.files("client")
        client.storage.delete("client/big.bin")
    assert proxy.broken == 1, "the chunk request was really dropped"
    assert done.size == len(data) and done.sha256 == hashlib.sha256(data).hexdigest()
    assert progress == [0, chunk, len(data)]
    assert [item.size for item in listed.data] == [len(data)]
