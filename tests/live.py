"""Live sources for the tests: a real RTSP server process (``tests/rtsp_server.py``) that can be
killed and restarted on the same port, to drop a live task's source and bring it back, and a real
RTMP server (nginx with Debian's ``libnginx-mod-rtmp``) fed by a GStreamer publisher
(``tests/rtmp_publish.py``) that can be stopped and started again."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RtmpServer", "RtspServer", "free_port"]

ROOT = Path(__file__).resolve().parent.parent


NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} does not accept connections")


class RtspServer:
    """``rtsp://127.0.0.1:PORT/cam`` playing ``clip`` in real time (25 fps H.264)."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip = clip
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> RtspServer:
        self.process = subprocess.Popen(
            ["/usr/bin/python3", str(ROOT / "tests" / "rtsp_server.py"), str(self.clip), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        _wait_for_port(self.port, "the RTSP server")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


_NGINX_CONF = """load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}
"""


class RtmpServer:
    """``rtmp://127.0.0.1:PORT/live/cam``: a real nginx-rtmp server, and a publisher that plays
    ``clip`` into it in real time (25 fps H.264 in FLV). ``stop_publisher``/``publish`` drop the
    stream and bring it back while the server stays up, as an encoder restart does."""

    def __init__(self, clip: Path) -> None:
        self.clip = clip
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vg-rtmp-"))
        self.nginx: subprocess.Popen[bytes] | None = None
        self.publisher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/cam"

    def start(self) -> RtmpServer:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.root / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(module=NGINX_RTMP_MODULE, root=self.root, port=self.port))
        self.nginx = subprocess.Popen(
            [nginx, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, "the RTMP server")
        return self.publish()

    def publish(self) -> RtmpServer:
        self.publisher = subprocess.Popen(
            ["/usr/bin/python3", str(ROOT / "tests" / "rtmp_publish.py"), str(self.clip), self.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.publisher.stdout is not None
        line = self.publisher.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError(f"the RTMP publisher did not start: {line!r}")
        return self

    def stop_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.kill()
            self.publisher.wait(timeout=10)
            self.publisher = None

    def kill(self) -> None:
        """The server and the publisher down; ``start()`` brings both back on the same port."""
        self.stop_publisher()
        if self.nginx is not None:
            self.nginx.kill()
            self.nginx.wait(timeout=10)
            self.nginx = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RtmpServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
