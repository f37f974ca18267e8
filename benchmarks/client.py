"""The Python client's stream parsing against raw HTTP reading of the same stream, same run.

Run:  .venv/bin/python benchmarks/client.py [--chunks 5000] [--rounds 5]

The API app runs under uvicorn on loopback in a process of its own (SQLite, no Ray: the stream
route replays a task's archive), so the reader's parsing does not share this process's GIL with the
server, as it would not against a real deployment. One succeeded task is made with ``--chunks``
archived chunks of five tracked targets each (real ``Chunk`` JSON, checked against the contract),
then its ``/stream`` is read, alternating each round so drift on a shared machine hits both:
- raw: ``httpx`` ``iter_bytes`` to the end, nothing parsed (the floor: what the wire and the server cost);
- raw + json: ``iter_lines`` and ``json.loads`` of each ``data:`` line (what a hand-written reader does);
- client: ``Client.video.stream`` (``httpx-sse`` framing + ``Chunk.model_validate_json`` per event,
  offsets kept for resume).
Then a live phase: a task written at ``--live-rate`` chunks/s (10× one 25 fps task) read while it
runs by a raw reader and the client at once; when each sees the end after the last write.
Target: client ≥ 0.9× raw chunks/s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from benchmarks._report import report  # noqa: E402
from contract.chunks import Chunk  # noqa: E402
from pipelines.chunks import DONE_DATA, sse_event  # noqa: E402
from store.archive import Archive  # noqa: E402
from store.db import open_engine  # noqa: E402
from store.keys import KeyStore  # noqa: E402
from store.tasks import TaskStore  # noqa: E402
from visiongrid.client import Client  # noqa: E402
from visiongrid.settings import Settings  # noqa: E402


def chunk_json(task_id: str, index: int) -> str:
    targets = [
        {
            "track_id": track,
            "class": "person",
            "confidence": 0.87,
            "roi": {"left": 10 * track + index % 50, "top": 40, "width": 64, "height": 180},
            "feature_digest": "dim=256;norm=1.000",
        }
        for track in range(1, 6)
    ]
    info = {
        "frame_index": index * 5,
        "total_frames": None,
        "decoded_frames": index + 1,
        "dropped_frames": 0,
        "fps": 25.0,
        "elapsed_ms": index * 40,
        "timestamp_ms": index * 200.0,
    }
    payload = {"id": task_id, "object": "mm.pipeline.chunk", "stream_info": info, "finish_reason": None}
    payload["delta"] = {"results": [{"index": 0, "targets": targets}]}
    return json.dumps(payload, separators=(",", ":"))


def running_task(settings: Settings, project: str) -> str:
    tasks = TaskStore(open_engine(settings.resolved_database_url()))
    task = tasks.create(project, {"input": []}, None)
    claimed = tasks.claim_next("bench", max_running=10, max_running_per_project=10)
    assert claimed is not None and claimed.id == task.id
    Chunk.model_validate_json(chunk_json(task.id, 0))  # the payload is the contract's
    return task.id


def write_chunks(settings: Settings, task_id: str, chunks: int, rate: float | None = None) -> int:
    """Archive ``chunks`` chunks (at ``rate`` per second, else at once), then [DONE]; finish the task."""
    engine = open_engine(settings.resolved_database_url())
    tasks, archive = TaskStore(engine), Archive(engine)
    end, started = 0, time.monotonic()
    for index in range(chunks):
        if rate is not None:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        end = archive.append(task_id, sse_event(chunk_json(task_id, index), end))
    end = archive.append(task_id, sse_event(DONE_DATA, end))
    usage = {"processed_frames": chunks, "processing_time_ms": 1}
    assert tasks.finish(task_id, "bench", status="succeeded", finish_reason="stop", usage=usage)
    return end


def live_phase(settings: Settings, url: str, key: str, chunks: int, rate: float) -> dict[str, float]:
    """A task written at ``rate`` chunks/s, read while it runs by a raw reader and by the client at once:
    seconds from the last chunk's write to each reader's end."""
    task_id = running_task(settings, "bench")
    path = f"/v1/video/tasks/{task_id}/stream"
    ended: dict[str, float] = {}

    def raw() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            read_raw(http, path)
        ended["raw"] = time.monotonic()

    def typed() -> None:
        with Client(url, key) as client:
            assert sum(1 for _ in client.video.stream(task_id)) == chunks
        ended["client"] = time.monotonic()

    readers = [threading.Thread(target=raw), threading.Thread(target=typed)]
    for reader in readers:
        reader.start()
    time.sleep(0.5)  # both connected and waiting
    write_chunks(settings, task_id, chunks, rate)
    written = time.monotonic()
    for reader in readers:
        reader.join(60)
    return {name: at - written for name, at in ended.items()}


def _serve(data_dir: str, port: int) -> None:
    from api.app import create_app
    from api.services import Services

    settings = Settings(data_dir=Path(data_dir), s3_local_server=False)
    uvicorn.run(create_app(Services.from_settings(settings)), host="127.0.0.1", port=port, log_level="warning")


def start_server(settings: Settings) -> tuple[str, multiprocessing.Process]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(str(settings.data_dir), port))
    process.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return url, process
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the API did not start")


def read_raw(http: httpx.Client, path: str) -> int:
    size = 0
    with http.stream("GET", path) as response:
        for piece in response.iter_bytes():
            size += len(piece)
    return size


def read_json(http: httpx.Client, path: str) -> int:
    count = 0
    with http.stream("GET", path) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                json.loads(line[6:])
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--live-chunks", type=int, default=1000, help="chunks of the live phase")
    parser.add_argument("--live-rate", type=float, default=250.0, help="chunks/s written in the live phase")
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="vg-client-")), s3_local_server=False)
    _, key = KeyStore(open_engine(settings.resolved_database_url())).create("bench", ("admin",))
    task_id = running_task(settings, "bench")
    size = write_chunks(settings, task_id, args.chunks)
    url, server = start_server(settings)
    path = f"/v1/video/tasks/{task_id}/stream"
    times: dict[str, list[float]] = {"raw": [], "raw + json": [], "client": []}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http, Client(url, key) as client:
        readers: dict[str, Any] = {
            "raw": lambda: read_raw(http, path) == size,
            "raw + json": lambda: read_json(http, path) == args.chunks,
            "client": lambda: sum(1 for _ in client.video.stream(task_id)) == args.chunks,
        }
        for name, read in readers.items():  # warm-up
            assert read(), name
        for _ in range(args.rounds):
            for name, read in readers.items():
                started = time.perf_counter()
                assert read(), name
                times[name].append(time.perf_counter() - started)
    live = live_phase(settings, url, key, args.live_chunks, args.live_rate)
    server.terminate()
    server.join(10)
    raw = statistics.median(times["raw"])
    rows = [
        [
            name,
            f"{statistics.median(samples) * 1000:.0f} ms",
            f"{args.chunks / statistics.median(samples):,.0f}",
            f"{size / 1e6 / statistics.median(samples):.1f} MB/s",
            f"{raw / statistics.median(samples):.2f}×",
        ]
        for name, samples in times.items()
    ]
    per_chunk = (statistics.median(times["client"]) - raw) / args.chunks * 1e6
    rows.append(["client cost per chunk", "-", "-", f"{per_chunk:.0f} µs over raw", "-"])
    span = args.live_chunks / args.live_rate
    rows.append(
        [
            f"live task, {args.live_rate:g} chunks/s for {args.live_chunks / args.live_rate:g} s",
            f"raw ends {live['raw'] * 1000:.0f} ms / client {live['client'] * 1000:.0f} ms after the last write",
            f"{args.live_rate:g} (both)",
            "-",
            f"{(span + live['raw']) / (span + live['client']):.2f}×",
        ]
    )
    report(
        "Client: stream parsing vs raw HTTP reading (benchmarks/client.py)",
        ["reader", "whole stream (median)", "chunks/s", "throughput", "vs raw"],
        rows,
        [
            f"One task's archived stream: {args.chunks} chunks of 5 tracked targets, {size / 1e6:.1f} MB, replayed by "
            f"the API app under uvicorn on loopback in its own process (SQLite); {args.rounds} rounds after a warm-up, "
            "readers alternating. raw = httpx iter_bytes; raw + json = iter_lines + json.loads per data line; client = "
            "Client.video.stream (httpx-sse + Chunk.model_validate_json, offsets kept). Target: client ≥ 0.9× raw.",
        ],
        ["httpx", "httpx-sse", "pydantic", "uvicorn", "fastapi"],
    )


if __name__ == "__main__":
    main()
