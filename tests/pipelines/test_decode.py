"""Tests for pipelines.decode: sampling, ranges, limits, stats and error handling on clips made here.

Every clip encodes its own frame index as eight black/white vertical bars (bit b of the index is bar b),
which survives lossy compression, so each test can check *which* source frame came out, not just how many.
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import pipelines.decode as decode_module
from contract.errors import VisionGridError
from pipelines.decode import (
    DecodedFrame,
    DecodeStats,
    FrameRange,
    Sampling,
    VideoDecodeError,
    VideoDecoder,
)

W, H = 64, 48
RATE = 30
GOP = 10
MP4_FRAMES = 120  # 4 s
AVI_FRAMES = 90  # 3 s
AVI_GOP = 15
VFR_PTS_MS = [0, 40, 80, 300, 330, 360, 1000, 1010, 1020, 1500, 1533, 1900]


def _bars(index: int) -> np.ndarray:
    """RGB image whose eight vertical bars spell ``index`` in binary (bar 0 = least significant bit)."""
    img = np.zeros((H, W, 3), np.uint8)
    bar = W // 8
    for b in range(8):
        if (index >> b) & 1:
            img[:, b * bar : (b + 1) * bar] = 255
    return img


def _read_bars(img: np.ndarray) -> int:
    bar = img.shape[1] // 8
    return sum(1 << b for b in range(8) if img[:, b * bar : (b + 1) * bar].mean() > 127)


def _encode(
    path: Path,
    codec: str,
    n: int,
    *,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pts_ms: list[int] | None = None,
    image: Callable[[int], np.ndarray] = _bars,
) -> Path:
    container = av.open(str(path), "w", options=container_options or {})
    stream = container.add_stream(codec, rate=RATE, options=options or {})
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    if pts_ms is not None:
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(image(i), format="rgb24")
        if pts_ms is not None:
            frame.pts = pts_ms[i]
            frame.time_base = Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


X264_GOP = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0"}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        # H.264 with B-frames (reordered PTS) and a keyframe every GOP frames.
        "mp4": _encode(d / "h264.mp4", "libx264", MP4_FRAMES, options=X264_GOP),
        # Same but with the moov atom first, so a truncated copy still opens and is cut mid-data.
        "faststart": _encode(
            d / "faststart.mp4", "libx264", MP4_FRAMES, options=X264_GOP, container_options={"movflags": "faststart"}
        ),
        # MPEG-4 part 2 in AVI: a second codec and container.
        "avi": _encode(d / "mpeg4.avi", "mpeg4", AVI_FRAMES, options={"g": str(AVI_GOP), "sc_threshold": "1000000000"}),
        # VP9/WebM stores no frame count: total_frames must be estimated from the duration.
        "webm": _encode(d / "vp9.webm", "libvpx-vp9", 30, options={"g": "10", "deadline": "realtime", "cpu-used": "8"}),
        # Variable frame rate: explicit, irregular PTS in a 1/1000 time base.
        "vfr": _encode(d / "vfr.mkv", "libx264", len(VFR_PTS_MS), options={"g": "100"}, pts_ms=VFR_PTS_MS),
    }


def _decode(source: str | Path | io.BytesIO, **kwargs: object) -> tuple[list[DecodedFrame], VideoDecoder]:
    with VideoDecoder(source, **kwargs) as dec:  # type: ignore[arg-type]
        frames = list(dec)
    return frames, dec


def _indices(frames: list[DecodedFrame]) -> list[int]:
    return [f.frame_index for f in frames]


def _assert_content_matches_index(frames: list[DecodedFrame]) -> None:
    assert frames, "expected at least one frame"
    assert [_read_bars(f.image) for f in frames] == _indices(frames)


def _run_with_deadline(fn: Callable[[], object], seconds: float = 20.0) -> object:
    """Run ``fn`` in a thread so a decoder hang fails the test instead of wedging the run."""
    returned: list[object] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            returned.append(fn())
        except BaseException as exc:  # re-raised in the test thread below
            raised.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"decoding did not finish within {seconds} s"
    if raised:
        raise raised[0]
    return returned[0]


# ---------------------------------------------------------------------------- sampling modes


def test_fps_mode_picks_frames_by_timestamp(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("fps", 5))
    assert _indices(frames) == list(range(0, MP4_FRAMES, RATE // 5))
    _assert_content_matches_index(frames)
    for f in frames:
        assert f.timestamp_ms == pytest.approx(f.frame_index * 1000 / RATE, abs=0.5)
    assert dec.stats.decoded_frames == len(frames) == 20
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == MP4_FRAMES
    assert dec.finish_reason == "stop"


def test_fps_mode_non_divisor_rate_uses_next_frame_at_or_after_sample_time(clips: dict[str, Path]) -> None:
    # 7 fps on a 30 fps source: sample k is at k/7 s, delivered by the first frame with t >= k/7.
    frames, _ = _decode(clips["mp4"], sampling=Sampling("fps", 7))
    expected = []
    next_t = 0.0
    for i in range(MP4_FRAMES):
        t = i / RATE
        if t + 1e-3 >= next_t:
            expected.append(i)
            next_t = (int((t + 1e-3) * 7) + 1) / 7
    assert _indices(frames) == expected
    assert len(frames) == 28  # 4 s * 7 fps


@pytest.mark.parametrize("value", [30.0, 60.0])
def test_fps_at_or_above_source_rate_emits_every_frame(clips: dict[str, Path], value: float) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("fps", value))
    assert _indices(frames) == list(range(MP4_FRAMES))
    _assert_content_matches_index(frames)
    assert dec.stats.dropped_frames == 0


@pytest.mark.parametrize(("clip", "gop", "count"), [("mp4", GOP, MP4_FRAMES), ("avi", AVI_GOP, AVI_FRAMES)])
def test_keyframe_mode_yields_only_keyframes_with_true_index(
    clips: dict[str, Path], clip: str, gop: int, count: int
) -> None:
    frames, dec = _decode(clips[clip], sampling=Sampling("keyframe"))
    assert _indices(frames) == list(range(0, count, gop))
    _assert_content_matches_index(frames)
    assert all(f.is_keyframe for f in frames)
    assert [f.timestamp_ms for f in frames] == pytest.approx([i * 1000 / RATE for i in range(0, count, gop)], abs=0.5)
    assert dec.stats.decoded_frames == count // gop
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == count


@pytest.mark.parametrize(("clip", "count"), [("mp4", MP4_FRAMES), ("avi", AVI_FRAMES)])
def test_interval_mode_every_nth_frame(clips: dict[str, Path], clip: str, count: int) -> None:
    frames, dec = _decode(clips[clip], sampling=Sampling("interval", 7))
    assert _indices(frames) == list(range(0, count, 7))
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == count


def test_interval_accepts_integral_float(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["avi"], sampling=Sampling("interval", 30.0))
    assert _indices(frames) == [0, 30, 60]


def test_image_is_rgb_uint8_contiguous(tmp_path: Path) -> None:
    def red_left(_: int) -> np.ndarray:
        img = np.zeros((H, W, 3), np.uint8)
        img[:, : W // 2] = (255, 0, 0)
        img[:, W // 2 :] = (0, 0, 255)
        return img

    path = _encode(tmp_path / "colour.mp4", "libx264", 3, image=red_left)
    frames, _ = _decode(path, sampling=Sampling("interval", 1))
    assert len(frames) == 3
    img = frames[0].image
    assert img.dtype == np.uint8 and img.shape == (H, W, 3) and img.flags["C_CONTIGUOUS"]
    left, right = img[:, : W // 2 - 4].mean(axis=(0, 1)), img[:, W // 2 + 4 :].mean(axis=(0, 1))
    assert left[0] > 200 and left[2] < 60  # red stays in channel 0: RGB, not BGR
    assert right[2] > 200 and right[0] < 60


# ---------------------------------------------------------------------------- ranges


def test_range_seconds_is_half_open(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("interval", 1), frame_range=FrameRange(1.0, 2.0))
    assert _indices(frames) == list(range(30, 60))
    _assert_content_matches_index(frames)
    assert all(1000 <= f.timestamp_ms < 2000 for f in frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == 30


def test_range_frames_is_half_open(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["avi"], sampling=Sampling("interval", 1), frame_range=FrameRange(10, 20, "frames"))
    assert _indices(frames) == list(range(10, 20))
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames == 10 and dec.stats.dropped_frames == 0


def test_range_interval_counts_from_range_start(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["avi"], sampling=Sampling("interval", 4), frame_range=FrameRange(5, 20, "frames"))
    assert _indices(frames) == [5, 9, 13, 17]
    _assert_content_matches_index(frames)


def test_range_fps_samples_from_range_start(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["avi"], sampling=Sampling("fps", 2), frame_range=FrameRange(0.5, 2.0))
    assert _indices(frames) == [15, 30, 45]
    _assert_content_matches_index(frames)


@pytest.fixture
def seek_spy(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    original = VideoDecoder._seek

    def spy(self: VideoDecoder, seconds: float) -> None:
        calls.append(seconds)
        original(self, seconds)

    monkeypatch.setattr(VideoDecoder, "_seek", spy)
    return calls


@pytest.mark.parametrize("clip", ["mp4", "avi"])
def test_range_far_start_seeks_and_delivers_exact_frames(
    clips: dict[str, Path], seek_spy: list[float], clip: str
) -> None:
    frames, dec = _decode(clips[clip], sampling=Sampling("interval", 1), frame_range=FrameRange(70, 80, "frames"))
    assert seek_spy, "a range starting 2.3 s in should seek"
    assert _indices(frames) == list(range(70, 80))
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == 10


def test_range_seconds_far_start_with_fps_sampling(clips: dict[str, Path], seek_spy: list[float]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("fps", 5), frame_range=FrameRange(start=3.0))
    assert seek_spy
    assert _indices(frames) == [90, 96, 102, 108, 114]
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == MP4_FRAMES - 90


def test_range_near_start_does_not_seek(clips: dict[str, Path], seek_spy: list[float]) -> None:
    frames, _ = _decode(clips["mp4"], sampling=Sampling("interval", 1), frame_range=FrameRange(1.0, 1.5))
    assert seek_spy == []
    assert _indices(frames) == list(range(30, 45))


def test_range_end_stops_demuxing(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the range end nothing more is decoded: only frames up to the end (plus reorder delay) come out."""
    seen: list[int] = []
    original = VideoDecoder._decode_packets

    def counting(self: VideoDecoder, packets: Iterator[av.Packet]) -> Iterator[object]:
        for item in original(self, packets):
            seen.append(1)
            yield item

    monkeypatch.setattr(VideoDecoder, "_decode_packets", counting)
    frames, _ = _decode(clips["mp4"], sampling=Sampling("interval", 1), frame_range=FrameRange(end=0.5))
    assert _indices(frames) == list(range(15))
    assert len(seen) <= 16  # the first out-of-range frame stops the loop


