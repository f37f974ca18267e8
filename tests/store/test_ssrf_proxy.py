"""FFmpeg's own requests for a live http(s) source go through the SSRF proxy: an HLS playlist on an
allowed host cannot make FFmpeg fetch segments from a refused one (without the proxy it could), a
refused target gets 403 (plain and CONNECT), and an allowed stream plays through it untouched."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pipelines.decode_live import LiveDecoder, LivePolicy
from pipelines.decode_types import Sampling, VideoDecodeError
from store import media_fetch
from store.ssrf_proxy import SsrfProxy
from tests.range_server import RangeServer
from visiongrid.settings import Settings


def _hls(source: Path, folder: Path, frames: int = 50) -> Path:
    """A finished HLS playlist (1 s segments, H.264) of ``frames`` frames of ``source``."""
    playlist = folder / "index.m3u8"
    with av.open(str(source)) as src, av.open(str(playlist), "w", format="hls", options={"hls_time": "1"}) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25"})
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        for n, frame in enumerate(src.decode(video=0)):
            if n == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return playlist


def _decode(url: str, proxy: SsrfProxy | None) -> int:
    policy = LivePolicy(attempts=0, open_timeout_s=5, read_timeout_s=5, http_proxy=proxy.url if proxy else None)
    return sum(
        1 for _ in LiveDecoder(url, sampling=Sampling(mode="interval", value=1), policy=policy, stop=threading.Event())
    )


@pytest.fixture
def only_127_0_0_1(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A policy where 127.0.0.1 counts as public and every other address (127.0.0.2 too) does not."""
    monkeypatch.setattr(media_fetch, "address_allowed", lambda address: str(address) == "127.0.0.1")
    yield Settings(allow_private_urls=False)


def test_an_allowed_stream_plays_through_the_proxy(tmp_path: Path, media_dir: Path) -> None:
    playlist = _hls(media_dir / "vtest.avi", tmp_path)
    proxy = SsrfProxy(Settings(allow_private_urls=True))
    with RangeServer(tmp_path) as origin:
        assert _decode(origin.url(playlist.name), proxy) == 50
    segments = len(list(tmp_path.glob("*.ts")))
    assert proxy.forwarded >= 1 + segments and not proxy.refused, "FFmpeg asked the proxy for everything"
    proxy.close()


def test_a_playlist_cannot_send_ffmpeg_to_a_refused_host(
    tmp_path: Path, media_dir: Path, only_127_0_0_1: Settings
) -> None:
    playlist = _hls(media_dir / "vtest.avi", tmp_path)
    with RangeServer(tmp_path, host="127.0.0.2") as hidden, RangeServer(tmp_path) as public:
        text = playlist.read_text()
        redirected = "".join(
            f"{hidden.url(line)}\n" if line.endswith(".ts") else f"{line}\n" for line in text.splitlines()
        )
        (tmp_path / "evil.m3u8").write_text(redirected)
        assert _decode(public.url("evil.m3u8"), None) == 50, "without the proxy FFmpeg fetches them"
        fetched = len(hidden.log)
        proxy = SsrfProxy(only_127_0_0_1)
        try:
            frames = _decode(public.url("evil.m3u8"), proxy)
        except VideoDecodeError as exc:  # FFmpeg gives up on the playlist whose segments all answer 403
            assert exc.code in ("source_unreachable", "source_lost", "not_a_video"), exc.code
            frames = 0
        assert frames == 0
        assert len(hidden.log) == fetched, "not one request reached the refused host"
        assert proxy.refused and all("127.0.0.2" in url for url in proxy.refused)
        proxy.close()


@pytest.mark.parametrize("request_line", [b"GET http://127.0.0.2:9/x HTTP/1.1", b"CONNECT 127.0.0.2:443 HTTP/1.1"])
def test_a_refused_target_is_a_403(only_127_0_0_1: Settings, request_line: bytes) -> None:
    proxy = SsrfProxy(only_127_0_0_1)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(request_line + b"\r\nHost: 127.0.0.2\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    proxy.close()
