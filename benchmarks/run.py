"""The one benchmark runner: every headline number of this machine (or a remote cluster) in one run.

Run:  .venv/bin/python benchmarks/run.py [--quick] [--concurrency 1,4,16]
      .venv/bin/python benchmarks/run.py --url https://cluster:8080 --key vg_... [--skip-local]

Measures, in this order, on whatever machine it runs on:
- decode-only frames/s (PyAV, RGB, every frame) and model-only frames/s (the detector on decoded
  frames, batch 1 and the best of ``--batches``): the two ceilings, in this process;
- end-to-end detect+track through the real API for each ``--concurrency`` (tasks submitted together,
  polled to the end; frames/s = processed frames / server wall) and its ratio to
  min(decode-only, model-only);
- sync ``POST /v1/vision/detect`` p50/p99, and the cold start of the OCR deployment.
Without ``--url`` it starts the real service here (Ray + Serve, free ports). It prints one Markdown
table and appends it to benchmarks/RESULTS.md (``--no-append``: print only).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: import from the root

from benchmarks._report import markdown_table, report
from benchmarks._runner_api import ColdStart, TaskRun
from benchmarks._runner_local import ModelOnly

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / ".cache" / "media"
PACKAGES = ["numpy", "onnxruntime", "onnxruntime-gpu", "av", "ray", "httpx"]
HEADERS = ["measurement", "detail", "result", "÷ min(decode, model)"]

# per-size defaults: (full, --quick). --quick fits a 2-core machine in about 4 minutes.
SIZES: dict[str, tuple[int, int]] = {
    "frames": (150, 30),  # max_frames of each end-to-end task
    "requests": (200, 30),  # measured sync detect requests
    "decode_frames": (795, 200),  # frames of the decode-only run (795: all of vtest.avi)
    "model_frames": (128, 32),  # decoded frames per model-only batch-size run
    "repeats": (2, 1),  # best of N for the in-process ceilings
}


def int_list(text: str) -> list[int]:
    """``"1,4,16"`` → ``[1, 4, 16]``; every item a positive integer."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="benchmark this VisionGrid (base URL) instead of starting one here")
    parser.add_argument("--key", help="API key for --url")
    parser.add_argument("--skip-local", action="store_true", help="skip the in-process decode/model-only ceilings")
    parser.add_argument("--quick", action="store_true", help="fewer frames and requests (2 cores: ≤ 4 min)")
    parser.add_argument("--concurrency", type=int_list, default=[1, 4, 16], help="concurrent tasks, e.g. 1,4,16")
    parser.add_argument("--batches", type=int_list, default=[1, 2, 4, 8], help="model-only batch sizes")
    parser.add_argument("--threads", type=int, default=None, help="model-only ORT threads (default: all CPUs)")
    parser.add_argument("--clip", type=Path, default=MEDIA / "vtest.avi", help="video of the decode and task runs")
    parser.add_argument("--photo", type=Path, default=MEDIA / "dog.jpg", help="image of the sync detect runs")
    parser.add_argument("--ocr-photo", type=Path, default=MEDIA / "text_motion.jpg", help="image of the cold start")
    parser.add_argument("--media-url", help="URL the tasks read the clip from (default: served/uploaded here)")
    parser.add_argument("--no-append", action="store_true", help="print the table only (no RESULTS.md)")
    for name in SIZES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, dest=name)
    args = parser.parse_args(argv)
    if args.url and not args.key:
        parser.error("--url needs --key")
    if args.key and not args.url:
        parser.error("--key is only used with --url")
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if 1 not in args.batches:
        args.batches = [1, *args.batches]
    return args


