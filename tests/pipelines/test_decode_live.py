"""The live decoder without the service: the timeline across connections, and what an HLS playlist
may make FFmpeg open."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipelines.decode_live import LiveDecoder, LivePolicy, _Timeline, is_live_url
from pipelines.decode_types import Sampling, VideoDecodeError
from tests.range_server import RangeServer


def test_live_schemes() -> None:
    assert all(is_live_url(url) for url in ("rtsp://cam/a", "RTMP://x/y", "srt://h:9000", "rtsps://c/d"))
    assert not any(is_live_url(url) for url in ("https://x/a.m3u8", "storage://a.mp4", "http://x/live.ts"))


def test_one_monotonic_timeline_across_reconnects() -> None:
    line = _Timeline()
    first = [line.place(pts, 25.0) for pts in (10.0, 10.04, 10.08)]  # a camera's clock starts anywhere
    assert first == pytest.approx([0.0, 0.04, 0.08])
    line.gap()  # the camera restarted: its clock starts over
    again = [line.place(pts, 25.0) for pts in (0.0, 0.04)]
    assert again == pytest.approx([0.12, 0.16]), "it continues one frame after the last one seen"
    assert line.place(0.01, 25.0) > again[-1], "never backwards"
    assert [line.next_index() for _ in range(3)] == [0, 1, 2]


def test_a_playlist_cannot_make_ffmpeg_read_local_files(tmp_path: Path, media_dir: Path) -> None:
    """FFmpeg's HLS demuxer refuses a ``file:`` segment of an http playlist by itself today; the
    decoder's ``protocol_whitelist`` keeps that so whatever FFmpeg's defaults become."""
    (tmp_path / "evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n"
        f"file://{media_dir / 'vtest.avi'}\n#EXT-X-ENDLIST\n"
    )
    policy = LivePolicy(attempts=0, backoff_s=0.01, open_timeout_s=3, read_timeout_s=3)
    with RangeServer(tmp_path) as server:
        decoder = LiveDecoder(
            server.url("evil.m3u8"), sampling=Sampling(mode="interval", value=1), policy=policy, stop=threading.Event()
        )
        try:
            frames = list(decoder)
        except VideoDecodeError:
            frames = []
    assert frames == [], "a segment on file: was decoded"


def test_a_source_that_never_answers_is_lost_after_the_attempts() -> None:
    policy = LivePolicy(attempts=2, backoff_s=0.01, open_timeout_s=0.5, read_timeout_s=0.5)
    decoder = LiveDecoder("rtsp://127.0.0.1:9/none", sampling=Sampling(), policy=policy, stop=threading.Event())
    with pytest.raises(VideoDecodeError) as raised:
        list(decoder)
    assert raised.value.code == "source_lost"


def test_a_stop_cuts_the_backoff_short() -> None:
    stop = threading.Event()
    policy = LivePolicy(attempts=5, backoff_s=30.0, open_timeout_s=0.5, read_timeout_s=0.5)
    decoder = LiveDecoder("rtsp://127.0.0.1:9/none", sampling=Sampling(), policy=policy, stop=stop)
    threading.Timer(0.8, stop.set).start()
    assert list(decoder) == []  # returned within the first 30 s wait, not after it


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_real_rtsp_camera_over_either_transport(media_dir: Path, transport: str) -> None:
    from tests.live import RtspServer

    policy = LivePolicy(attempts=1, backoff_s=0.2, open_timeout_s=5, read_timeout_s=5, rtsp_transport=transport)  # type: ignore[arg-type]
    with RtspServer(media_dir / "vtest.avi") as camera:
        decoder = LiveDecoder(
            camera.url, sampling=Sampling(mode="fps", value=5), policy=policy, stop=threading.Event(), max_frames=4
        )
        frames = list(decoder)
    assert len(frames) == 4 and decoder.finish_reason == "max_frames"
    assert decoder.stats.total_frames is None and frames[0].image.shape == (576, 768, 3)
    stamps = [frame.timestamp_ms for frame in frames]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] == pytest.approx(600, abs=45)  # 5 fps on PTS
