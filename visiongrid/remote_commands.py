"""The ``visiongrid`` commands that talk to a running service through :mod:`visiongrid.client`:
``submit``, ``tasks list|get|cancel|results|delete``, ``detect``, ``ocr`` and ``search``.

Where to connect: ``--url`` / ``--api-key``, else ``$VISIONGRID_URL`` / ``$VISIONGRID_API_KEY``, else
the config file (``$VISIONGRID_CONFIG`` or ``~/.config/visiongrid/config.toml``: ``url = "..."``,
``api_key = "..."``). ``--json`` prints the API's own JSON for scripts; otherwise rich tables and
progress bars on the terminal (upload bytes; frames and tracks while a task runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from contract.chunks import TaskResult
from contract.vision import VisionResult
from visiongrid.client import Client, VisionGridClientError
from visiongrid.client.errors import APIStatusError, NotFoundError

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = frozenset({"submit", "tasks", "detect", "ocr", "search"})
REMOTE_SCHEMES = ("http://", "https://", "storage://", "rtsp://", "rtsps://", "rtmp://", "rtmps://", "srt://")


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="service URL (default: $VISIONGRID_URL, the config, :8080)")
    common.add_argument("--api-key", default=None, help="API key (default: $VISIONGRID_API_KEY or the config)")
    common.add_argument("--json", action="store_true", help="print the API's JSON")

    submit = commands.add_parser("submit", parents=[common], help="analyse a video (a file is uploaded first)")
    submit.add_argument("video", help="a local file, an http(s)/storage:// URL or a live rtsp:// / rtmp:// URL")
    submit.add_argument("--steps", type=_csv, default=["detect"], help="comma-separated: detect,ocr,feature,face,...")
    submit.add_argument("--classes", type=_csv, default=None, help="detect classes, e.g. person,car")
    submit.add_argument("--fps", type=float, default=None, help="frames per second of source time to analyse")
    submit.add_argument("--max-frames", type=int, default=None)
    submit.add_argument("--collection", default=None, help="feature step: the collection to index tracks into")
    submit.add_argument("--follow", action="store_true", help="stream the chunks, then print the results")

    tasks = commands.add_parser("tasks", parents=[common], help="list, inspect, cancel or delete video tasks")
    task_commands = tasks.add_subparsers(dest="tasks_command", required=True)
    listing = task_commands.add_parser("list", parents=[common], help="the project's recent tasks")
    listing.add_argument("--status", default=None)
    listing.add_argument("--limit", type=int, default=20)
    for name, text in (
        ("get", "one task"),
        ("cancel", "cancel a task"),
        ("results", "a task's tracks"),
        ("delete", "delete a task"),
    ):
        task_commands.add_parser(name, parents=[common], help=text).add_argument("task_id")

    for name, text in (("detect", "objects in a photo"), ("ocr", "text in a photo")):
        image = commands.add_parser(name, parents=[common], help=text)
        image.add_argument("image", help="a local file, an http(s) URL or storage://path")
        image.add_argument("--min-confidence", type=float, default=None)
        if name == "detect":
            image.add_argument("--classes", type=_csv, default=None)

    search = commands.add_parser("search", parents=[common], help="search a vector collection by text")
    search.add_argument("collection", help="collection id or name")
    search.add_argument("text")
    search.add_argument("--top-k", type=int, default=10)


def connection(args: argparse.Namespace, environ: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """(url, api key): the flags, else the environment, else the config file."""
    env = os.environ if environ is None else environ
    config_path = Path(env.get("VISIONGRID_CONFIG") or Path.home() / ".config" / "visiongrid" / "config.toml")
    config: dict[str, Any] = tomllib.loads(config_path.read_text()) if config_path.is_file() else {}
    url = args.url or env.get("VISIONGRID_URL") or config.get("url")
    key = args.api_key or env.get("VISIONGRID_API_KEY") or config.get("api_key")
    return url, key


def run(args: argparse.Namespace) -> int:
    url, key = connection(args)
    console = Console(stderr=True)
    try:
        with Client(url, key) as client:
            return _HANDLERS[args.command](client, args, console)
    except APIStatusError as error:
        field = f" ({error.field})" if error.field else ""
        console.print(f"[red]error {error.status_code} {error.code}[/red]{field}: {error.message}")
        return 1
    except (VisionGridClientError, OSError) as error:
        console.print(f"[red]error[/red]: {error}")
        return 1


def _print_json(value: BaseModel | dict[str, Any]) -> None:
    data = value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else value
    print(json.dumps(data, indent=2))


# --- submit ------------------------------------------------------------------------------------


def _upload(client: Client, path: Path, console: Console, quiet: bool) -> str:
    target = f"uploads/{path.name}"
    if quiet:
        return client.storage.upload(target, path).storage_url
    columns = (TextColumn("upload {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as bar:
        job = bar.add_task(path.name, total=path.stat().st_size)
        done = client.storage.upload(target, path, progress=lambda sent, _total: bar.update(job, completed=sent))
    return done.storage_url


def _request(args: argparse.Namespace, url: str) -> dict[str, Any]:
    live = url.startswith(REMOTE_SCHEMES[3:])
    item: dict[str, Any] = {"type": "live" if live else "video_url", "url": url}
    if args.fps is not None:
        item["sampling"] = {"mode": "fps", "value": args.fps}
    if args.max_frames is not None:
        item["max_frames"] = args.max_frames
    steps: list[dict[str, Any]] = []
    for model in args.steps:
        step: dict[str, Any] = {"model": model}
        if model == "detect" and args.classes:
            step["parameters"] = {"classes": args.classes}
        if model == "feature" and args.collection:
            step["parameters"] = {"collection": args.collection}
        steps.append(step)
    return {"input": [item], "steps": steps}


def _submit(client: Client, args: argparse.Namespace, console: Console) -> int:
    source = args.video
    url = source if source.startswith(REMOTE_SCHEMES) else _upload(client, Path(source), console, args.json)
    created = client.video.process(_request(args, url))
    if not args.follow:
        _print_json(created) if args.json else print(created.id)
        return 0
    if not args.json:
        console.print(f"task [bold]{created.id}[/bold]")
    last = _follow(client, created.id, console, quiet=args.json)
    task = client.video.get(created.id)
    if task.status != "succeeded":
        if args.json:
            _print_json(task)
        else:
            error = f": {task.error.code} {task.error.message or ''}" if task.error else ""
            console.print(f"[red]task {task.status}[/red]{error}")
        return 1
    result = client.video.results(created.id)
    _print_json(result) if args.json else _print_tracks(result)
    return 0 if last else 1


def _follow(client: Client, task_id: str, console: Console, *, quiet: bool) -> bool:
    """Stream the task's chunks with a progress bar of frames and tracks; whether a terminal chunk came."""
    tracks: set[int] = set()
    columns = (TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tracks]} tracks"))
    with Progress(*columns, console=console, disable=quiet) as bar:
        job = bar.add_task("frames", total=None, tracks=0)
        for chunk in client.video.stream(task_id):
            if chunk.finish_reason is not None:
                return True
            for result in chunk.delta.results:
                tracks.update(target.track_id for target in result.targets if target.track_id >= 0)
            info = chunk.stream_info
            bar.update(job, completed=info.decoded_frames, total=info.total_frames, tracks=len(tracks))
    return False


