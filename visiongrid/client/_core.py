"""What the sync and the async client share: one description of each call, the retry policy, the
error mapping and the stream's resume state. The two clients differ only in how they send.

Retries: a 429 or a 503 answer, and a connection that fails or breaks, are retried up to
``max_retries`` times, waiting what ``Retry-After`` says (seconds or an HTTP date, capped at
``max_backoff_s``) or else an exponential backoff with jitter (tenacity's). Every POST carries an
``Idempotency-Key`` made once per call, so a retried create after a lost answer replays the first
answer instead of making a second task (the service keeps keys per project and route).
"""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from contract.chunks import Chunk
from visiongrid.client.errors import APIConnectionError, APIStatusError, error_for

__all__ = ["Call", "RetryPolicy", "StreamState", "body_of", "parse"]

T = TypeVar("T")
#: Answers worth another try: rate limited, or the service (or a dependency) briefly unavailable.
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send and what model the answer is (``None``: no body, a 204)."""

    method: str
    path: str
    model: type[T] | None
    json: Any = None
    params: Mapping[str, Any] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.method == "POST":
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)  # the same key for every retry
        return headers


def body_of(request: BaseModel | Mapping[str, Any]) -> Any:
    """The JSON body of a request model (only what was set) or of a plain mapping (as given)."""
    if isinstance(request, BaseModel):
        return request.model_dump(mode="json", exclude_unset=True)
    return dict(request)


def parse(call: Call[T], response: httpx.Response) -> T:
    """The typed answer of ``call``, or the error for its code."""
    if response.status_code >= 400:
        raise error_for(response)
    if call.model is None:
        return None  # type: ignore[return-value]
    model: Any = call.model
    if isinstance(model, type) and issubclass(model, BaseModel):
        parsed: Any = model.model_validate_json(response.content)
        return parsed
    answer: T = response.json()
    return answer


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how long between, retries of 429/503 answers and broken connections."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def retryable(self, error: BaseException) -> bool:
        if isinstance(error, APIStatusError):
            return error.status_code in RETRY_STATUSES
        return isinstance(error, APIConnectionError)

    def wait(self, state: RetryCallState) -> float:
        """tenacity's ``wait``: ``Retry-After`` when the answer has one, else exponential with jitter."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, APIStatusError) and error.retry_after:
            after = retry_after_seconds(error.retry_after)
            if after is not None:
                return min(after, self.max_backoff_s)
        backoff = wait_exponential_jitter(multiplier=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s)
        return float(backoff(state))


def retry_after_seconds(value: str) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` if neither."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class StreamState:
    """Where a task's SSE stream is: the byte offset after the last event read (its ``id``), and
    whether ``[DONE]`` came. A dropped connection reopens with ``Last-Event-ID: <offset>``, so no
    chunk is read twice or missed."""

    task_id: str
    offset: int = 0
    done: bool = False
    reconnects: int = 0
    _failures: int = 0
    _offset_at_failure: int = -1

    def dropped(self, error: BaseException | None, retry: RetryPolicy, limit: int) -> float:
        """A connection ended before ``[DONE]`` (``error`` is why, if it failed): the seconds to wait
        before the next one. Failures in a row without progress count toward ``limit``; an error that
        is not worth a retry (a 404, a 400) is raised at once."""
        if isinstance(error, APIStatusError) and not retry.retryable(error):
            raise error
        self._failures = self._failures + 1 if self.offset == self._offset_at_failure else 1
        self._offset_at_failure = self.offset
        if self._failures > limit:
            message = f"the stream of task {self.task_id} broke {self._failures} times at offset {self.offset}"
            raise APIConnectionError(message) from error
        self.reconnects += 1
        if isinstance(error, APIStatusError) and error.retry_after:
            after = retry_after_seconds(error.retry_after)
            if after is not None:
                return min(after, retry.max_backoff_s)
        return min(retry.max_backoff_s, retry.backoff_s * (2 ** (self._failures - 1)) - retry.backoff_s)

    def headers(self) -> dict[str, str]:
        return {"Accept": "text/event-stream", **({"Last-Event-ID": str(self.offset)} if self.offset else {})}

    def take(self, event_id: str | None, data: str) -> Chunk | None:
        """The chunk of one event (``None`` for ``[DONE]``), its offset remembered."""
        if event_id and event_id.isdigit():
            self.offset = int(event_id)
        if data == "[DONE]":
            self.done = True
            return None
        if not data:
            return None  # a ": keep-alive" comment while the task waits: no event, no offset
        return Chunk.model_validate_json(data)
