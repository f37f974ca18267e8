"""Bare-loop throughput: decode-only, detect-only and decode+detect+track frames/s.

This loop (one process, no Ray, no HTTP) is the baseline every later serving benchmark is
divided by. Run:  .venv/bin/python benchmarks/bare_loop.py [--frames 150]

Clips: a 640x480 H.264 transcode of the real pedestrian clip (made here with PyAV) and the
real clip itself (vtest.avi, 768x576 MPEG-4 part 2, from Debian opencv-doc).
Rows report frames/s and the ratio to the detect-only, batch 1, 2-thread row of the same clip.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import report
from models.registry import get_model
from models.runtime.detector import Detector
from pipelines.bare_loop import analyse_video
from pipelines.decode import Sampling, VideoDecoder
from visiongrid.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / ".cache" / "media"
BENCH_CACHE = ROOT / ".cache" / "bench"
EVERY_FRAME = Sampling(mode="interval", value=1)


def h264_640x480(source: Path, frames: int) -> Path:
    """Transcode the first ``frames`` frames of a real clip to 640x480 H.264 (cached)."""
    target = BENCH_CACHE / f"vtest_640x480_h264_{frames}.mp4"
    if target.exists():
        return target
    BENCH_CACHE.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream("libx264", rate=10, options={"preset": "veryfast", "crf": "23", "g": "30"})
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for index, frame in enumerate(src.decode(video=0)):
            if index >= frames:
                break
            out = frame.reformat(width=640, height=480, format="yuv420p")
            out.pts = None
            dst.mux(stream.encode(out))
        dst.mux(stream.encode(None))
    return target


def timed(work: Callable[[], int], repeats: int = 2) -> float:
    """Best-of-``repeats`` frames/s of ``work`` (which returns the frame count)."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        count = work()
        best = max(best, count / (time.perf_counter() - started))
    return best


def decode_only(path: Path, frames: int) -> int:
    with VideoDecoder(path, sampling=EVERY_FRAME, max_frames=frames) as decoder:
        return sum(1 for _ in decoder)


def load_frames(path: Path, frames: int) -> list[np.ndarray]:
    with VideoDecoder(path, sampling=EVERY_FRAME, max_frames=frames) as decoder:
        return [frame.image for frame in decoder]


def detect_only(detector: Detector, images: list[np.ndarray], batch: int) -> int:
    for start in range(0, len(images), batch):
        detector.detect(images[start : start + batch], min_confidence=0.1)
    return len(images)


def full_loop(path: Path, frames: int, settings: Settings, detector: Detector) -> int:
    result = analyse_video(path, sampling=EVERY_FRAME, max_frames=frames, settings=settings, detector=detector)
    return result.processed_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=120, help="frames per measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    real = MEDIA / "vtest.avi"
    if not real.exists():
        sys.exit("run tools/fetch_media.sh first (real media missing)")
    clips = {"h264 640x480": h264_640x480(real, args.frames), "vtest.avi 768x576 (mpeg4)": real}
    entry = get_model("centernet")
    base_settings = Settings()
    rows: list[list[object]] = []
    for clip_name, path in clips.items():
        images = load_frames(path, args.frames)
        detect_fps: dict[tuple[int, int], float] = {}
        for threads in args.threads:
            detector = Detector(entry, intra_op_threads=threads, spin=True)
            detector.detect(images[:2])  # warm-up
            for batch in args.batches:
                detect_fps[(threads, batch)] = timed(lambda d=detector, b=batch, i=images: detect_only(d, i, b))
        baseline = detect_fps[(max(args.threads), 1)]
        decode_fps = timed(lambda p=path: decode_only(p, args.frames))
        rows.append([clip_name, "decode only (RGB)", "-", "-", f"{decode_fps:.1f}", f"{decode_fps / baseline:.2f}"])
        for (threads, batch), fps in sorted(detect_fps.items()):
            rows.append([clip_name, "detect only", threads, batch, f"{fps:.1f}", f"{fps / baseline:.2f}"])
        best_threads, best_batch = max(detect_fps, key=lambda key: detect_fps[key])
        for threads, batch in sorted({(max(args.threads), 1), (best_threads, best_batch)}):
            settings = replace_settings(base_settings, threads, batch)
            detector = Detector(entry, intra_op_threads=threads, spin=True)
            fps = timed(lambda p=path, s=settings, d=detector: full_loop(p, args.frames, s, d))
            rows.append([clip_name, "decode+detect+track", threads, batch, f"{fps:.1f}", f"{fps / baseline:.2f}"])
    report(
        "Bare loop (benchmarks/bare_loop.py)",
        ["clip", "stage", "ORT threads", "batch", "frames/s", "× baseline"],
        rows,
        [
            f"{args.frames} frames per measurement, every frame sampled, best of 2 runs.",
            "Baseline (1.00) per clip: detect only, batch 1, the most ORT threads tried. Detect-only frames are "
            "decoded beforehand, so its rows measure letterbox + ONNX Runtime + box decoding.",
            "decode+detect+track is `pipelines.bare_loop.analyse_video`: PyAV decode → detector → ByteTrack.",
        ],
        ["numpy", "onnxruntime", "av", "opencv-python-headless"],
    )


def replace_settings(settings: Settings, threads: int, batch: int) -> Settings:
    return settings.model_copy(update={"ort_intra_op_threads": threads, "detector_batch_size": batch})


if __name__ == "__main__":
    main()