def test_keyframe_mode_with_range(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("keyframe"), frame_range=FrameRange(1.0, 3.0))
    assert _indices(frames) == [30, 40, 50, 60, 70, 80]
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == 60


def test_keyframe_mode_with_far_frame_range_seeks(clips: dict[str, Path], seek_spy: list[float]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("keyframe"), frame_range=FrameRange(75, 115, "frames"))
    assert seek_spy
    assert _indices(frames) == [80, 90, 100, 110]
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == 40


@pytest.mark.parametrize("clip", ["mp4", "avi", "webm"])
@pytest.mark.parametrize("mode", ["interval", "keyframe"])
def test_range_beyond_end_yields_nothing(clips: dict[str, Path], clip: str, mode: str) -> None:
    sampling = Sampling("keyframe") if mode == "keyframe" else Sampling("interval", 1)
    frames, dec = _decode(clips[clip], sampling=sampling, frame_range=FrameRange(10.0, 20.0))
    assert frames == []
    assert dec.finish_reason == "stop"
    assert dec.stats.decoded_frames == dec.stats.dropped_frames == 0


def test_seek_overshoot_falls_back_to_decoding_from_start(
    clips: dict[str, Path], seek_spy: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A negative margin makes the seek land after the range start, as a bad index could; no frame may be lost.
    monkeypatch.setattr(decode_module, "_SEEK_MARGIN_S", -1.0)
    frames, dec = _decode(clips["mp4"], sampling=Sampling("interval", 1), frame_range=FrameRange(2.5, 3.0))
    assert seek_spy == [pytest.approx(3.5), 0.0]
    assert _indices(frames) == list(range(75, 90))
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames == 15


# ---------------------------------------------------------------------------- limits and stats


def test_max_frames_stops_with_reason(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("interval", 2), max_frames=5)
    assert _indices(frames) == [0, 2, 4, 6, 8]
    assert dec.finish_reason == "max_frames"
    assert dec.stats.decoded_frames == 5


def test_max_frames_keyframe_mode(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["mp4"], sampling=Sampling("keyframe"), max_frames=3)
    assert _indices(frames) == [0, 10, 20]
    assert dec.finish_reason == "max_frames"


def test_max_frames_not_reached_reports_stop(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["avi"], sampling=Sampling("fps", 1), max_frames=100)
    assert len(frames) == 3
    assert dec.finish_reason == "stop"


def test_stats_are_live_during_iteration(clips: dict[str, Path]) -> None:
    with VideoDecoder(clips["avi"], sampling=Sampling("interval", 3)) as dec:
        assert dec.finish_reason is None
        for n, frame in enumerate(dec, start=1):
            assert dec.stats.decoded_frames == n
            assert dec.stats.decoded_frames + dec.stats.dropped_frames == frame.frame_index + 1
    assert dec.finish_reason == "stop"


@pytest.mark.parametrize(("clip", "total"), [("mp4", MP4_FRAMES), ("avi", AVI_FRAMES), ("webm", 30)])
def test_stream_facts(clips: dict[str, Path], clip: str, total: int) -> None:
    with VideoDecoder(clips[clip]) as dec:
        assert dec.stats == DecodeStats(
            decoded_frames=0, dropped_frames=0, total_frames=total, fps=30.0, width=W, height=H
        )


def test_default_sampling_is_one_fps(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["mp4"])
    assert _indices(frames) == [0, 30, 60, 90]


def test_webm_decodes(clips: dict[str, Path]) -> None:
    frames, dec = _decode(clips["webm"], sampling=Sampling("interval", 5))
    assert _indices(frames) == [0, 5, 10, 15, 20, 25]
    _assert_content_matches_index(frames)
    assert dec.stats.dropped_frames == 24


def test_max_pixels_refused_before_decoding(clips: dict[str, Path]) -> None:
    with pytest.raises(VideoDecodeError) as info:
        VideoDecoder(clips["mp4"], max_pixels=W * H - 1)
    assert info.value.code == "frame_too_large"
    assert str(W * H) in str(info.value)
    with VideoDecoder(clips["mp4"], max_pixels=W * H) as dec:
        assert len(list(dec)) == 4


# ---------------------------------------------------------------------------- variable frame rate


def test_vfr_timestamps_come_from_pts(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["vfr"], sampling=Sampling("interval", 1))
    assert [f.timestamp_ms for f in frames] == pytest.approx(VFR_PTS_MS, abs=0.01)
    assert _indices(frames) == list(range(len(VFR_PTS_MS)))
    _assert_content_matches_index(frames)


def test_vfr_fps_sampling_uses_time_not_index(clips: dict[str, Path]) -> None:
    # 10 fps: samples at 0.0, 0.1 (-> 300 ms frame), 0.4 (-> 1000), 1.1 (-> 1500), 1.6 (-> 1900).
    frames, dec = _decode(clips["vfr"], sampling=Sampling("fps", 10))
    assert [f.timestamp_ms for f in frames] == pytest.approx([0, 300, 1000, 1500, 1900], abs=0.01)
    assert _indices(frames) == [0, 3, 6, 9, 11]
    _assert_content_matches_index(frames)
    assert dec.stats.decoded_frames + dec.stats.dropped_frames == len(VFR_PTS_MS)


def test_vfr_seconds_range(clips: dict[str, Path]) -> None:
    frames, _ = _decode(clips["vfr"], sampling=Sampling("interval", 1), frame_range=FrameRange(0.3, 1.02))
    assert [f.timestamp_ms for f in frames] == pytest.approx([300, 330, 360, 1000, 1010], abs=0.01)
    assert _indices(frames) == [3, 4, 5, 6, 7]


# ---------------------------------------------------------------------------- inputs


def test_bytesio_input_matches_path(clips: dict[str, Path]) -> None:
    from_path, _ = _decode(clips["mp4"], sampling=Sampling("fps", 2))
    from_bytes, dec = _decode(io.BytesIO(clips["mp4"].read_bytes()), sampling=Sampling("fps", 2))
    assert _indices(from_bytes) == _indices(from_path) == list(range(0, MP4_FRAMES, 15))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(from_path, from_bytes, strict=True))
    assert dec.stats.total_frames == MP4_FRAMES


