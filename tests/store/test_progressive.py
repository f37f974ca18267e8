"""Progressive decode: a video read while it downloads, over real HTTP range requests and real S3
ranged GETs — the same frames as decoding the local file, few requests, bounded memory, limits and
cancel honoured, an origin without range support read front to back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.decode import VideoDecoder
from pipelines.decode_types import Sampling
from store.media_fetch import MediaError
from store.media_stream import open_video_stream
from store.objects import ObjectStore
from store.progressive import StreamAbortedError, mp4_index_at_end
from tests.range_server import RangeServer
from visiongrid.settings import Settings


def _clip(folder: Path, name: str, frames: int = 60, faststart: bool = False, size: int = 320) -> Path:
    """An H.264 MP4 of moving noise (incompressible, so the file is large); its index at the end
    unless ``faststart``."""
    path = folder / name
    rng = np.random.default_rng(3)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "25", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for index in range(frames):
            frame = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            frame[:, : 8 + index] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    _clip(folder, "index_last.mp4")
    _clip(folder, "faststart.mp4", faststart=True)
    _clip(folder, "big.mp4", frames=150, faststart=True, size=480)
    _clip(folder, "big_index_last.mp4", frames=90, size=400)  # larger than the reader's back-buffer
    return folder


def _settings(**overrides: object) -> Settings:
    return Settings(allow_private_urls=True, media_fetch_timeout_s=5, **overrides)  # type: ignore[arg-type]


def _frames(source: object) -> list[np.ndarray]:
    with VideoDecoder(source, sampling=Sampling(mode="interval", value=1)) as decoder:  # type: ignore[arg-type]
        return [frame.image for frame in decoder]


@pytest.mark.parametrize("name", ["index_last.mp4", "faststart.mp4"])
def test_an_mp4_decodes_while_it_downloads_with_the_frames_of_the_local_file(clips: Path, name: str) -> None:
    with RangeServer(clips) as server:
        reader = open_video_stream(server.url(name), _settings(), None, "input[0].url")
        got = _frames(reader)
        reader.close()
    reference = _frames(clips / name)
    assert len(got) == len(reference) == 60
    assert all(np.array_equal(a, b) for a, b in zip(got, reference, strict=True))
    assert reader.ranged and reader.size == (clips / name).stat().st_size
    # index at the end: start, the end, back to the start; never one request per block
    assert reader.requests <= 4, [(served.range, served.status) for served in server.log]


def test_the_first_frame_comes_before_the_download_ends(clips: Path) -> None:
    size = (clips / "big.mp4").stat().st_size
    with RangeServer(clips, bytes_per_s=size / 3) as server:  # the whole file would take 3 s
        reader = open_video_stream(server.url("big.mp4"), _settings(), None, "input[0].url")
        started = time.monotonic()
        with VideoDecoder(reader) as decoder:
            next(iter(decoder))
            first_after_s = time.monotonic() - started
            transferred = reader.bytes_transferred
        reader.close()
    assert transferred < size / 4, f"{transferred} of {size} bytes before the first frame"
    assert first_after_s < 1.5


def test_an_origin_without_ranges_is_read_front_to_back(clips: Path) -> None:
    with RangeServer(clips, ranges=False) as server:
        reader = open_video_stream(server.url("faststart.mp4"), _settings(), None, "input[0].url")
        assert not reader.ranged
        assert len(_frames(reader)) == 60
        reader.close()
        assert reader.requests == 1


def test_an_index_at_the_end_without_ranges_fails_at_once_with_a_clear_code(clips: Path) -> None:
    with RangeServer(clips, ranges=False) as server, pytest.raises(MediaError) as raised:
        open_video_stream(server.url("big_index_last.mp4"), _settings(), None, "input[0].url")
    assert raised.value.code == "media_not_streamable"
    assert "storage://" in raised.value.message


def test_the_mp4_index_position_is_read_from_the_first_bytes(clips: Path) -> None:
    assert mp4_index_at_end((clips / "index_last.mp4").read_bytes()[:65536])
    assert not mp4_index_at_end((clips / "faststart.mp4").read_bytes()[:65536])
    assert not mp4_index_at_end(b"RIFF....AVI LIST")  # not an MP4: nothing to say
    assert not mp4_index_at_end(b"")


def test_abort_stops_a_blocked_transfer_at_once(clips: Path) -> None:
    with RangeServer(clips, bytes_per_s=20_000) as server:  # 20 kB/s: minutes for the whole file
        reader = open_video_stream(server.url("big.mp4"), _settings(), None, "input[0].url")
        errors: list[BaseException] = []

        def drain() -> None:
            try:
                while reader.read(1 << 20):
                    pass
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=drain)
        thread.start()
        time.sleep(0.3)
        aborted_at = time.monotonic()
        reader.abort()
        thread.join(timeout=5)
        assert not thread.is_alive() and time.monotonic() - aborted_at < 2
        assert errors and isinstance(errors[0], (StreamAbortedError, Exception))
        with pytest.raises(StreamAbortedError):
            reader.read(10)
        reader.close()


def test_a_file_over_the_limit_is_refused_before_it_is_read(clips: Path) -> None:
    with RangeServer(clips, bytes_per_s=1_000_000) as server:  # throttled: loopback buffers would hide a read
        with pytest.raises(MediaError) as raised:
            open_video_stream(server.url("big.mp4"), _settings(max_video_bytes=10_000), None, "input[0].url")
        time.sleep(0.2)
        assert raised.value.code == "media_too_large"
        assert server.bytes_sent < 200_000  # the transfer stopped right after the headers


def test_unreachable_and_missing_media_are_media_errors(clips: Path) -> None:
    with RangeServer(clips) as server, pytest.raises(MediaError) as missing:
        open_video_stream(server.url("nope.mp4"), _settings(), None, "input[0].url")
    assert missing.value.code == "media_unreachable" and "404" in missing.value.message
    with pytest.raises(MediaError) as private:
        open_video_stream("http://127.0.0.1:9/x.mp4", Settings(allow_private_urls=False), None, "input[0].url")
    assert private.value.code == "url_not_allowed"


def test_a_storage_object_is_read_with_ranged_gets(clips: Path, s3_settings: Settings) -> None:
    objects = ObjectStore(s3_settings)
    objects.put_bytes("proj-progressive", "clips/index_last.mp4", (clips / "index_last.mp4").read_bytes())
    reader = open_video_stream("storage://clips/index_last.mp4", s3_settings, "proj-progressive", "input[0].url")
    got = _frames(reader)
    reader.close()
    assert len(got) == 60 and reader.requests <= 4
    with pytest.raises(MediaError) as other:
        open_video_stream("storage://clips/index_last.mp4", s3_settings, "another-project", "input[0].url")
    assert other.value.code == "media_not_found"


def test_without_ranges_an_index_at_the_end_is_spooled_to_storage_and_read_from_there(
    clips: Path, s3_settings: Settings
) -> None:
    settings = s3_settings.model_copy(update={"allow_private_urls": True})
    objects = ObjectStore(settings)
    with RangeServer(clips, ranges=False) as server:
        heard: list[str] = []
        reader = open_video_stream(
            server.url("big_index_last.mp4"), settings, "proj-spool", "input[0].url", heard.append
        )
    spooled = [item.path for item in objects.list("proj-spool", prefix="staged/")[0]]
    assert len(spooled) == 1 and spooled[0].startswith("staged/spool-")
    assert heard == [f"storage://{spooled[0]}"], "the task hears of the copy, to delete it even after a crash"
    assert reader.ranged and reader.size == (clips / "big_index_last.mp4").stat().st_size
    assert len(_frames(reader)) == 90
    reader.close()
    assert objects.list("proj-spool", prefix="staged/")[0] == [], "the spooled copy is deleted with the reader"