# --------------------------------------------------------------------------------------------- pure math


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of durations in seconds, in milliseconds."""
    ordered = sorted(seconds)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1] * 1000


def ceiling(decode_fps: float | None, model_fps: float | None) -> float | None:
    """min(decode-only, model-only): the most an end-to-end run could reach; None if either is unknown."""
    if not decode_fps or not model_fps:
        return None
    return min(decode_fps, model_fps)


def ratio(e2e_fps: float, decode_fps: float | None, model_fps: float | None) -> float | None:
    limit = ceiling(decode_fps, model_fps)
    return None if limit is None else e2e_fps / limit


@dataclass
class Results:
    """Everything one run measured; any part may be missing (skipped or failed)."""

    decode_fps: float | None = None
    model: ModelOnly | None = None
    runs: list[TaskRun] = field(default_factory=list)
    detect_s: list[float] = field(default_factory=list)
    cold: ColdStart | None = None
    backend: str = "unknown"
    errors: list[str] = field(default_factory=list)


def rows_of(results: Results, frames: int) -> list[list[str]]:
    """The table's rows: ceilings first, then end-to-end with ratios, then latency and cold start."""
    rows: list[list[str]] = [["backend", "onnxruntime providers in use", results.backend, "-"]]
    model_best = None
    if results.decode_fps is not None:
        rows.append(["decode only", "PyAV, RGB, every frame", f"{results.decode_fps:.1f} frames/s", "-"])
    if results.model is not None:
        best = results.model.best_batch
        model_best = results.model.fps[best]
        threads = f"{results.model.threads} ORT threads"
        rows.append(["model only, batch 1", threads, f"{results.model.fps[1]:.1f} frames/s", "-"])
        rows.append([f"model only, best batch ({best})", threads, f"{model_best:.1f} frames/s", "-"])
    for run in results.runs:
        share = ratio(run.fps, results.decode_fps, model_best)
        detail = f"{run.count} × {frames} frames, {run.frames} processed, {run.wall_s:.1f} s"
        if run.failed:
            detail += f", {len(run.failed)} not succeeded"
        cell = "n/a" if share is None else f"{share:.2f}"
        rows.append([f"end-to-end detect+track, {run.count} task(s)", detail, f"{run.fps:.1f} frames/s", cell])
    if results.detect_s:
        p50, p99 = percentile_ms(results.detect_s, 50), percentile_ms(results.detect_s, 99)
        detail = f"{len(results.detect_s)} sequential requests"
        rows.append(["sync POST /v1/vision/detect", detail, f"p50 {p50:.1f} ms / p99 {p99:.1f} ms", "-"])
    if results.cold is not None:
        cold = results.cold
        result = f"{cold.first_s * 1000:.0f} ms (next request {cold.warm_s * 1000:.0f} ms)"
        rows.append(["cold start: OCR deployment", cold.mode, result, "-"])
    return rows


# --------------------------------------------------------------------------------------------- measuring


def clip_line(clip: Path) -> str:
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        return f"{clip.name} ({stream.codec_context.name}, {stream.width}x{stream.height})"


def measure_local(args: argparse.Namespace, results: Results) -> None:
    """The in-process ceilings (decode-only, model-only)."""
    import os

    from benchmarks._runner_local import backend_of, decode_only, model_only
    from visiongrid.settings import Settings

    results.decode_fps = decode_only(args.clip, args.decode_frames, args.repeats)
    threads = args.threads or os.cpu_count() or 1
    results.model = model_only(Settings(), args.clip, args.model_frames, args.batches, threads, args.repeats)
    results.backend = f"{backend_of(results.model.providers)} ({', '.join(results.model.providers)})"


def measure_api(
    client: httpx.Client, args: argparse.Namespace, media_url: str, results: Results, cold: Callable[[], ColdStart]
) -> None:
    """Cold start first (nothing has touched OCR yet), then the task runs, then sync detect latency."""
    from benchmarks._runner_api import call, detect_latency, find_backend, run_tasks

    results.cold = cold()
    reported = find_backend(call(client, "GET", "/v1/status").json())
    if reported:
        results.backend += f"; service reports {reported}"
    run_tasks(client, media_url, 1, min(10, args.frames), poll_s=0.2)  # warm-up: worker, decoder, detector
    for count in args.concurrency:
        run = run_tasks(client, media_url, count, args.frames, poll_s=0.2 if count == 1 else 0.5)
        results.runs.append(run)
        results.errors += run.failed
        print(f"{count} task(s): {run.fps:.1f} frames/s over {run.wall_s:.1f} s", file=sys.stderr)
    results.detect_s = detect_latency(client, args.photo, args.requests, warmup=5)