def test_bytesio_far_range_seeks(clips: dict[str, Path]) -> None:
    frames, _ = _decode(
        io.BytesIO(clips["avi"].read_bytes()), sampling=Sampling("interval", 1), frame_range=FrameRange(2.5, 2.7)
    )
    assert _indices(frames) == [75, 76, 77, 78, 79, 80]
    _assert_content_matches_index(frames)


def test_str_path_input(clips: dict[str, Path]) -> None:
    frames, _ = _decode(str(clips["avi"]), sampling=Sampling("keyframe"))
    assert _indices(frames) == [0, 15, 30, 45, 60, 75]


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VideoDecoder(tmp_path / "nope.mp4")


def test_single_use_and_close(clips: dict[str, Path]) -> None:
    dec = VideoDecoder(clips["avi"], sampling=Sampling("keyframe"))
    assert len(list(dec)) == 6
    with pytest.raises(RuntimeError):
        list(dec)
    dec.close()
    dec.close()  # idempotent
    closed = VideoDecoder(clips["avi"])
    closed.close()
    with pytest.raises(RuntimeError):
        list(closed)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["random.bin", "random.mp4"])
def test_random_bytes_not_a_video(tmp_path: Path, name: str) -> None:
    data = np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    path = tmp_path / name
    path.write_bytes(data)
    for source in (path, io.BytesIO(data)):
        with pytest.raises(VideoDecodeError) as info:
            VideoDecoder(source)
        assert info.value.code == "not_a_video"


