"""The ``visiongrid`` command.

``visiongrid analyse VIDEO --steps detect`` runs the bare loop (decode → detect → track in
one process) and prints one line per track. The service commands arrive with the serving
spine.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from contract.common import plan_error
from contract.errors import PlanError
from contract.video import Range as RangeSpec
from contract.video import Sampling as SamplingSpec
from models.coco import UnknownClassError, class_name
from pipelines.bare_loop import AnalysisResult, UnknownStepError, analyse_video
from pipelines.decode import FrameRange, Sampling, VideoDecodeError
from visiongrid import key_commands
from visiongrid.settings import get_settings


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visiongrid", description="VisionGrid video and image analysis")
    commands = parser.add_subparsers(dest="command", required=True)
    analyse = commands.add_parser("analyse", aliases=["analyze"], help="decode → detect → track one video locally")
    analyse.add_argument("video", help="path to a video file")
    analyse.add_argument("--steps", type=_csv, default=["detect"], help="comma-separated steps (default: detect)")
    analyse.add_argument("--sampling", choices=["fps", "keyframe", "interval"], default="fps")
    analyse.add_argument("--value", type=float, default=None, help="fps: frames/s of source time; interval: every N")
    analyse.add_argument("--start", type=float, default=None, help="range start")
    analyse.add_argument("--end", type=float, default=None, help="range end")
    analyse.add_argument("--unit", choices=["seconds", "frames"], default="seconds", help="range unit")
    analyse.add_argument("--max-frames", type=int, default=None, help="stop after this many sampled frames")
    analyse.add_argument("--classes", type=_csv, default=None, help="e.g. pedestrian,vehicle (COCO names or aliases)")
    analyse.add_argument("--min-confidence", type=float, default=None)
    analyse.add_argument("--json", action="store_true", help="print the result as JSON")

    serve_cmd = commands.add_parser("serve", help="start local Ray (or join VISIONGRID_RAY_ADDRESS) and the API")
    serve_cmd.add_argument("--host", default=None, help="bind address (default: VISIONGRID_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, default=None, help="HTTP port (default: VISIONGRID_PORT or 8080)")

    key_commands.add_parser(commands)
    return parser


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


def serve_command(args: argparse.Namespace) -> int:
    from visiongrid.serving import start

    overrides = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    settings = get_settings().model_copy(update=overrides)
    print(f"VisionGrid API on http://{settings.host}:{settings.port} (metrics: :{settings.metrics_export_port})")
    # SIGTERM (service managers, `timeout`) exits normally, so at-exit hooks stop the local S3 server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    start(settings, blocking=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("analyse", "analyze"):
        return analyse_command(args)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "keys":
        return key_commands.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
