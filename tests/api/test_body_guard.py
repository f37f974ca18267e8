"""Auth and size before the body, over a real socket (TestClient cannot lie about Content-Length):
a ``Content-Length: 3000000000`` with ten bytes behind it is answered at once — 401 without a key,
413 with one — instead of the server waiting for three gigabytes, and a chunked body that grows past
``max_json_body_bytes`` is cut off with a 413."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.api.conftest import ApiFactory, LiveServer

LiveServerFactory = Callable[[FastAPI], LiveServer]
JSON_ROUTES = ["/v1/video/process", "/v1/vision/detect", "/v1/vectors/collections", "/v1/storage/upload"]
PROMPT_S = 2.0


def head(path: str, headers: dict[str, str], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def error_of(raw: bytes) -> dict[str, object]:
    body = raw.partition(b"\r\n\r\n")[2]
    error: dict[str, object] = json.loads(body)["error"]
    return error


@pytest.fixture
def served(make_api: ApiFactory, live_server: LiveServerFactory) -> tuple[LiveServer, str]:
    api = make_api(max_json_body_bytes=4096)
    return live_server(api.app), api.key


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_huge_declared_body_without_a_key_is_a_401_at_once(served: tuple[LiveServer, str], path: str) -> None:
    server, _ = served
    headers = {"Content-Type": "application/json", "Content-Length": "3000000000"}
    status, raw, seconds = server.exchange(head(path, headers), b'{"a": 1}  ')
    assert status == 401 and seconds < PROMPT_S, (status, seconds, raw[:300])
    assert b"\r\nwww-authenticate: bearer\r\n" in raw.lower()
    assert error_of(raw)["code"] == "unauthorized"


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_huge_declared_body_with_a_key_is_a_413_at_once(served: tuple[LiveServer, str], path: str) -> None:
    server, key = served
    headers = {"Content-Type": "application/json", "Content-Length": "3000000000", "Authorization": f"Bearer {key}"}
    status, raw, seconds = server.exchange(head(path, headers), b'{"a": 1}  ')
    assert status == 413 and seconds < PROMPT_S, (status, seconds, raw[:300])
    assert error_of(raw)["code"] == "body_too_large"


def test_a_huge_raw_video_is_a_413_at_once(served: tuple[LiveServer, str]) -> None:
    server, key = served
    headers = {"Content-Type": "video/mp4", "Content-Length": "9000000000", "Authorization": f"Bearer {key}"}
    status, raw, seconds = server.exchange(head("/v1/video/process", headers), b"\x00" * 10)
    assert status == 413 and seconds < PROMPT_S, (status, seconds, raw[:300])
    assert error_of(raw)["code"] == "media_too_large"


def test_a_huge_chunk_is_refused_at_once(served: tuple[LiveServer, str]) -> None:
    server, key = served
    headers = {"Content-Length": "3000000000", "Authorization": f"Bearer {key}"}
    status, raw, seconds = server.exchange(head("/v1/storage/uploads/up_x/chunks/0", headers, "PUT"), b"\x00" * 10)
    assert status == 400 and seconds < PROMPT_S, (status, seconds, raw[:300])
    assert error_of(raw)["code"] == "invalid_chunk_length"


@pytest.mark.parametrize("length", ["-1", "12abc", "99999999999999999999999"])
def test_a_content_length_that_is_no_byte_count_is_refused(served: tuple[LiveServer, str], length: str) -> None:
    server, key = served
    headers = {"Content-Type": "application/json", "Content-Length": length, "Authorization": f"Bearer {key}"}
    status, raw, seconds = server.exchange(head("/v1/vision/detect", headers), b"{}")
    assert status in (400, 413) and seconds < PROMPT_S, (status, seconds, raw[:300])


def _chunked(total: int, piece: int = 1000) -> bytes:
    """A JSON-looking body of ``total`` bytes in ``piece``-byte chunks, with the terminating chunk."""
    data = b'{"name": "' + b"x" * (total - 12) + b'"}'
    parts = [data[i : i + piece] for i in range(0, len(data), piece)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_chunked_body_growing_past_the_cap_is_a_413(served: tuple[LiveServer, str], path: str) -> None:
    server, key = served
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Authorization": f"Bearer {key}"}
    status, raw, seconds = server.exchange(head(path, headers), _chunked(20_000))
    assert status == 413 and seconds < PROMPT_S, (status, seconds, raw[:300])
    assert error_of(raw)["code"] == "body_too_large"


def test_a_chunked_body_under_the_cap_is_read(served: tuple[LiveServer, str]) -> None:
    """The cap counts bytes, it does not refuse chunked bodies: a small one reaches validation."""
    server, key = served
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Authorization": f"Bearer {key}"}
    status, raw, _ = server.exchange(head("/v1/vision/detect", headers), _chunked(2000))
    assert status == 400, raw[:300]
    assert error_of(raw)["field"] == "image"


def test_a_chunked_body_without_a_key_is_a_401(served: tuple[LiveServer, str]) -> None:
    server, _ = served
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, raw, seconds = server.exchange(head("/v1/vision/detect", headers), _chunked(20_000))
    assert status == 401 and seconds < PROMPT_S, (status, seconds, raw[:300])