@pytest.mark.parametrize("name", ["notes.txt", "notes.nfo", "notes"])
def test_text_file_not_a_video(tmp_path: Path, name: str) -> None:
    # FFmpeg's tty demuxer would happily render .txt/.nfo files as "video"; that must be refused.
    path = tmp_path / name
    path.write_text("this is not a video\n" * 200)
    with pytest.raises(VideoDecodeError) as info:
        VideoDecoder(path)
    assert info.value.code == "not_a_video"
    with pytest.raises(VideoDecodeError) as info:
        VideoDecoder(io.BytesIO(path.read_bytes()))
    assert info.value.code == "not_a_video"


def test_empty_file_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoDecodeError) as info:
        VideoDecoder(path)
    assert info.value.code == "not_a_video"


def test_audio_only_file_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    container = av.open(str(path), "w")
    stream = container.add_stream("pcm_s16le", rate=8000)
    samples = (np.sin(np.arange(8000) / 5) * 1000).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = 8000
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with pytest.raises(VideoDecodeError) as info:
        VideoDecoder(path)
    assert info.value.code == "not_a_video"


def _decode_or_error(source: Path) -> tuple[list[DecodedFrame], DecodeStats] | VideoDecodeError:
    try:
        with VideoDecoder(source, sampling=Sampling("interval", 1)) as dec:
            frames = list(dec)
            assert dec.finish_reason == "stop"
            return frames, dec.stats
    except VideoDecodeError as exc:
        return exc


