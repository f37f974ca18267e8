"""A real TCP proxy on loopback in front of the service that breaks connections on cue, the way a
flaky network or a restarting load balancer does: the client's retry and resume logic is tested
against real socket failures, not mocks.

``proxy.break_next(rb"PUT /v1/storage/uploads/[^ ]+/chunks/1 ")`` closes the connection that sends
the next matching request before it reaches the service; ``after_bytes=N`` lets the request through
and cuts its connection once N bytes of the answer went back (mid-stream for SSE).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass

__all__ = ["FlakyProxy"]


@dataclass
class _Rule:
    request: re.Pattern[bytes]
    after_bytes: int | None
    fired: bool = False


class FlakyProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self.broken = 0  # connections broken on purpose
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def break_next(self, request: bytes, *, after_bytes: int | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(re.compile(request), after_bytes))

    def close(self) -> None:
        self._listener.close()

    # ------------------------------------------------------------------ plumbing

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _match(self, data: bytes) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.fired and rule.request.search(data):
                    rule.fired = True
                    return rule
        return None

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        armed: list[int | None] = []  # bytes of answer left before the cut, once a rule fired
        done = threading.Event()

        def shut() -> None:
            done.set()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        def to_upstream() -> None:
            while not done.is_set():
                try:
                    data = client.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                rule = self._match(data)
                if rule is not None and rule.after_bytes is None:
                    self.broken += 1
                    break  # the request never reaches the service
                if rule is not None:
                    armed.append(rule.after_bytes)
                try:
                    upstream.sendall(data)
                except OSError:
                    break
            shut()

        def to_client() -> None:
            while not done.is_set():
                try:
                    data = upstream.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                if armed and armed[0] is not None:
                    left = armed[0]
                    if len(data) >= left:
                        with contextlib.suppress(OSError):
                            client.sendall(data[:left])
                        self.broken += 1
                        break
                    armed[0] = left - len(data)
                try:
                    client.sendall(data)
                except OSError:
                    break
            shut()

        threading.Thread(target=to_upstream, daemon=True).start()
        to_client()
