"""The live decoder without the service: the timeline across connections, and what an HLS playlist
may make FFmpeg open."""

from __future__ import annotations

import itertools
import threading
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pipelines.decode_live import LiveDecoder, LivePolicy, _Timeline, is_live_url, scheme_supported
from pipelines.decode_types import Sampling, VideoDecodeError
from tests.range_server import RangeServer


def test_live_schemes() -> None:
    assert all(is_live_url(url) for url in ("rtsp://cam/a", "RTMP://x/y", "srt://h:9000", "rtsps://c/d"))
    assert not any(is_live_url(url) for url in ("https://x/a.m3u8", "storage://a.mp4", "http://x/live.ts"))


def test_the_protocols_of_this_ffmpeg_build() -> None:
    assert all(scheme_supported(scheme) for scheme in ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https"))
    assert not scheme_supported("srt")  # PyAV's wheels have no libsrt; submit refuses srt:// at once


def test_one_monotonic_timeline_across_reconnects() -> None:
    line = _Timeline()
    first = [line.place(pts, 25.0) for pts in (10.0, 10.04, 10.08)]  # a camera's clock starts anywhere
    assert first == pytest.approx([0.0, 0.04, 0.08])
    line.gap()  # the camera restarted: its clock starts over
    again = [line.place(pts, 25.0) for pts in (0.0, 0.04)]
    assert again == pytest.approx([0.12, 0.16]), "it continues one frame after the last one seen"
    assert line.place(0.01, 25.0) > again[-1], "never backwards"
    assert [line.next_index() for _ in range(3)] == [0, 1, 2]


def test_a_clock_reset_within_one_connection_continues_the_timeline() -> None:
    line = _Timeline()
    assert [line.place(t, 25.0) for t in (5.0, 5.04, 5.08)] == pytest.approx([0.0, 0.04, 0.08])
    assert line.place(0.0, 25.0) == pytest.approx(0.12)  # the encoder restarted: its clock is back at 0
    assert line.place(0.04, 25.0) == pytest.approx(0.16)
    assert line.place(60.0, 25.0) == pytest.approx(0.20)  # a 60 s leap forward is a reset too
    assert line.place(60.5, 25.0) == pytest.approx(0.70)  # a short pause is kept as time


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


def test_a_real_rtmp_stream_survives_an_encoder_restart_and_a_server_restart(media_dir: Path) -> None:
    """nginx-rtmp with a GStreamer publisher, frames at 5 fps on PTS. The encoder restarted mid-task:
    nginx keeps the player, the new encoder's clock starts at 0, and the task's clock goes on. The
    server restarted: a reconnect. Indices and timestamps keep increasing across both."""
    from tests.live import RtmpServer

    policy = LivePolicy(attempts=5, backoff_s=0.3, open_timeout_s=5, read_timeout_s=1.5)
    with RtmpServer(media_dir / "vtest.avi") as server:
        decoder = LiveDecoder(
            server.url, sampling=Sampling(mode="fps", value=5), policy=policy, stop=threading.Event(), max_frames=12
        )
        frames, reconnects_before_server_restart = [], -1
        for frame in decoder:
            frames.append(frame)
            if len(frames) == 3:
                server.stop_publisher()
                threading.Timer(0.5, server.publish).start()
            elif len(frames) == 7:
                reconnects_before_server_restart = decoder.stats.reconnects
                server.kill()
                threading.Timer(0.5, server.start).start()
    assert len(frames) == 12 and decoder.finish_reason == "max_frames"
    assert reconnects_before_server_restart == 0 and decoder.stats.reconnects >= 1
    assert decoder.stats.total_frames is None and frames[0].image.shape == (576, 768, 3)
    stamps = [frame.timestamp_ms for frame in frames]
    indices = [frame.frame_index for frame in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(0 < step < 260 for step in steps), steps  # 5 fps on one clock, no gap over a restart
    assert stamps[2] - stamps[0] == pytest.approx(400, abs=45)


def _mpegts_clip(source: Path, path: Path, frames: int) -> Path:
    """``frames`` frames of ``source`` as H.264 in MPEG-TS, the way an encoder pushes it over HTTP."""
    with av.open(str(source)) as src, av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25"})
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        for n, frame in enumerate(src.decode(video=0)):
            if n == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("ranges", [False, True])
def test_mpegts_over_http_is_analysed_while_it_arrives_and_ends_with_the_stream(
    tmp_path: Path, media_dir: Path, ranges: bool
) -> None:
    """An MPEG-TS stream over HTTP, sent at about its real-time rate: the first frame comes with a
    fraction of the bytes sent, every frame is there (none lost to probing, no seek to the end even
    when the origin offers ranges), and the end of the stream ends the task ``stop``."""

    clip = _mpegts_clip(media_dir / "vtest.avi", tmp_path / "live.ts", frames=75)  # 3 s at 25 fps
    size = clip.stat().st_size
    policy = LivePolicy(attempts=1, backoff_s=0.2, open_timeout_s=5, read_timeout_s=5)
    with RangeServer(tmp_path, ranges=ranges, bytes_per_s=size / 3) as server:
        decoder = LiveDecoder(
            server.url("live.ts"), sampling=Sampling(mode="fps", value=5), policy=policy, stop=threading.Event()
        )
        frames, sent_at_first = [], None
        for frame in decoder:
            frames.append(frame)
            sent_at_first = server.bytes_sent if sent_at_first is None else sent_at_first
    assert decoder.finish_reason == "stop" and decoder.stats.reconnects == 0
    assert decoder.stats.total_frames is None and len(frames) == 15  # 3 s at 5 fps
    assert sent_at_first is not None and sent_at_first < size / 2, (sent_at_first, size)
    stamps = [frame.timestamp_ms for frame in frames]
    assert stamps[0] == 0 and stamps[-1] == pytest.approx(2800, abs=45)
    assert [served.range for served in server.log] == [None], "one request, read in order"