def _print_tracks(result: TaskResult) -> None:
    table = Table(title=f"{len(result.tracks)} tracks")
    for column in ("track", "class", "frames", "from (s)", "to (s)", "best", "text"):
        table.add_column(column)
    for track in result.tracks:
        table.add_row(
            str(track.track_id),
            track.class_,
            str(track.frames_seen),
            f"{track.first_timestamp_ms / 1000:.2f}",
            f"{track.last_timestamp_ms / 1000:.2f}",
            f"{track.best_confidence:.2f}",
            track.text or "",
        )
    Console().print(table)


# --- tasks, images, search -----------------------------------------------------------------------


def _tasks(client: Client, args: argparse.Namespace, console: Console) -> int:
    command = args.tasks_command
    if command == "list":
        page = client.video.list(status=args.status, limit=args.limit)
        if args.json:
            _print_json(page)
            return 0
        table = Table(title=f"{len(page.data)} tasks")
        for column in ("id", "status", "frames", "created", "finish"):
            table.add_column(column)
        for task in page.data:
            created = task.created_at.isoformat(timespec="seconds")
            table.add_row(task.id, task.status, str(task.progress.processed_frames), created, task.finish_reason or "")
        Console().print(table)
        return 0
    if command == "delete":
        client.video.delete(args.task_id)
        return 0
    if command == "results":
        result = client.video.results(args.task_id)
        _print_json(result) if args.json else _print_tracks(result)
        return 0
    task = client.video.cancel(args.task_id) if command == "cancel" else client.video.get(args.task_id)
    _print_json(task) if args.json else print(f"{task.id} {task.status} {task.progress.processed_frames} frames")
    return 0


def _image_source(value: str) -> str | Path:
    return value if value.startswith(("http://", "https://", "storage://")) else Path(value)


def _image(client: Client, args: argparse.Namespace, console: Console) -> int:
    source = _image_source(args.image)
    if args.command == "detect":
        result = client.vision.detect(source, classes=args.classes, min_confidence=args.min_confidence)
    else:
        result = client.vision.ocr(source, min_confidence=args.min_confidence)
    _print_json(result) if args.json else _print_targets(result)
    return 0


def _print_targets(result: VisionResult) -> None:
    table = Table(title=f"{len(result.targets)} found in {result.image.width}x{result.image.height}")
    for column in ("class", "confidence", "left", "top", "width", "height", "text"):
        table.add_column(column)
    for target in result.targets:
        roi = target.roi
        row = (target.class_, f"{target.confidence:.2f}", roi.left, roi.top, roi.width, roi.height, target.text or "")
        table.add_row(*(str(cell) for cell in row))
    Console().print(table)


def _collection_id(client: Client, wanted: str) -> str:
    try:
        return client.vectors.get(wanted).id
    except NotFoundError:
        named = [item.id for item in client.vectors.list().data if item.name == wanted]
        if not named:
            raise
        return named[0]


def _search(client: Client, args: argparse.Namespace, console: Console) -> int:
    results = client.vectors.search(_collection_id(client, args.collection), text_query=args.text, top_k=args.top_k)
    if args.json:
        _print_json(results)
        return 0
    table = Table(title=f"{len(results.data)} hits")
    for column in ("id", "score", "kind", "text", "metadata"):
        table.add_column(column)
    for hit in results.data:
        table.add_row(hit.id, f"{hit.score:.3f}", hit.kind or "", hit.text or "", json.dumps(hit.metadata))
    Console().print(table)
    return 0


_HANDLERS: dict[str, Callable[[Client, argparse.Namespace, Console], int]] = {
    "submit": _submit,
    "tasks": _tasks,
    "detect": _image,
    "ocr": _image,
    "search": _search,
}


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - the entry point is visiongrid.cli
    parser = argparse.ArgumentParser(prog="visiongrid")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