def run_remote(args: argparse.Namespace, results: Results) -> list[str]:
    import httpx

    from benchmarks._runner_api import cold_start, upload_media

    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=600) as client:
        media_url = args.media_url or upload_media(client, args.clip)
        mode = "first OCR request of this runner (remote: it may already be warm)"
        measure_api(client, args, media_url, results, lambda: cold_start(client, args.ocr_photo, mode))
    return [f"API rows measured against {args.url} (the machine line is this client's); tasks read {media_url}."]


def run_local(args: argparse.Namespace, results: Results) -> list[str]:
    import httpx

    from benchmarks._runner_api import cold_start
    from benchmarks._runner_local import (
        cold_start_mode,
        local_settings,
        scale_to_zero_overrides,
        start_service,
        stop_service,
        wait_for_zero,
    )
    from benchmarks._service import serve_file_over_http

    overrides = scale_to_zero_overrides()
    settings = local_settings(ROOT, max(args.concurrency), overrides)
    media_url = args.media_url or serve_file_over_http(args.clip)
    hook = wait_for_zero() if overrides is not None else None
    try:
        base, key = start_service(settings)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
            mode = cold_start_mode(overrides)
            measure_api(client, args, media_url, results, lambda: cold_start(client, args.ocr_photo, mode, hook))
    finally:
        stop_service()
    return [
        "API rows: the real service started here (visiongrid.serving.start: Ray + Serve, free ports), "
        f"max_running_tasks = tasks_per_worker = {max(args.concurrency)}, detector_num_cpus "
        f"{settings.detector_num_cpus}, detector_max_batch_size {settings.detector_max_batch_size}, "
        "rate limits raised out of the way, Ray dashboard off; tasks read the clip from a loopback HTTP server."
    ]


def notes_of(args: argparse.Namespace, results: Results, where: list[str]) -> list[str]:
    notes = [
        f"Clip {clip_line(args.clip)}. Ceilings in this process, best of {args.repeats}: decode-only over "
        f"{args.decode_frames} frames; model-only = letterbox + ONNX Runtime + box decoding on "
        f"{args.model_frames} pre-decoded frames per batch size {args.batches}.",
        "End-to-end: tasks submitted together (steps [detect] = detector + ByteTrack, every frame, max_frames "
        f"{args.frames}), polled to a terminal state after one unmeasured warm-up task; frames/s = processed "
        "frames / (last finished_at − first created_at, server clock). Ratio = end-to-end ÷ min(decode-only, "
        "model-only best batch); n/a without the local ceilings.",
        f"Sync detect: {args.photo.name} as base64, sequential keep-alive requests after 5 warm-up, 20 ms apart.",
        f"Cold start: POST /v1/vision/ocr with {args.ocr_photo.name}, before any other request touches OCR; "
        "'next request' is the warm latency right after.",
        *where,
    ]
    if results.errors:
        notes.append(f"NOT all runs succeeded: {'; '.join(results.errors[:5])}")
    return notes


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for path in (args.clip, args.photo, args.ocr_photo):
        if not path.exists():
            sys.exit(f"{path} missing: run tools/fetch_media.sh first")
    results = Results()
    if not args.skip_local:
        measure_local(args, results)
        model = results.model.fps if results.model else {}
        print(f"ceilings: decode {results.decode_fps:.1f} frames/s, model {model}", file=sys.stderr)
    where = run_remote(args, results) if args.url else run_local(args, results)
    rows = rows_of(results, args.frames)
    notes = notes_of(args, results, where)
    title = "Benchmark runner (benchmarks/run.py" + (" --quick" if args.quick else "") + ")"
    if args.no_append:
        print(markdown_table(HEADERS, rows))
        print("\n".join(f"- {note}" for note in notes))
    else:
        report(title, HEADERS, rows, notes, PACKAGES)


if __name__ == "__main__":
    main()
