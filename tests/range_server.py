"""A real loopback HTTP file server for the progressive-decode tests and benchmarks: serves a folder
with or without ``Range`` support, optionally throttled, and logs every request it answered.

``http.server``'s own handler ignores ``Range``; this one answers ``bytes=N-`` and ``bytes=N-M`` with
206 and a ``Content-Range`` (416 past the end), or, with ``ranges=False``, always 200 and the whole
body, as an origin without range support does.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RangeServer"]

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    path: str
    range: str | None
    status: int
    bytes_sent: int = 0


@dataclass
class RangeServer:
    """``with RangeServer(folder) as server: server.url("clip.mp4")``."""

    folder: Path
    ranges: bool = True
    bytes_per_s: float | None = None  # throttle every response body to this rate
    log: list[Served] = field(default_factory=list)
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                path = owner.folder / self.path.lstrip("/").split("?", 1)[0]
                if not path.is_file():
                    self._answer(404, b"not found", 0, 0, None)
                    return
                total = path.stat().st_size
                asked = self.headers.get("Range")
                match = _RANGE.match(asked or "") if owner.ranges else None
                if match is None:
                    self._answer(200, path, 0, total, asked)
                    return
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else total - 1
                if start >= total:
                    self._answer(416, None, 0, 0, asked, {"Content-Range": f"bytes */{total}"})
                    return
                end = min(end, total - 1)
                headers = {"Content-Range": f"bytes {start}-{end}/{total}"}
                self._answer(206, path, start, end + 1 - start, asked, headers)

            def _answer(
                self,
                status: int,
                path: Path | bytes | None,
                start: int,
                length: int,
                asked: str | None,
                headers: dict[str, str] | None = None,
            ) -> None:
                """Send ``length`` bytes of ``path`` from ``start`` (read from disk as they go out)."""
                served = Served(self.path, asked, status)
                owner.log.append(served)
                if isinstance(path, bytes):
                    length = len(path)
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                if owner.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if path is None:
                    return
                step = 64 * 1024
                try:
                    if isinstance(path, bytes):
                        self.wfile.write(path)
                        served.bytes_sent += len(path)
                        return
                    with path.open("rb") as handle:
                        handle.seek(start)
                        left = length
                        while left > 0:
                            piece = handle.read(min(step, left))
                            if not piece:
                                return
                            self.wfile.write(piece)
                            served.bytes_sent += len(piece)
                            left -= len(piece)
                            if owner.bytes_per_s:
                                time.sleep(len(piece) / owner.bytes_per_s)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client closed the transfer (a seek elsewhere, or a cancel)

        self._server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}/{name}"

    @property
    def bytes_sent(self) -> int:
        return sum(served.bytes_sent for served in self.log)
