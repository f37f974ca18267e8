"""The ``visiongrid`` command.

- ``visiongrid serve`` starts the service; ``visiongrid keys ...`` manages API keys in its database.
- ``visiongrid submit|tasks|detect|ocr|search`` talk to a running service (``remote_commands``).
- ``visiongrid analyse VIDEO --steps detect`` runs the bare loop in this process (``analyse_command``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from visiongrid import key_commands, remote_commands
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
    remote_commands.add_parsers(commands)
    return parser


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
        from visiongrid.analyse_command import analyse_command

        return analyse_command(args)
    if args.command in remote_commands.COMMANDS:
        return remote_commands.run(args)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "keys":
        return key_commands.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
