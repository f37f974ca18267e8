"""The Python client against the real app in-process (real SQLite, S3 and models): typed answers,
one exception per code, 429 retried after ``Retry-After``, a chunked upload with progress, and the
async client on the same calls."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from contract.vision import VisionResult
from tests.api.conftest import Api, ApiFactory
from visiongrid.client import AsyncClient, Client, RetryPolicy
from visiongrid.client import errors as client_errors

FAST = RetryPolicy(max_retries=3, backoff_s=0.05, max_backoff_s=5)


def _client(api: Api, key: str | None = None, retry: RetryPolicy = FAST) -> Client:
    return Client(api_key=key or api.key, retry=retry, http=TestClient(api.app, raise_server_exceptions=False))


def test_a_detect_answers_the_contracts_model(api: Api, media_dir: Path) -> None:
    with _client(api) as client:
        result = client.vision.detect(media_dir / "dog.jpg", classes=["dog"])
    assert isinstance(result, VisionResult) and result.object == "vision.detect"
    assert result.targets and all(target.class_ == "dog" for target in result.targets)


def test_errors_are_the_type_of_their_code(api: Api) -> None:
    with _client(api) as client:
        with pytest.raises(client_errors.NotFoundError) as missing:
            client.video.get("vt_does_not_exist")
        assert isinstance(missing.value, client_errors.HTTPNotFoundError) and missing.value.status_code == 404
        with pytest.raises(client_errors.UrlNotAllowedError) as refused:
            client.video.process(
                {"input": [{"type": "video_url", "url": "http://127.0.0.1:9/a.mp4"}], "steps": [{"model": "detect"}]}
            )
        assert refused.value.field == "input[0].url"
    with _client(api, key="vg_not_a_key") as stranger, pytest.raises(client_errors.UnauthorizedError):
        stranger.status()


def test_a_429_is_retried_after_its_retry_after(make_api: ApiFactory, media_dir: Path) -> None:
    api = make_api(rate_limit_vision=1, rate_limit_window_s=1.0)
    with _client(api) as client:
        client.vision.detect(media_dir / "dog.jpg")
        started = time.monotonic()
        client.vision.detect(media_dir / "dog.jpg")  # over the limit: 429, Retry-After 1, then admitted
        waited = time.monotonic() - started
    assert waited >= 0.9, waited
    with (
        _client(api, retry=RetryPolicy(max_retries=0)) as impatient,
        pytest.raises(client_errors.RateLimitedError) as limited,
    ):
        for _ in range(2):  # at most one fits in the window
            impatient.vision.detect(media_dir / "dog.jpg")
    assert limited.value.retry_after is not None and int(limited.value.retry_after) >= 1


def test_a_chunked_upload_reports_progress_and_lands_whole(make_api: ApiFactory, tmp_path: Path) -> None:
    api = make_api(upload_chunk_bytes=5 * 1024**2)
    data = os.urandom(11 * 1024**2)  # three chunks: 5 + 5 + 1 MiB
    source = tmp_path / "clip.bin"
    source.write_bytes(data)
    seen: list[tuple[int, int]] = []
    with _client(api) as client:
        done = client.storage.upload(
            "uploads/clip.bin", source, progress=lambda sent, total: seen.append((sent, total))
        )
        files = client.storage.files("uploads")
    assert done.sha256 == hashlib.sha256(data).hexdigest() and done.size == len(data)
    assert seen == [(0, len(data)), (5 * 1024**2, len(data)), (10 * 1024**2, len(data)), (len(data), len(data))]
    assert [item.path for item in files.data] == ["uploads/clip.bin"]


def test_the_async_client_makes_the_same_calls(api: Api, media_dir: Path) -> None:
    async def run() -> tuple[VisionResult, int]:
        transport = httpx.ASGITransport(app=api.app)
        http = httpx.AsyncClient(transport=transport, base_url="http://vg.test")
        async with AsyncClient(api_key=api.key, retry=FAST, http=http) as client:
            result = await client.vision.detect(media_dir / "dog.jpg", classes=["dog"])
            try:
                await client.video.get("vt_does_not_exist")
            except client_errors.NotFoundError as error:
                return result, error.status_code
        raise AssertionError("no 404")

    result, status = asyncio.run(run())
    assert result.targets and status == 404
