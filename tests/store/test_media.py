"""Media: the SSRF guard, size limits, timeouts, redirects, base64 decoding, staging to storage and its deletion.

Downloads go to a real HTTP server on 127.0.0.1 started by the test; ``allow_private_urls=True`` lets them
through, and the same URL is refused with the default ``False``.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import store.media as media
import store.media_fetch as media_fetch
from store.media import MediaError, check_url_allowed, decode_base64, delete_staged, open_video, stage_to_storage
from store.objects import ObjectNotFound, ObjectStore
from visiongrid.settings import Settings

LIMIT = 5000
VIDEO = bytes(range(256)) * 16  # 4096 bytes, under LIMIT


@dataclass
class MediaServer:
    base: str
    port: int
    requests: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    redirect_to: str = ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked responses need it
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, total: int, chunk: int = 1000) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            while sent < total:
                size = min(chunk, total - sent)
                self.wfile.write(f"{size:x}\r\n".encode() + b"v" * size + b"\r\n")
                sent += size
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should for an oversized body

    def do_GET(self) -> None:
        self.server.log.append(self.path)
        self.server.hosts.append(self.headers.get("Host", ""))
        port = self.server.server_address[1]
        if self.path == "/video.mp4":
            self._send(200, VIDEO, {"Content-Type": "video/mp4"})
        elif self.path == "/missing":
            self._send(404, b"not found")
        elif self.path == "/error":
            self._send(500, b"boom")
        elif self.path == "/big-declared":
            self._send(200, b"x" * (LIMIT + 1))
        elif self.path == "/big-chunked":
            self._send_chunked(LIMIT * 4)
        elif self.path == "/small-chunked":
            self._send_chunked(LIMIT - 1)
        elif self.path == "/empty":
            self._send(200, b"")
        elif self.path == "/redirect":
            self._send(302, b"", {"Location": "/video.mp4"})
        elif self.path == "/redirect-to-loopback":
            self._send(302, b"", {"Location": f"http://127.0.0.1:{port}/video.mp4"})
        elif self.path == "/redirect-to-other-host":
            self._send(302, b"", {"Location": self.server.media.redirect_to})
        elif self.path == "/redirect-to-file":
            self._send(302, b"", {"Location": "file:///etc/passwd"})
        elif self.path.startswith("/loop"):
            self._send(301, b"", {"Location": f"/loop{len(self.server.log)}"})
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, VIDEO)
        else:
            self._send(404, b"?")


def _serve(address: str) -> Iterator[MediaServer]:
    httpd = ThreadingHTTPServer((address, 0), _Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    served = MediaServer(base=f"http://{address}:{port}", port=port)
    httpd.log = served.requests  # type: ignore[attr-defined]
    httpd.hosts = served.hosts  # type: ignore[attr-defined]
    httpd.media = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[MediaServer]:
    yield from _serve("127.0.0.1")


class FakeResolver:
    """``socket.getaddrinfo`` answering from a table (each name's answers in turn, the last one kept);
    IP literals resolve to themselves, as they do for real (httpcore resolves the pinned address too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.answers = {name: list(addresses) for name, addresses in answers.items()}
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name not in self.answers:
                return real(host, port, *args, **kwargs)
            self.asked.append(name)
            queue = self.answers[name]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

        monkeypatch.setattr(media_fetch.socket, "getaddrinfo", getaddrinfo)


def _settings(tmp_path: Path, *, private: bool) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", allow_private_urls=private, max_video_bytes=LIMIT, media_fetch_timeout_s=0.5
    )


@pytest.fixture
def private_ok(tmp_path: Path) -> Settings:
    return _settings(tmp_path, private=True)


@pytest.fixture
def public_only(tmp_path: Path) -> Settings:
    return _settings(tmp_path, private=False)


def _fetch(url: str, settings: Settings, tmp_path: Path) -> Path:
    return open_video(url, settings, tmp_path / "work")


def _code(excinfo: pytest.ExceptionInfo[MediaError]) -> str:
    return excinfo.value.code


def _workdir_files(tmp_path: Path) -> list[Path]:
    work = tmp_path / "work"
    return sorted(work.iterdir()) if work.exists() else []


# --- downloads ----------------------------------------------------------------------------------


def test_download_succeeds_when_private_urls_are_allowed(
    server: MediaServer, private_ok: Settings, tmp_path: Path
) -> None:
    path = _fetch(f"{server.base}/video.mp4", private_ok, tmp_path)
    assert path.read_bytes() == VIDEO
    assert path.parent == tmp_path / "work" and path.suffix == ".mp4"
    assert _workdir_files(tmp_path) == [path]  # no temporary file left behind


def test_same_loopback_url_is_refused_by_default(server: MediaServer, public_only: Settings, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/video.mp4", public_only, tmp_path)
    assert _code(excinfo) == "url_not_allowed" and excinfo.value.field == "input[0].url"
    assert server.requests == []  # refused before connecting


def test_http_errors_are_unreachable(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    for path in ("/missing", "/error", "/empty"):
        with pytest.raises(MediaError) as excinfo:
            _fetch(f"{server.base}{path}", private_ok, tmp_path)
        assert _code(excinfo) == "media_unreachable", path
    assert _workdir_files(tmp_path) == []


def test_connection_refused_is_unreachable(private_ok: Settings, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens here once closed
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"http://127.0.0.1:{port}/video.mp4", private_ok, tmp_path)
    assert _code(excinfo) == "media_unreachable"


def test_timeout_is_unreachable(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/slow", private_ok, tmp_path)
    assert _code(excinfo) == "media_unreachable"
    assert "timed out" in excinfo.value.message
    assert time.monotonic() - started < 1.4


def test_too_large_by_content_length(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/big-declared", private_ok, tmp_path)
    assert _code(excinfo) == "media_too_large"
    assert _workdir_files(tmp_path) == []


def test_too_large_while_streaming_without_length(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/big-chunked", private_ok, tmp_path)
    assert _code(excinfo) == "media_too_large"
    assert _workdir_files(tmp_path) == []  # the partial download is removed


def test_chunked_under_the_limit_downloads(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    path = _fetch(f"{server.base}/small-chunked", private_ok, tmp_path)
    assert path.read_bytes() == b"v" * (LIMIT - 1)


def test_redirects_are_followed(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    path = _fetch(f"{server.base}/redirect", private_ok, tmp_path)
    assert path.read_bytes() == VIDEO
    assert server.requests == ["/redirect", "/video.mp4"]


def test_too_many_redirects(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/loop", private_ok, tmp_path)
    assert _code(excinfo) == "media_unreachable" and "redirect" in excinfo.value.message
    assert len(server.requests) == media.MAX_REDIRECTS + 1


def test_redirect_to_another_scheme_is_refused(server: MediaServer, private_ok: Settings, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/redirect-to-file", private_ok, tmp_path)
    assert _code(excinfo) == "url_not_allowed"


def test_redirect_to_loopback_is_refused(
    server: MediaServer, public_only: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first URL passes the guard (``media.example`` on 127.0.0.1 stands in for a public media host);
    its redirect target (127.0.0.1 by another name: not public) does not and is never fetched."""
    resolver = FakeResolver(monkeypatch, {"media.example": ["127.0.0.1"], "inside.example": ["127.0.0.2"]})
    monkeypatch.setattr(media_fetch, "address_allowed", lambda address: str(address) == "127.0.0.1")
    server.redirect_to = f"http://inside.example:{server.port}/video.mp4"
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"http://media.example:{server.port}/redirect-to-other-host", public_only, tmp_path)
    assert _code(excinfo) == "url_not_allowed"
    assert resolver.asked == ["media.example", "inside.example"]
    assert server.requests == ["/redirect-to-other-host"]  # the target was never fetched


def test_connected_address_is_checked_against_dns_rebinding(
    server: MediaServer, public_only: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the name check passed (DNS answered public), a connection that lands on loopback is refused."""
    monkeypatch.setattr(media_fetch, "checked_addresses", lambda url, settings, field: None)
    with pytest.raises(MediaError) as excinfo:
        _fetch(f"{server.base}/video.mp4", public_only, tmp_path)
    assert _code(excinfo) == "url_not_allowed"
    assert _workdir_files(tmp_path) == []


def test_the_connection_is_pinned_to_the_checked_address(
    server: MediaServer, public_only: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: ``media.example`` answers "public" (127.0.0.1 plays a public host here) when it is
    checked and "private" (127.0.0.2, a second server) on every later lookup. The host is resolved once
    and the request goes to the checked address with the original Host header: the private server never
    sees a request, not even one refused after sending."""
    private = _serve("127.0.0.2")
    inside = next(private)
    try:
        resolver = FakeResolver(monkeypatch, {"media.example": ["127.0.0.1", "127.0.0.2"]})
        monkeypatch.setattr(media_fetch, "address_allowed", lambda address: str(address) == "127.0.0.1")
        path = _fetch(f"http://media.example:{server.port}/video.mp4", public_only, tmp_path)
        assert path.read_bytes() == VIDEO
        assert resolver.asked == ["media.example"]  # one lookup, and the address it gave was used
        assert server.hosts == [f"media.example:{server.port}"]
        assert inside.requests == []
        with pytest.raises(MediaError) as excinfo:  # the next lookup answers private: refused before sending
            _fetch(f"http://media.example:{inside.port}/video.mp4", public_only, tmp_path)
        assert _code(excinfo) == "url_not_allowed" and inside.requests == []
    finally:
        private.close()


def test_https_is_pinned_with_the_original_name_for_sni(public_only: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = FakeResolver(monkeypatch, {"media.example": ["93.184.216.34"], "v6.example": ["2606:4700::1111"]})
    url, headers, extensions = media_fetch.pinned_request("https://Media.Example:8443/a.mp4?x=1", public_only, "f")
    assert url == "https://93.184.216.34:8443/a.mp4?x=1"
    assert headers == {"Host": "media.example:8443"} and extensions == {"sni_hostname": "media.example"}
    url, headers, extensions = media_fetch.pinned_request("http://media.example/a.mp4", public_only, "f")
    assert (url, headers, extensions) == ("http://93.184.216.34/a.mp4", {"Host": "media.example"}, {})
    assert resolver.asked == ["media.example", "media.example"]


# --- the URL guard --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/v.mp4",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "/etc/passwd",
        "http:///no-host",
        "http://[::1",
        "http://127.0.0.1/v.mp4",
        "http://127.1.2.3:8080/v.mp4",
        "http://localhost/v.mp4",
        "http://10.1.2.3/v.mp4",
        "http://172.16.5.4/v.mp4",
        "http://192.168.1.1/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/v.mp4",
        "http://0.0.0.0/v.mp4",
        "http://224.0.0.1/v.mp4",
        "http://240.0.0.1/v.mp4",
        "http://2130706433/v.mp4",
        "http://0x7f000001/v.mp4",
        "http://[::1]/v.mp4",
        "http://[::ffff:127.0.0.1]/v.mp4",
        "http://[::ffff:10.0.0.1]/v.mp4",
        "http://[fe80::1]/v.mp4",
        "http://[fc00::1]/v.mp4",
        "http://[2002:7f00:1::]/v.mp4",
    ],
)
def test_non_public_urls_are_not_allowed(url: str, public_only: Settings) -> None:
    with pytest.raises(MediaError) as excinfo:
        check_url_allowed(url, public_only, field="input[0].url")
    assert _code(excinfo) == "url_not_allowed", excinfo.value.message
    assert excinfo.value.field == "input[0].url"


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/v.mp4", "HTTPS://8.8.8.8:8443/v.mp4", "https://[2606:4700:4700::1111]/v.mp4"]
)
def test_public_addresses_are_allowed(url: str, public_only: Settings) -> None:
    check_url_allowed(url, public_only)


def test_private_allowed_still_needs_http(private_ok: Settings) -> None:
    check_url_allowed("http://127.0.0.1/v.mp4", private_ok)
    check_url_allowed("http://10.0.0.1/v.mp4", private_ok)
    with pytest.raises(MediaError) as excinfo:
        check_url_allowed("file:///etc/passwd", private_ok)
    assert _code(excinfo) == "url_not_allowed"


def test_every_resolved_address_is_checked(public_only: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "media.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(media_fetch.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(MediaError) as excinfo:
        check_url_allowed("https://media.example/v.mp4", public_only)
    assert _code(excinfo) == "url_not_allowed" and "10.0.0.7" in excinfo.value.message


def test_unresolvable_host_is_unreachable(public_only: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(media_fetch.socket, "getaddrinfo", fail)
    with pytest.raises(MediaError) as excinfo:
        check_url_allowed("https://no-such-host.example/v.mp4", public_only)
    assert _code(excinfo) == "media_unreachable"


# --- staging (to the project's storage) ------------------------------------------------------------


@pytest.fixture
def stored(s3_settings: Settings, tmp_path: Path) -> tuple[Settings, str]:
    """Media settings on the session's real S3 server, and a project of this test's own."""
    settings = s3_settings.model_copy(
        update={"data_dir": tmp_path / "data", "allow_private_urls": True, "max_video_bytes": LIMIT}
    )
    return settings, f"media-{uuid.uuid4().hex[:12]}"


def _staged_objects(settings: Settings, project: str) -> list[str]:
    return sorted(info.path for info in ObjectStore(settings).list(project, "staged/")[0])


def test_stage_to_storage_writes_inside_the_projects_staged_folder(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    url = stage_to_storage(b"hello", settings, project, suffix=".mp4")
    path = url.removeprefix("storage://")
    assert url.startswith("storage://staged/") and PurePosixPath(path).suffix == ".mp4"
    assert ObjectStore(settings).get_bytes(project, url) == b"hello"
    other = stage_to_storage(b"again", settings, project, suffix="/../../evil")
    other_path = PurePosixPath(other.removeprefix("storage://"))
    assert other_path.parent == PurePosixPath("staged") and other_path.suffix == ".bin" and other != url
    assert _staged_objects(settings, project) == sorted([path, str(other_path)])  # nothing else stored
    assert ObjectStore(settings).list(f"{project}-other", "staged/")[0] == []  # in this project only


def test_decode_base64_plain_and_data_uri(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    encoded = base64.b64encode(VIDEO).decode()
    assert decode_base64(encoded, settings) == VIDEO
    assert decode_base64(f"data:video/mp4;base64,{encoded}", settings) == VIDEO
    assert decode_base64(f"  DATA:video/mp4;codecs=avc1;base64,{encoded}\n", settings) == VIDEO
    url = stage_to_storage(decode_base64(encoded, settings), settings, project)
    assert ObjectStore(settings).get_bytes(project, url) == VIDEO


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "data:video/mp4;base64,",
        "not base64!",
        "YWJj ZGVm",  # inner whitespace
        "YWJjZA",  # missing padding
        "YWJj-_==",  # url-safe alphabet
        "data:video/mp4,YWJj",  # not a base64 data URI
    ],
)
def test_decode_base64_is_strict(text: str, private_ok: Settings) -> None:
    with pytest.raises(MediaError) as excinfo:
        decode_base64(text, private_ok, field="input[0].data")
    assert _code(excinfo) == "invalid_base64" and excinfo.value.field == "input[0].data"


def test_base64_and_staging_size_limit(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    with pytest.raises(MediaError) as excinfo:
        decode_base64(base64.b64encode(b"x" * (LIMIT + 1)).decode(), settings)
    assert _code(excinfo) == "media_too_large"
    with pytest.raises(MediaError) as excinfo:
        stage_to_storage(b"x" * (LIMIT + 1), settings, project)
    assert _code(excinfo) == "media_too_large"
    assert _staged_objects(settings, project) == []  # refused before anything was stored
    exactly = stage_to_storage(decode_base64(base64.b64encode(b"x" * LIMIT).decode(), settings), settings, project)
    assert ObjectStore(settings).head(project, exactly).size == LIMIT


def test_open_video_staged(stored: tuple[Settings, str], tmp_path: Path) -> None:
    settings, project = stored
    staged = stage_to_storage(VIDEO, settings, project, suffix=".mp4")
    local = open_video(staged, settings, tmp_path / "work", project=project)
    assert local.read_bytes() == VIDEO and local.parent == tmp_path / "work"
    with pytest.raises(MediaError) as excinfo:  # another project does not see it
        open_video(staged, settings, tmp_path / "work", project=f"{project}-other")
    assert _code(excinfo) == "media_not_found" and excinfo.value.field == "input[0].url"
    delete_staged([staged], settings, project)
    with pytest.raises(MediaError) as excinfo:
        open_video(staged, settings, tmp_path / "work", project=project)
    assert _code(excinfo) == "media_not_found"
    with pytest.raises(ValueError):
        open_video("", settings, tmp_path / "work", project=project)


def test_delete_staged_only_storage_objects_of_the_project(stored: tuple[Settings, str], tmp_path: Path) -> None:
    settings, project = stored
    inside = stage_to_storage(b"1", settings, project)
    kept = stage_to_storage(b"2", settings, project)
    elsewhere = f"{project}-other"
    foreign = stage_to_storage(b"3", settings, elsewhere)
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"keep me")
    data_file = settings.data_dir / "visiongrid.db"
    data_file.parent.mkdir(parents=True)
    data_file.write_bytes(b"db")
    legacy_dir = settings.data_dir / "staged"  # where local staging used to write
    legacy_dir.mkdir()
    legacy = legacy_dir / "old.bin"
    legacy.write_bytes(b"old")
    traversal = "storage://staged/../visiongrid.db"

    delete_staged(
        [inside, str(outside), str(data_file), str(legacy), traversal, "storage://staged/gone.bin"], settings, project
    )
    delete_staged([kept], settings, None)  # no project: refused
    delete_staged([foreign], settings, project)  # the same path in another project is not this one's

    objects = ObjectStore(settings)
    with pytest.raises(ObjectNotFound):
        objects.head(project, inside)
    assert objects.get_bytes(project, kept) == b"2"
    assert objects.get_bytes(elsewhere, foreign) == b"3"
    assert outside.read_bytes() == b"keep me"
    assert data_file.read_bytes() == b"db"
    assert legacy.read_bytes() == b"old" and legacy_dir.is_dir()


# --- VisionGrid's own presigned URLs as input --------------------------------------------------------


def test_own_presigned_url_reads_through_storage(stored: tuple[Settings, str], tmp_path: Path) -> None:
    """The upload → presign → process flow: the private S3 endpoint is never fetched over HTTP, and
    ``allow_private_urls`` is not needed."""
    settings, project = stored
    settings = settings.model_copy(update={"allow_private_urls": False})
    objects = ObjectStore(settings)
    objects.put_bytes(project, "clips/a b.mp4", VIDEO)
    url = objects.presign_get(project, "clips/a b.mp4", expires_s=60)
    assert media.resolve_media_url(url, settings, project, "input[0].url") == "storage://clips/a b.mp4"
    local = open_video(url, settings, tmp_path / "work", "input[0].url", project)
    assert local.read_bytes() == VIDEO
    image = media.read_image_source({"url": url}, settings, project, "image")
    assert image == VIDEO
    with pytest.raises(MediaError) as excinfo:  # any other private URL stays refused
        media.resolve_media_url("http://127.0.0.1:1/clips/a.mp4", settings, project, "input[0].url")
    assert _code(excinfo) == "url_not_allowed"


def test_presigned_url_of_another_project_is_refused(stored: tuple[Settings, str], tmp_path: Path) -> None:
    settings, project = stored
    objects = ObjectStore(settings)
    objects.put_bytes(project, "mine.mp4", VIDEO)
    url = objects.presign_get(project, "mine.mp4", expires_s=60)
    other = f"{project}-other"
    for call in (
        lambda: media.resolve_media_url(url, settings, other, "input[0].url"),
        lambda: open_video(url, settings, tmp_path / "work", "input[0].url", other),
        lambda: media.read_image_source({"url": url}, settings, other, "images[0]"),
    ):
        with pytest.raises(MediaError) as excinfo:
            call()
        assert _code(excinfo) == "media_not_found" and excinfo.value.field in ("input[0].url", "images[0].url")
    assert _workdir_files(tmp_path) == []


def _tampered(url: str) -> list[str]:
    head, signature = url.split("X-Amz-Signature=")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return [
        f"{head}X-Amz-Signature={flipped}",
        url.replace("mine.mp4", "mine.mp5"),  # a valid signature pointed at another key
        url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
        url.replace("/visiongrid-test/", "/other-bucket/"),
        url.split("&X-Amz-Signature=")[0],
    ]


def test_tampered_presigned_url_is_refused(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    objects = ObjectStore(settings)
    objects.put_bytes(project, "mine.mp4", VIDEO)
    objects.put_bytes(project, "mine.mp5", VIDEO)
    url = objects.presign_get(project, "mine.mp4", expires_s=60)
    assert "/visiongrid-test/" in url and "X-Amz-Expires=60" in url
    for bad in _tampered(url):
        with pytest.raises(MediaError) as excinfo:
            media.resolve_media_url(bad, settings, project, "input[0].url")
        assert _code(excinfo) == "url_not_allowed" and excinfo.value.field == "input[0].url", bad
    wrong_secret = settings.model_copy(update={"s3_secret_key": "another-secret"})
    with pytest.raises(MediaError) as excinfo:
        media.resolve_media_url(url, wrong_secret, project, "input[0].url")
    assert _code(excinfo) == "url_not_allowed"


def test_expired_presigned_url_is_refused(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    objects = ObjectStore(settings)
    objects.put_bytes(project, "soon.mp4", VIDEO)
    url = objects.presign_get(project, "soon.mp4", expires_s=1)
    time.sleep(2.1)
    with pytest.raises(MediaError) as excinfo:
        media.resolve_media_url(url, settings, project, "input[0].url")
    assert _code(excinfo) == "url_not_allowed" and "expired" in excinfo.value.message


def test_presigned_url_for_the_public_endpoint_is_recognised(stored: tuple[Settings, str]) -> None:
    settings, project = stored
    public = settings.model_copy(update={"s3_public_endpoint_url": "https://files.example.com/s3"})
    objects = ObjectStore(public)
    objects.put_bytes(project, "p.mp4", VIDEO)
    url = objects.presign_get(project, "p.mp4", expires_s=60)
    assert url.startswith("https://files.example.com/s3/visiongrid-test/")
    assert media.resolve_media_url(url, public, project, "input[0].url") == "storage://p.mp4"
