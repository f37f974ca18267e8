"""Helpers of the benchmarks that run the real service: free ports and a loopback media server."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from visiongrid.s3_server import free_ports


def free_port() -> int:
    return free_ports(1)[0]


def serve_file_over_http(path: Path) -> str:
    """Serve ``path``'s folder on a loopback port (a daemon thread); return the file's URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