def _assert_consistent_partial_decode(frames: list[DecodedFrame], stats: DecodeStats, total: int) -> None:
    """What a damaged file delivered is the right frames in order, and every lost one is counted as dropped."""
    indices = _indices(frames)
    assert indices == sorted(set(indices))
    assert len(frames) < total
    _assert_content_matches_index(frames)
    assert stats.decoded_frames == len(frames)
    assert stats.decoded_frames + stats.dropped_frames >= indices[-1] + 1


def test_truncated_mp4_moov_at_end_is_corrupt(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["mp4"].read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    outcome = _run_with_deadline(lambda: _decode_or_error(path))
    assert isinstance(outcome, VideoDecodeError)
    assert outcome.code == "corrupt_video"  # looks like an MP4 but the index is gone


@pytest.mark.parametrize(("clip", "fraction"), [("faststart", 0.5), ("faststart", 0.8), ("avi", 0.5), ("avi", 0.8)])
def test_truncated_input_raises_typed_error_or_ends_cleanly(
    clips: dict[str, Path], tmp_path: Path, clip: str, fraction: float
) -> None:
    data = clips[clip].read_bytes()
    path = tmp_path / f"cut{clips[clip].suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    outcome = _run_with_deadline(lambda: _decode_or_error(path))
    if isinstance(outcome, VideoDecodeError):
        assert outcome.code == "corrupt_video"
    else:
        assert isinstance(outcome, tuple)
        _assert_consistent_partial_decode(*outcome, total=MP4_FRAMES if clip == "faststart" else AVI_FRAMES)


def test_truncated_faststart_mp4_delivers_leading_frames(clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["faststart"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.8)])
    outcome = _run_with_deadline(lambda: _decode_or_error(path))
    assert isinstance(outcome, tuple)
    frames, stats = outcome
    assert len(frames) >= 40
    _assert_consistent_partial_decode(frames, stats, MP4_FRAMES)


