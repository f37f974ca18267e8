"""The asynchronous client: the same resources and answers as :class:`visiongrid.client.Client`,
awaited (``async with AsyncClient(...) as client: await client.video.get(task_id)``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from contract.chunks import Chunk, TaskResult
from contract.status import StatusView
from contract.storage import FileList, FinalizedUpload, PresignedURL
from contract.vectors import Collection, CollectionList, IndexResult, SearchResults
from contract.video import TaskCreated, TaskList, TaskView
from contract.vision import ModelList, VisionResult
from visiongrid.client import _calls as calls
from visiongrid.client._calls import Body, ImageSource
from visiongrid.client._core import Call, RetryPolicy, StreamState, parse
from visiongrid.client.errors import APIConnectionError, APIStatusError
from visiongrid.client.sync_client import DEFAULT_URL, TERMINAL
from visiongrid.client.uploads import LocalFile, Progress

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """``async with AsyncClient("http://127.0.0.1:8080", api_key="vg_...") as client: ...``"""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        base = base_url or os.environ.get("VISIONGRID_URL") or DEFAULT_URL
        key = api_key or os.environ.get("VISIONGRID_API_KEY")
        self.retry = retry or RetryPolicy()
        self.http = http or httpx.AsyncClient(base_url=base, timeout=timeout)
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"
        self.video = AsyncVideo(self)
        self.vision = AsyncVision(self)
        self.storage = AsyncStorage(self)
        self.vectors = AsyncVectors(self)

    async def send(self, call: Call[T]) -> T:
        headers = call.request_headers()
        retrying = AsyncRetrying(
            retry=retry_if_exception(self.retry.retryable),
            wait=self.retry.wait,
            stop=stop_after_attempt(self.retry.max_retries + 1),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    response = await self.http.request(
                        call.method,
                        call.path,
                        json=call.json,
                        params=call.params,
                        content=call.content,
                        headers=headers,
                    )
                except httpx.TransportError as exc:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc
                return parse(call, response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def status(self) -> StatusView:
        return await self.send(calls.status())

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncVideo:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def process(self, request: Body) -> TaskCreated:
        return await self._client.send(calls.process(request))

    async def process_file(self, path: Path | str, *, steps: Sequence[str] = ("detect",), **query: Any) -> TaskCreated:
        data = await asyncio.to_thread(Path(path).read_bytes)
        return await self._client.send(calls.process_file(data, steps=steps, **query))

    async def get(self, task_id: str, *, include_request: bool = False) -> TaskView:
        return await self._client.send(calls.get_task(task_id, include_request=include_request))

    async def list(self, *, status: str | None = None, limit: int = 20, cursor: str | None = None) -> TaskList:
        return await self._client.send(calls.list_tasks(status=status, limit=limit, cursor=cursor))

    async def cancel(self, task_id: str) -> TaskView:
        return await self._client.send(calls.cancel_task(task_id))

    async def delete(self, task_id: str) -> None:
        await self._client.send(calls.delete_task(task_id))

    async def results(self, task_id: str) -> TaskResult:
        return await self._client.send(calls.task_results(task_id))

    async def wait(self, task_id: str, *, timeout: float = 3600.0, poll_s: float = 0.5) -> TaskView:
        async with asyncio.timeout(timeout):
            while True:
                task = await self.get(task_id)
                if task.status in TERMINAL:
                    return task
                await asyncio.sleep(poll_s)

    async def stream(self, task_id: str, *, offset: int = 0, max_reconnects: int = 10) -> AsyncIterator[Chunk]:
        """The task's chunks as they come, resumed from the last byte offset after a drop."""
        state = StreamState(task_id, offset=offset)
        while not state.done:
            try:
                async with self._client.http.stream(
                    "GET", calls.stream_path(task_id), headers=state.headers(), timeout=httpx.Timeout(60, read=None)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        parse(Call("GET", calls.stream_path(task_id), None), response)
                    async for event in EventSource(response).aiter_sse():
                        chunk = state.take(event.id, event.data)
                        if chunk is not None:
                            yield chunk
                if state.done:
                    return
                delay = state.dropped(None, self._client.retry, max_reconnects)
            except (httpx.TransportError, APIStatusError) as exc:
                delay = state.dropped(exc, self._client.retry, max_reconnects)
            await asyncio.sleep(delay)


class AsyncVision:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def detect(
        self, image: ImageSource, *, classes: Sequence[str] | None = None, min_confidence: float | None = None
    ) -> VisionResult:
        call = await asyncio.to_thread(calls.detect, image, classes=classes, min_confidence=min_confidence)
        return await self._client.send(call)

    async def ocr(self, image: ImageSource, *, min_confidence: float | None = None) -> VisionResult:
        call = await asyncio.to_thread(calls.ocr, image, min_confidence=min_confidence)
        return await self._client.send(call)

    async def describe(self, image: ImageSource, *, model: str | None = None) -> VisionResult:
        call = await asyncio.to_thread(calls.describe, image, model=model)
        return await self._client.send(call)

    async def models(self) -> ModelList:
        return await self._client.send(calls.vision_models())


class AsyncStorage:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def upload(
        self, path: str, file: Path | str, *, progress: Progress | None = None, resume: str | None = None
    ) -> FinalizedUpload:
        local = await asyncio.to_thread(LocalFile.read, Path(file))
        if resume is None:
            upload = await self._client.send(calls.create_upload(path, local.size, local.sha256, local.content_type))
        else:
            upload = await self._client.send(calls.get_upload(resume))
        have = set(upload.received)
        sent = sum(local.chunk_length(n, upload.chunk_size) for n in have)
        if progress is not None:
            progress(sent, local.size)
        for n in range(upload.chunks):
            if n in have:
                continue
            data = await asyncio.to_thread(local.chunk, n, upload.chunk_size)
            await self._client.send(calls.put_chunk(upload.id, n, data))
            sent += len(data)
            if progress is not None:
                progress(sent, local.size)
        return await self._client.send(calls.finalize_upload(upload.id))

    async def files(self, path: str = "", *, limit: int = 100, cursor: str | None = None) -> FileList:
        return await self._client.send(calls.list_files(path, limit=limit, cursor=cursor))

    async def delete(self, path: str) -> None:
        await self._client.send(calls.delete_file(path))

    async def presign(self, path: str, *, method: str = "GET", expires_in: int | None = None) -> PresignedURL:
        return await self._client.send(calls.presign(path, method=method, expires_in=expires_in))


class AsyncVectors:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, name: str, *, model: str = "multimodal", metric: str = "cosine") -> Collection:
        return await self._client.send(calls.create_collection(name, model=model, metric=metric))

    async def list(self) -> CollectionList:
        return await self._client.send(calls.list_collections())

    async def get(self, collection_id: str) -> Collection:
        return await self._client.send(calls.get_collection(collection_id))

    async def delete(self, collection_id: str) -> None:
        await self._client.send(calls.delete_collection(collection_id))

    async def index(self, collection_id: str, items: Sequence[Body]) -> IndexResult:
        return await self._client.send(calls.index(collection_id, items))

    async def search(self, collection_id: str, request: Body | None = None, **fields: Any) -> SearchResults:
        return await self._client.send(calls.search(collection_id, request if request is not None else fields))
