"""The in-process half of benchmarks/run.py: decode-only, model-only, and a local service to measure.

Decode-only and model-only are the two ceilings an end-to-end run is divided by: the same PyAV
decoder and the same ``Detector`` the service runs, each alone in this process, with nothing else
on the machine. The local service is the real ``visiongrid.serving.start`` with every port free and
the task limits raised to the highest concurrency measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.registry import get_model
from models.runtime.backend import choose_backend, session_providers
from models.runtime.detector import Detector
from pipelines.decode import Sampling, VideoDecoder
from visiongrid.settings import Settings

EVERY_FRAME = Sampling(mode="interval", value=1)
OCR_DEPLOYMENT = "OCRDeployment"
APP = "visiongrid"


def best_fps(work: Callable[[], int], repeats: int) -> float:
    """Best-of-``repeats`` frames/s of ``work`` (which returns its frame count): the machine is shared
    and noisy, the best run is the one least disturbed."""
    best = 0.0
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        count = work()
        best = max(best, count / (time.perf_counter() - started))
    return best


def decode_only(clip: Path, frames: int, repeats: int) -> float:
    """PyAV decode with RGB conversion of every frame, as the task worker decodes."""

    def work() -> int:
        with VideoDecoder(clip, sampling=EVERY_FRAME, max_frames=frames) as decoder:
            return sum(1 for _ in decoder)

    return best_fps(work, repeats)


def load_frames(clip: Path, frames: int) -> list[npt.NDArray[np.uint8]]:
    with VideoDecoder(clip, sampling=EVERY_FRAME, max_frames=frames) as decoder:
        return [frame.image for frame in decoder]


@dataclass
class ModelOnly:
    """Detector frames/s per batch size on already decoded frames, and the providers it ran on."""

    fps: dict[int, float]
    providers: list[str]
    threads: int

    @property
    def best_batch(self) -> int:
        return max(self.fps, key=lambda batch: self.fps[batch])


def model_only(
    settings: Settings, clip: Path, frames: int, batches: Sequence[int], threads: int, repeats: int
) -> ModelOnly:
    """Letterbox + inference + box decoding per batch size; frames are decoded beforehand."""
    providers = session_providers(choose_backend(settings.inference_backend))  # the GPU's where there is one
    entry = get_model(settings.detector_model, settings.models_dir)
    detector = Detector(entry, intra_op_threads=threads, spin=True, providers=providers)
    images = load_frames(clip, frames)
    fps: dict[int, float] = {}
    for batch in batches:
        detector.detect(images[:batch], min_confidence=0.1)  # warm-up: ORT allocates per shape

        def work(size: int = batch) -> int:
            for start in range(0, len(images), size):
                detector.detect(images[start : start + size], min_confidence=0.1)
            return len(images)

        fps[batch] = best_fps(work, repeats)
    providers = list(detector.session.get_providers())
    return ModelOnly(fps, providers, threads)


def backend_of(providers: Sequence[str]) -> str:
    """``cuda`` when ONNX Runtime runs on a GPU provider (CUDA or TensorRT), else ``cpu``."""
    gpu = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    return "cuda" if any(provider in gpu for provider in providers) else "cpu"


# --------------------------------------------------------------------------------------------- cold start


def scale_to_zero_overrides() -> dict[str, Any] | None:
    """Settings that make the OCR deployment start with no replica, or None where ``Settings`` has no
    scale-to-zero option (then the cold start is the first request after deploy).

    ``scaling_ocr`` (issue 12 item 1) scales OCR to zero by default; the override only makes sure of it
    (``min_replicas`` and ``initial_replicas`` 0, autoscaling on) whatever the environment says."""
    fields = Settings.model_fields
    if "scaling_ocr" not in fields:
        return None
    scaling = Settings().scaling_ocr
    overrides: dict[str, Any] = {
        "scaling_ocr": scaling.model_copy(update={"min_replicas": 0, "initial_replicas": 0}),
    }
    if "autoscaling_enabled" in fields:
        overrides["autoscaling_enabled"] = True
    return overrides


def cold_start_mode(overrides: dict[str, Any] | None) -> str:
    if overrides is None:
        return "first request after the app is deployed (Settings has no min_replicas=0 option)"
    return "scaled to zero (scaling_ocr min_replicas 0): the first request waits for a replica to start"


def ocr_replicas() -> int:
    """Replicas of the OCR deployment that are running or starting, per ``serve.status()``."""
    from ray import serve

    status = serve.status().applications[APP].deployments.get(OCR_DEPLOYMENT)
    if status is None:
        return 0
    live = ("RUNNING", "STARTING", "UPDATING")  # keys are ReplicaState enums whose values are these names
    return sum(int(count) for state, count in status.replica_states.items() if getattr(state, "value", state) in live)


def wait_for_zero(timeout_s: float = 120) -> Callable[[], None]:
    """The hook ``cold_start`` calls: returns once the OCR deployment has no replica left."""

    def wait() -> None:
        deadline = time.monotonic() + timeout_s
        while ocr_replicas() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{OCR_DEPLOYMENT} still has replicas after {timeout_s:.0f} s")
            time.sleep(0.5)

    return wait


# --------------------------------------------------------------------------------------------- service


def free_port() -> int:
    from visiongrid.s3_server import free_ports

    return free_ports(1)[0]


def local_settings(root: Path, concurrency: int, overrides: dict[str, Any] | None) -> Settings:
    """The service the runner starts: free ports, no rate limits in the way, and as many tasks running at
    once as the highest concurrency measured (so 16 tasks run together where the machine allows). The Ray
    dashboard stays off: on a small machine its processes take CPU from the data path being measured."""
    lean: dict[str, Any] = {"ray_dashboard": False} if "ray_dashboard" in Settings.model_fields else {}
    return Settings(
        data_dir=root / ".cache" / "bench" / f"run-{int(time.time())}-{os.getpid()}",
        port=free_port(),
        metrics_export_port=free_port(),
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        chroma_url=f"http://127.0.0.1:{free_port()}",
        allow_private_urls=True,
        claim_poll_interval_s=0.05,
        max_running_tasks=concurrency,
        max_running_tasks_per_project=concurrency,
        tasks_per_worker=concurrency,
        rate_limit_video=100_000,
        rate_limit_vision=100_000,
        rate_limit_storage=100_000,
        **(overrides or {}),
        **lean,
    )


def start_service(settings: Settings) -> tuple[str, str]:
    """Start Ray + the Serve app here; return the base URL and a fresh API key."""
    from store.db import open_engine
    from store.keys import KeyStore
    from visiongrid.serving import start

    start(settings)
    _, key = KeyStore(open_engine(settings.resolved_database_url())).create("bench")
    return f"http://127.0.0.1:{settings.port}", key


def stop_service() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
