"""The synchronous client: ``Client(base_url, api_key)`` with ``video``, ``vision``, ``storage``,
``vectors`` and ``status()``; answers are the contract's models (``contract.*``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource
from tenacity import Retrying, retry_if_exception, stop_after_attempt

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
from visiongrid.client.uploads import LocalFile, Progress

__all__ = ["Client"]

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8080"  # visiongrid serve's default port
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Client:
    """``with Client("http://127.0.0.1:8080", api_key="vg_...") as client: ...``

    ``api_key`` defaults to ``$VISIONGRID_API_KEY`` and ``base_url`` to ``$VISIONGRID_URL``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """``http``: an ``httpx.Client`` to send with instead (a test's in-process app client)."""
        base = base_url or os.environ.get("VISIONGRID_URL") or DEFAULT_URL
        key = api_key or os.environ.get("VISIONGRID_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retry = retry or RetryPolicy()
        self.http = http or httpx.Client(base_url=base, timeout=timeout)
        self.http.headers.update(headers)
        self.video = Video(self)
        self.vision = Vision(self)
        self.storage = Storage(self)
        self.vectors = Vectors(self)

    def send(self, call: Call[T]) -> T:
        """Send ``call`` with the retry policy; its typed answer, or the error for its code."""
        headers = call.request_headers()  # one Idempotency-Key for every try
        retrying = Retrying(
            retry=retry_if_exception(self.retry.retryable),
            wait=self.retry.wait,
            stop=stop_after_attempt(self.retry.max_retries + 1),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                try:
                    response = self.http.request(
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

    def status(self) -> StatusView:
        return self.send(calls.status())

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Video:
    def __init__(self, client: Client) -> None:
        self._client = client

    def process(self, request: Body) -> TaskCreated:
        """``POST /v1/video/process`` with a :class:`contract.video.ProcessRequest` (or its dict)."""
        return self._client.send(calls.process(request))

    def process_file(self, path: Path | str, *, steps: Sequence[str] = ("detect",), **query: Any) -> TaskCreated:
        """The raw-body route: upload the file as the request body (``steps``, ``classes``, ``sampling``,
        ``value``, ``max_frames`` go in the query)."""
        return self._client.send(calls.process_file(Path(path).read_bytes(), steps=steps, **query))

    def get(self, task_id: str, *, include_request: bool = False) -> TaskView:
        return self._client.send(calls.get_task(task_id, include_request=include_request))

    def list(self, *, status: str | None = None, limit: int = 20, cursor: str | None = None) -> TaskList:
        return self._client.send(calls.list_tasks(status=status, limit=limit, cursor=cursor))

    def cancel(self, task_id: str) -> TaskView:
        return self._client.send(calls.cancel_task(task_id))

    def delete(self, task_id: str) -> None:
        self._client.send(calls.delete_task(task_id))

    def results(self, task_id: str) -> TaskResult:
        return self._client.send(calls.task_results(task_id))

    def wait(self, task_id: str, *, timeout: float = 3600.0, poll_s: float = 0.5) -> TaskView:
        """Poll until the task is terminal (``TimeoutError`` past ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if task.status in TERMINAL:
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still {task.status} after {timeout} s")
            time.sleep(poll_s)

    def stream(self, task_id: str, *, offset: int = 0, max_reconnects: int = 10) -> Iterator[Chunk]:
        """The task's chunks as they come, resuming from the last event's byte offset when the
        connection drops (up to ``max_reconnects`` times in a row); ends after the terminal chunk."""
        state = StreamState(task_id, offset=offset)
        while not state.done:
            try:
                with self._client.http.stream(
                    "GET", calls.stream_path(task_id), headers=state.headers(), timeout=httpx.Timeout(60, read=None)
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        parse(Call("GET", calls.stream_path(task_id), None), response)
                    for event in EventSource(response).iter_sse():
                        chunk = state.take(event.id, event.data)
                        if chunk is not None:
                            yield chunk
                if state.done:
                    return
                delay = state.dropped(None, self._client.retry, max_reconnects)  # closed before [DONE]
            except (httpx.TransportError, APIStatusError) as exc:
                delay = state.dropped(exc, self._client.retry, max_reconnects)
            time.sleep(delay)


class Vision:
    def __init__(self, client: Client) -> None:
        self._client = client

    def detect(
        self, image: ImageSource, *, classes: Sequence[str] | None = None, min_confidence: float | None = None
    ) -> VisionResult:
        return self._client.send(calls.detect(image, classes=classes, min_confidence=min_confidence))

    def ocr(self, image: ImageSource, *, min_confidence: float | None = None) -> VisionResult:
        return self._client.send(calls.ocr(image, min_confidence=min_confidence))

    def describe(self, image: ImageSource, *, model: str | None = None) -> VisionResult:
        return self._client.send(calls.describe(image, model=model))

    def models(self) -> ModelList:
        return self._client.send(calls.vision_models())


class Storage:
    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(
        self, path: str, file: Path | str, *, progress: Progress | None = None, resume: str | None = None
    ) -> FinalizedUpload:
        """Upload ``file`` to ``path`` in chunks (resumable: each chunk is retried, and a run cut short
        goes on with ``resume=<upload id>`` from the chunks the service already has)."""
        local = LocalFile.read(Path(file))
        if resume is None:
            upload = self._client.send(calls.create_upload(path, local.size, local.sha256, local.content_type))
        else:
            upload = self._client.send(calls.get_upload(resume))
        have = set(upload.received)
        sent = sum(local.chunk_length(n, upload.chunk_size) for n in have)
        if progress is not None:
            progress(sent, local.size)
        for n in range(upload.chunks):
            if n in have:
                continue
            self._client.send(calls.put_chunk(upload.id, n, local.chunk(n, upload.chunk_size)))
            sent += local.chunk_length(n, upload.chunk_size)
            if progress is not None:
                progress(sent, local.size)
        return self._client.send(calls.finalize_upload(upload.id))

    def files(self, path: str = "", *, limit: int = 100, cursor: str | None = None) -> FileList:
        return self._client.send(calls.list_files(path, limit=limit, cursor=cursor))

    def delete(self, path: str) -> None:
        self._client.send(calls.delete_file(path))

    def presign(self, path: str, *, method: str = "GET", expires_in: int | None = None) -> PresignedURL:
        return self._client.send(calls.presign(path, method=method, expires_in=expires_in))


class Vectors:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, name: str, *, model: str = "multimodal", metric: str = "cosine") -> Collection:
        return self._client.send(calls.create_collection(name, model=model, metric=metric))

    def list(self) -> CollectionList:
        return self._client.send(calls.list_collections())

    def get(self, collection_id: str) -> Collection:
        return self._client.send(calls.get_collection(collection_id))

    def delete(self, collection_id: str) -> None:
        self._client.send(calls.delete_collection(collection_id))

    def index(self, collection_id: str, items: Sequence[Body]) -> IndexResult:
        return self._client.send(calls.index(collection_id, items))

    def search(self, collection_id: str, request: Body | None = None, **fields: Any) -> SearchResults:
        """``search(cid, text_query="a red car", top_k=5)`` or with a :class:`SearchRequest`."""
        body: Mapping[str, Any] | Body = request if request is not None else fields
        return self._client.send(calls.search(collection_id, body))
