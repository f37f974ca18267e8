"""End-to-end video pipeline through the API on Ray Serve vs the bare loop, same run.

Run:  .venv/bin/python benchmarks/video_pipeline.py [--frames 150] [--placements in_process,deployment]

Measures, on the real pedestrian clip (vtest.avi, every frame sampled):
- bare loop frames/s (pipelines.bare_loop.analyse_video, in this process) — the baseline, re-measured
  before each phase;
- one phase per ``--placements`` value (``detector_placement``: in_process, deployment), each on a
  freshly started service:
  - 1 task through the API: frames/s from POST to `[DONE]`, and time to first chunk;
  - 4 concurrent tasks: aggregate frames/s (tasks queue FIFO under max_running_tasks);
  - memory: peak RSS of the worker, detector and ingress replicas while one long task runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import report
from benchmarks._service import free_port, serve_file_over_http
from pipelines.bare_loop import analyse_video, load_detector
from pipelines.decode import Sampling
from store.db import open_engine
from store.keys import KeyStore
from visiongrid.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / ".cache" / "media" / "vtest.avi"


def run_task(base: str, key: str, url: str, frames: int) -> dict[str, float]:
    """POST a task and read its stream to [DONE]; returns timings in seconds."""
    body = {
        "input": [
            {"type": "video_url", "url": url, "sampling": {"mode": "interval", "value": 1}, "max_frames": frames}
        ],
        "steps": [{"model": "detect"}],
    }
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        task_id = client.post("/v1/video/process", json=body).json()["id"]
        first_chunk = None
        with client.stream("GET", f"/v1/video/tasks/{task_id}/stream") as response:
            for line in response.iter_lines():
                if line.startswith("data:") and first_chunk is None:
                    first_chunk = time.perf_counter() - started
                if line == "data: [DONE]":
                    break
        total = time.perf_counter() - started
        processed = client.get(f"/v1/video/tasks/{task_id}").json()["usage"]["processed_frames"]
    return {"total_s": total, "first_chunk_s": first_chunk or total, "frames": processed}


def replica_processes() -> dict[str, psutil.Process]:
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        for name in ("TaskWorker", "DetectorDeployment", "Ingress"):
            if f"ServeReplica:visiongrid:{name}" in cmdline:
                found[name] = process
    return found


def api_phase(placement: str, args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Start the service with the detector placed as asked, run the single, 4-task and memory runs, stop it."""
    import ray
    from ray import serve

    from visiongrid.serving import start

    settings = Settings(
        data_dir=ROOT / ".cache" / "bench" / f"data-{int(time.time())}-{placement}",
        port=free_port(),
        metrics_export_port=free_port(),
        allow_private_urls=True,
        claim_poll_interval_s=0.05,
        detector_placement=placement,
        ray_dashboard=False,
    )
    start(settings)
    _, key = KeyStore(open_engine(settings.resolved_database_url())).create("bench")
    base = f"http://127.0.0.1:{settings.port}"
    run_task(base, key, url, 10)  # warm-up: replicas, sessions, caches

    singles = [run_task(base, key, url, args.frames) for _ in range(2)]
    single = min(singles, key=lambda timing: timing["total_s"])

    results: list[dict[str, float]] = []
    threads = [threading.Thread(target=lambda: results.append(run_task(base, key, url, args.frames))) for _ in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    four_wall = time.perf_counter() - started

    processes = replica_processes()
    before = {name: process.memory_info().rss for name, process in processes.items()}
    samples: list[dict[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                samples.append({name: process.memory_info().rss for name, process in processes.items()})
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    long_run = run_task(base, key, url, args.long_frames)
    stop.set()
    sampler.join()
    serve.shutdown()
    ray.shutdown()
    return {
        "single": single,
        "single_fps": single["frames"] / single["total_s"],
        "four_fps": sum(r["frames"] for r in results) / four_wall,
        "rss_before": before,
        "rss_peak": {name: max([s[name] for s in samples if name in s] or [before[name]]) for name in before},
        "long_frames": long_run["frames"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--long-frames", type=int, default=795, help="frames of the memory run (795 = whole clip)")
    parser.add_argument(
        "--placements", default="in_process,deployment", help="detector_placement values to run, in this order"
    )
    args = parser.parse_args()
    if not CLIP.exists():
        sys.exit("run tools/fetch_media.sh first (real media missing)")

    base_settings = Settings(data_dir=ROOT / ".cache" / "bench" / "bare")
    detector = load_detector(base_settings)
    detector.detect([__import__("numpy").zeros((480, 640, 3), "uint8")])  # warm-up

    def bare() -> float:
        started = time.perf_counter()
        result = analyse_video(
            CLIP,
            sampling=Sampling(mode="interval", value=1),
            max_frames=args.frames,
            settings=base_settings,
            detector=detector,
        )
        return result.processed_frames / (time.perf_counter() - started)

    url = serve_file_over_http(CLIP)
    mib = 1024**2
    rows: list[list[Any]] = []
    for placement in [item.strip() for item in args.placements.split(",") if item.strip()]:
        bare_fps = max(bare(), bare())  # the baseline right before each phase: the machine drifts
        phase = api_phase(placement, args, url)
        rows.append([f"bare loop (baseline before the {placement} phase)", f"{bare_fps:.1f}", "1.00", "-", "-"])
        rows.append(
            [
                f"API, 1 task, detector {placement}",
                f"{phase['single_fps']:.1f}",
                f"{phase['single_fps'] / bare_fps:.2f}",
                f"{phase['single']['first_chunk_s'] * 1000:.0f} ms",
                "-",
            ]
        )
        rows.append(
            [
                f"API, 4 concurrent tasks (aggregate), detector {placement}",
                f"{phase['four_fps']:.1f}",
                f"{phase['four_fps'] / bare_fps:.2f}",
                "-",
                "-",
            ]
        )
        for name in sorted(phase["rss_before"]):
            rows.append(
                [
                    f"RSS {name} over {int(phase['long_frames'])} frames ({placement})",
                    "-",
                    "-",
                    "-",
                    f"{phase['rss_before'][name] / mib:.0f} → peak {phase['rss_peak'][name] / mib:.0f} MiB",
                ]
            )
    report(
        "Video pipeline through the API (benchmarks/video_pipeline.py)",
        ["run", "frames/s", "× bare loop", "time to first chunk", "memory"],
        rows,
        [
            f"vtest.avi (768x576 MPEG-4, real pedestrians), every frame, {args.frames} frames per task; best of 2 "
            "for the bare loop and the single task; the bare loop is re-measured before each phase.",
            "API rows: POST /v1/video/process → SSE stream read to [DONE] over loopback HTTP; Ray Serve on this "
            "machine, default settings (max_running_tasks 2, so 4 tasks run two at a time) except "
            "detector_placement: in_process = the detector inside the TaskWorker (the CPU default), deployment = "
            "its own DetectorDeployment replica (1.3 CPUs), frames sent through the object store.",
            "Memory: RSS of each Serve replica process before the long run and its peak during it.",
        ],
        ["numpy", "onnxruntime", "av", "ray"],
    )


if __name__ == "__main__":
    main()
