"""A real webhook receiver on loopback: verifies every signature, answers scripted status codes.

Used by the webhook tests and ``benchmarks/platform_layer.py``. Each request is recorded with its headers,
body, arrival time and whether its ``X-Webhook-Signature`` verified against the secrets it knows.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    signature_ok: bool | None  # None: unsigned
    status: int


def verify(secret: str, header: str, body: bytes) -> bool:
    """Check ``t=<unix>,v1=<hex>`` the way a receiver would: HMAC-SHA256 over ``t + "." + body``."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    """``statuses`` answered in order (then ``default``); ``secrets`` accepted for verification."""

    statuses: deque[int] = field(default_factory=deque)
    default: int = 200
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    redirect_to: str | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver.statuses.popleft() if receiver.statuses else receiver.default
                signature = self.headers.get("X-Webhook-Signature")
                ok = None if signature is None else any(verify(s, signature, body) for s in receiver.secrets)
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver.received.append(Received(self.path, headers, body, time.time(), ok, status))
                self.send_response(status)
                if receiver.redirect_to is not None and 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
