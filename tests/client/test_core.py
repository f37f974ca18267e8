"""The retry policy and the stream's resume state, without a server."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest
from tenacity import RetryCallState

from visiongrid.client._core import Call, RetryPolicy, StreamState, retry_after_seconds
from visiongrid.client.errors import APIConnectionError, error_for


def _error(status: int, code: str, retry_after: str | None = None) -> Exception:
    headers = {"Retry-After": retry_after} if retry_after else None
    request = httpx.Request("GET", "http://vg.test/")
    return error_for(httpx.Response(status, json={"error": {"code": code}}, headers=headers, request=request))


def _state_after(error: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after_seconds(soon) == pytest.approx(30, abs=2)
    assert retry_after_seconds("soon") is None


def test_what_is_retried() -> None:
    policy = RetryPolicy()
    assert policy.retryable(_error(429, "rate_limited")) and policy.retryable(_error(503, "not_ready"))
    assert policy.retryable(APIConnectionError("reset"))
    assert not policy.retryable(_error(400, "invalid_request")) and not policy.retryable(_error(500, "internal_error"))


def test_the_wait_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=10)
    assert policy.wait(_state_after(_error(429, "rate_limited", "4"))) == 4
    assert policy.wait(_state_after(_error(429, "rate_limited", "3600"))) == 10
    backoff = policy.wait(_state_after(APIConnectionError("reset"), attempt=3))
    assert 2.0 <= backoff <= 2.5, backoff  # 0.5 × 2² plus up to 0.5 of jitter


def test_every_post_carries_one_idempotency_key_and_other_methods_none() -> None:
    post = Call("POST", "/v1/video/process", None)
    assert len(post.request_headers()["Idempotency-Key"]) == 32
    assert "Idempotency-Key" not in Call("GET", "/v1/status", None).request_headers()


def test_the_stream_state_resumes_from_the_last_event_and_gives_up_without_progress() -> None:
    state = StreamState("task")
    assert state.headers() == {"Accept": "text/event-stream"}
    info = {"frame_index": 0, "total_frames": 1, "decoded_frames": 1, "dropped_frames": 0, "fps": 5}
    body = {"id": "task", "object": "mm.pipeline.chunk", "delta": {"results": []}, "finish_reason": None}
    chunk = json.dumps({**body, "stream_info": {**info, "elapsed_ms": 9, "timestamp_ms": 0}})
    assert state.take("120", chunk) is not None and state.offset == 120
    assert state.take(None, "") is None and state.offset == 120 and not state.done  # a keep-alive comment
    assert state.headers()["Last-Event-ID"] == "120"
    policy = RetryPolicy(backoff_s=0.1)
    assert state.dropped(None, policy, limit=2) == 0  # the first reconnect is at once
    assert state.dropped(None, policy, limit=2) == pytest.approx(0.1)
    with pytest.raises(APIConnectionError):
        state.dropped(None, policy, limit=2)  # a third drop at the same offset
    with pytest.raises(Exception, match="not_found"):
        state.dropped(_error(404, "not_found"), policy, limit=2)  # never retried
    assert state.take("240", "[DONE]") is None and state.done and state.offset == 240
