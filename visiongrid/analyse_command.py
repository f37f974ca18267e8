"""``visiongrid analyse VIDEO``: the bare loop (decode → detect → track in this process), one line
per track. Apart from :mod:`visiongrid.cli` so that the remote commands start without loading the
decoder and the models (``import visiongrid.cli`` took 1.8 s with them)."""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import ValidationError

from contract.common import plan_error
from contract.errors import PlanError
from contract.video import Range as RangeSpec
from contract.video import Sampling as SamplingSpec
from models.coco import UnknownClassError, class_name
from pipelines.bare_loop import AnalysisResult, UnknownStepError, analyse_video
from pipelines.decode import FrameRange, Sampling, VideoDecodeError

__all__ = ["analyse_command"]


def _print_table(result: AnalysisResult) -> None:
    stats = result.stats
    print(
        f"{result.processed_frames} frames analysed in {result.elapsed_s:.2f} s "
        f"({result.processed_frames / max(result.elapsed_s, 1e-9):.1f} frames/s); source {stats.width}x{stats.height} "
        f"@ {stats.fps:.2f} fps, total_frames={stats.total_frames}, dropped={stats.dropped_frames}, "
        f"finish_reason={result.finish_reason}; {len(result.tracks)} tracks"
    )
    header = f"{'track':>5}  {'class':<14}{'first_frame':>11}{'last_frame':>11}{'first_ms':>10}{'last_ms':>10}"
    print(header + f"{'frames_seen':>12}{'best_conf':>10}")
    for track in result.tracks:
        print(
            f"{track.track_id:>5}  {class_name(track.class_id, result.requested_classes):<14}"
            f"{track.first_frame:>11}{track.last_frame:>11}{track.first_timestamp_ms:>10.0f}"
            f"{track.last_timestamp_ms:>10.0f}{track.frames_seen:>12}{track.best_confidence:>10.3f}"
        )


def _result_json(result: AnalysisResult) -> str:
    tracks = [
        {**track.to_dict(), "class": class_name(track.class_id, result.requested_classes)} for track in result.tracks
    ]
    return json.dumps(
        {
            "usage": {
                "processed_frames": result.processed_frames,
                "processing_time_ms": round(result.elapsed_s * 1000),
            },
            "finish_reason": result.finish_reason,
            "stream_info": {
                "total_frames": result.stats.total_frames,
                "decoded_frames": result.stats.decoded_frames,
                "dropped_frames": result.stats.dropped_frames,
                "fps": result.stats.fps,
            },
            "tracks": tracks,
        },
        indent=2,
    )


def _decoder_options(args: argparse.Namespace) -> tuple[Sampling, FrameRange | None]:
    """``--sampling/--value`` and ``--start/--end/--unit`` validated by the request contract (the
    decoder's values themselves no longer validate); raises PlanError naming ``sampling.value`` etc."""
    try:
        value = args.value if args.value is not None or args.sampling != "interval" else 1
        sampling = SamplingSpec(mode=args.sampling, value=value)
        frames = RangeSpec(start=args.start, end=args.end, unit=args.unit)
    except ValidationError as error:
        raise plan_error(error) from None
    value = sampling.value if sampling.value is not None else (1.0 if sampling.mode == "fps" else 1)
    decoder_sampling = Sampling(mode=sampling.mode, value=None if sampling.mode == "keyframe" else float(value))
    if frames.start is None and frames.end is None:
        return decoder_sampling, None
    return decoder_sampling, FrameRange(start=frames.start, end=frames.end, unit=frames.unit)


def analyse_command(args: argparse.Namespace) -> int:
    try:
        sampling, frame_range = _decoder_options(args)
        result = analyse_video(
            args.video,
            steps=args.steps,
            sampling=sampling,
            frame_range=frame_range,
            max_frames=args.max_frames,
            classes=args.classes,
            min_confidence=args.min_confidence,
        )
    except PlanError as error:
        part = "sampling" if error.field in ("mode", "value") else "range"
        print(f"visiongrid: error: {part}.{error}", file=sys.stderr)
        return 2
    except (UnknownStepError, UnknownClassError, ValueError, VideoDecodeError, FileNotFoundError) as error:
        print(f"visiongrid: error: {error}", file=sys.stderr)
        return 2
    print(_result_json(result) if args.json else "", end="")
    if not args.json:
        _print_table(result)
    return 0