@pytest.mark.parametrize("clip", ["mp4", "avi"])
def test_garbage_in_the_middle_never_leaks_av_errors(clips: dict[str, Path], tmp_path: Path, clip: str) -> None:
    data = bytearray(clips[clip].read_bytes())
    rng = np.random.default_rng(3)
    start = len(data) // 3
    data[start : start + len(data) // 4] = rng.integers(0, 256, len(data) // 4, dtype=np.uint8).tobytes()
    path = tmp_path / f"garbled{clips[clip].suffix}"
    path.write_bytes(bytes(data))

    def attempt() -> tuple[int, DecodeStats] | VideoDecodeError:
        try:
            with VideoDecoder(path, sampling=Sampling("interval", 1)) as dec:
                n = len(list(dec))
                return n, dec.stats
        except VideoDecodeError as exc:
            return exc

    outcome = _run_with_deadline(attempt)
    if not isinstance(outcome, VideoDecodeError):
        assert isinstance(outcome, tuple)
        n, stats = outcome
        assert stats.decoded_frames == n > 0


# ---------------------------------------------------------------------------- validation


def test_keyframe_sampling_ignores_value() -> None:
    assert Sampling("keyframe", None).mode == "keyframe"
    assert Sampling("keyframe", -1).mode == "keyframe"


def test_sampling_and_range_are_plain_values() -> None:
    """Validation is the request contract's job: the decoder's values hold what they are given."""
    assert Sampling("interval", 2.0) == Sampling(mode="interval", value=2.0)
    assert FrameRange(70, 80, "frames") == FrameRange(start=70, end=80, unit="frames")
    assert FrameRange() == FrameRange(None, None, "seconds")


def test_decode_error_is_a_visiongrid_error() -> None:
    error = VideoDecodeError("corrupt_video", "the data is damaged")
    assert isinstance(error, VisionGridError) and error.status == 400
    assert error.code == "corrupt_video" and error.message == "the data is damaged" and error.field is None
    assert str(error) == "corrupt_video: the data is damaged"  # what the CLI prints
    copy = pickle.loads(pickle.dumps(error))  # raised in a Ray replica, re-raised in the caller
    assert type(copy) is VideoDecodeError and (copy.code, copy.message, str(copy)) == (
        error.code,
        error.message,
        str(error),
    )


@pytest.mark.parametrize(("kwargs", "field"), [({"max_frames": 0}, "max_frames"), ({"max_pixels": 0}, "max_pixels")])
def test_invalid_limits(clips: dict[str, Path], kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VideoDecoder(clips["avi"], **kwargs)  # type: ignore[arg-type]


def test_max_duration_refuses_a_long_video_before_decoding(media_dir: Path) -> None:
    # vtest.avi: 795 frames at 10 fps = 79.5 s
    with pytest.raises(VideoDecodeError) as refused:
        VideoDecoder(media_dir / "vtest.avi", max_duration_s=60)
    assert refused.value.code == "video_too_long"
    with VideoDecoder(media_dir / "vtest.avi", max_duration_s=80, max_frames=1) as decoder:
        assert len(list(decoder)) == 1
