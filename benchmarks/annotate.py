"""The annotated-video render against decode-only of the same clip, same run.

Run:  .venv/bin/python benchmarks/annotate.py [--frames 300]

``pipelines.bare_loop.analyse_video`` first runs detect + track over the first ``--frames`` frames of
vtest.avi (768×576, pedestrians) to get real tracked boxes per frame (not timed). Then, alternating:
- decode-only: ``VideoDecoder`` over the same frames (RGB out), nothing else;
- decode + render: the same decode, and each frame through ``pipelines.render.Renderer`` with its
  tracked boxes: boxes, ids and trails drawn, H.264 encoded into the MP4 (veryfast, CRF 20);
- decode + previews: the same with ``track_previews`` (best crop + GIF frames per track), GIFs made.
Reported: frames/s and the ratio to decode-only; the worker does this on top of the models, whose
~90 ms/frame on this machine dwarfs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from benchmarks._report import report  # noqa: E402
from kernels.detections import Detections  # noqa: E402
from pipelines.bare_loop import analyse_video  # noqa: E402
from pipelines.decode import Sampling, VideoDecoder  # noqa: E402
from pipelines.render import OutputOptions, Renderer  # noqa: E402
from visiongrid.settings import Settings  # noqa: E402

CLIP = Path(__file__).resolve().parent.parent / ".cache" / "media" / "vtest.avi"
EVERY_FRAME = Sampling(mode="interval", value=1)


def decode_only(frames: int) -> float:
    started = time.perf_counter()
    with VideoDecoder(CLIP, sampling=EVERY_FRAME, max_frames=frames) as decoder:
        count = sum(1 for _ in decoder)
    assert count == frames
    return time.perf_counter() - started


def decode_render(frames: int, tracked: list[Detections], options: OutputOptions) -> float:
    renderer = Renderer(options, None)
    started = time.perf_counter()
    with VideoDecoder(CLIP, sampling=EVERY_FRAME, max_frames=frames) as decoder:
        for frame, detections in zip(decoder, tracked, strict=True):
            renderer.add(frame.image, frame.timestamp_ms, detections)
    made = renderer.annotated_video()
    media = renderer.track_media() if options.track_previews else {}
    elapsed = time.perf_counter() - started
    if made is not None:
        assert made[1] == frames
        made[0].unlink()
    assert not options.track_previews or media
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tracked: list[Detections] = []
    analyse_video(
        CLIP,
        sampling=EVERY_FRAME,
        max_frames=args.frames,
        classes=["person"],
        settings=Settings(),
        on_frame=lambda _frame, detections: tracked.append(detections),
    )
    boxes = sum(len(item.confidence) for item in tracked)
    runs = {
        "decode-only": lambda: decode_only(args.frames),
        "decode + annotated MP4": lambda: decode_render(args.frames, tracked, OutputOptions(annotated_video=True)),
        "decode + track previews": lambda: decode_render(args.frames, tracked, OutputOptions(track_previews=True)),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name].append(run())
    base = statistics.median(times["decode-only"])
    rows = [
        [name, f"{args.frames / statistics.median(samples):.0f}", f"{base / statistics.median(samples):.2f}×"]
        for name, samples in times.items()
    ]
    report(
        "Annotated video: render vs decode-only (benchmarks/annotate.py)",
        ["path", "frames/s", "vs decode-only"],
        rows,
        [
            f"vtest.avi 768×576, first {args.frames} frames, {boxes} tracked boxes in all (detect + track run first, "
            f"untimed); median of {args.rounds} alternating rounds; one process, PyAV libx264 veryfast CRF 20.",
        ],
        ["av", "opencv-python-headless", "pillow", "numpy"],
    )


if __name__ == "__main__":
    main()
