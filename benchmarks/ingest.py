"""Time to the first decoded frame vs file size: progressive decode against download-first, same run.

Run:  .venv/bin/python benchmarks/ingest.py [--sizes-mb 10,100,1000] [--rate-mb-s 100]

For each size an H.264 MP4 (index at the end, as most cameras and encoders write it) is built by
remuxing one encoded noise clip end to end (no re-encode), served by a loopback HTTP origin with
range support throttled to ``--rate-mb-s`` (a network, not a RAM copy). Measured per size:
- progressive: ``store.media_stream.open_video_stream`` + ``VideoDecoder`` → first frame; the bytes
  transferred by then and the requests made;
- download-first: ``store.media.open_video`` (the whole file to disk) + ``VideoDecoder`` → first frame;
- the peak RSS growth of this process while the progressive reader decodes the whole largest file
  (memory stays flat: the reader keeps a bounded back-buffer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import report
from pipelines.decode import VideoDecoder
from pipelines.decode_types import Sampling
from store import media
from store.media_stream import open_video_stream
from tests.range_server import RangeServer
from visiongrid.settings import Settings


def base_clip(path: Path) -> Path:
    """~10 MB of 640x480 H.264 noise at 25 fps (incompressible, so size grows with duration)."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "25", "crf": "20", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for _ in range(50):
            frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def repeated(base: Path, target_bytes: int, path: Path) -> Path:
    """``base`` remuxed end to end until the file reaches ``target_bytes`` (packets copied, shifted)."""
    with av.open(str(base)) as source:
        video = source.streams.video[0]
        packets = [packet for packet in source.demux(video) if packet.size]
        span = max(int(packet.pts or 0) + int(packet.duration or 0) for packet in packets)
        with av.open(str(path), "w") as out:
            stream = out.add_stream_from_template(video)
            written, loop = 0, 0
            while written < target_bytes:
                for packet in packets:
                    packet.pts = (packet.pts or 0) + (span if loop else 0)
                    packet.dts = (packet.dts or 0) + (span if loop else 0)
                    packet.stream = stream
                    packet.time_base = Fraction(video.time_base)  # type: ignore[arg-type]
                    out.mux(packet)
                    written += packet.size
                loop += 1
    return path


def first_frame_progressive(url: str, settings: Settings) -> tuple[float, int, int]:
    started = time.perf_counter()
    reader = open_video_stream(url, settings, None, "input[0].url")
    with VideoDecoder(reader, sampling=Sampling(mode="interval", value=1)) as decoder:
        next(iter(decoder))
        elapsed = time.perf_counter() - started
    reader.abort()
    reader.close()
    return elapsed, reader.bytes_transferred, reader.requests


def first_frame_download(url: str, settings: Settings, workdir: Path) -> float:
    started = time.perf_counter()
    path = media.open_video(url, settings, workdir, "input[0].url", None)
    with VideoDecoder(path, sampling=Sampling(mode="interval", value=1)) as decoder:
        next(iter(decoder))
        elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def peak_rss_growth(url: str, settings: Settings) -> tuple[int, int]:
    """(frames decoded, peak RSS growth in bytes) over a whole progressive read."""
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    reader = open_video_stream(url, settings, None, "input[0].url")
    with VideoDecoder(reader, sampling=Sampling(mode="keyframe")) as decoder:
        frames = sum(1 for _ in decoder)
    reader.close()
    done.set()
    sampler.join()
    return frames, peak[0] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="10,100,1000", help="file sizes to build, MB")
    parser.add_argument("--rate-mb-s", type=float, default=100.0, help="origin bandwidth, MB/s")
    args = parser.parse_args()
    sizes = [int(item) for item in args.sizes_mb.split(",") if item.strip()]
    settings = Settings(allow_private_urls=True, max_video_bytes=4 * 1024**3, media_fetch_timeout_s=60)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="vg-ingest-") as tmp:
        folder = Path(tmp)
        base = base_clip(folder / "base.mp4")
        files = {size: repeated(base, size * 1_000_000, folder / f"clip-{size}mb.mp4") for size in sizes}
        with RangeServer(folder, bytes_per_s=args.rate_mb_s * 1_000_000) as server:
            for path in files.values():
                url = server.url(path.name)
                progressive, transferred, requests = first_frame_progressive(url, settings)
                download = first_frame_download(url, settings, folder / "work")
                rows.append(
                    [
                        f"{path.stat().st_size / 1e6:.0f} MB",
                        f"{progressive * 1000:.0f} ms",
                        f"{transferred / 1e6:.2f} MB in {requests} requests",
                        f"{download * 1000:.0f} ms",
                        f"{download / progressive:.0f}×",
                    ]
                )
            largest = files[max(files)]
            frames, growth = peak_rss_growth(server.url(largest.name), settings)
    rows.append(
        [
            f"whole {max(files)} MB file, progressive",
            "-",
            f"{frames} keyframes decoded",
            "-",
            f"RSS +{growth / 1e6:.0f} MB",
        ]
    )
    report(
        "Ingest: time to first frame, progressive vs download-first (benchmarks/ingest.py)",
        ["file", "progressive: first frame", "transferred by then", "download-first: first frame", "speed-up"],
        rows,
        [
            f"H.264 640x480 noise clips (index at the end), remuxed to size; a loopback HTTP origin with range "
            f"support throttled to {args.rate_mb_s:g} MB/s; in-process (the worker's reader and decoder, no Ray).",
            "progressive = open_video_stream + VideoDecoder (ranged GETs, nothing on disk); download-first = "
            "media.open_video to the worker's disk, then VideoDecoder.",
            "Last row: peak RSS growth of this process while the largest file is decoded (keyframes) start to end.",
        ],
        ["av", "httpx"],
    )


if __name__ == "__main__":
    main()
