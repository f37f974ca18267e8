"""Where the detector runs for a caller: its own deployment (frames cross the object store) or this
process (the same batched class, called in place). ``Settings.detector_placement`` chooses.

Measured on the 2-core CPU machine (benchmarks/vision.py, 2026-12-01): a detector call through a
deployment handle took 79 ms against 53 ms for the same call in-process, the 26 ms being the hop
(serialising a 0.6 MB frame, Serve's router, a second process competing for 2 cores) — and on CPU
cross-task batching gives back little (13.7 vs 11.8 frames/s at batch 2). So on CPU the task worker
and the ingress run the detector in-process by default, batched across their own tasks and requests
with the very same batcher (``deployments/batching.py``); on a GPU the separate deployment batches every worker's
frames into one device call, which is where batching pays.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from ray.serve.handle import DeploymentHandle

from deployments.detector import DetectorDeployment
from deployments.scaling import detector_in_process
from kernels.detections import Detections
from kernels.letterbox import fit_within
from visiongrid.settings import Settings

__all__ = ["DetectorClient", "InProcessDetector", "RemoteDetector", "detector_client"]

Image = npt.NDArray[np.uint8]


class DetectorClient(Protocol):
    """What callers of the detector use, wherever it runs."""

    placement: str  # "in_process" | "deployment"

    async def detect(
        self, image: Image, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections: ...

    async def backend_info(self) -> dict[str, str]: ...

    async def batch_stats(self) -> dict[int, int]: ...


class RemoteDetector:
    """The detector deployment through its handle; frames are downscaled to the model input here so
    what crosses the object store is as small as the model needs (768x576 is 1.3 MB, fitted 0.6 MB)."""

    placement = "deployment"

    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle
        self._input_sizes: dict[str | None, tuple[int, int]] = {}

    async def detect(
        self, image: Image, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections:
        if model not in self._input_sizes:
            self._input_sizes[model] = await self.handle.input_size.remote(model)
        fitted, scale = await asyncio.to_thread(fit_within, image, self._input_sizes[model])
        result: Detections = await self.handle.detect.remote(fitted, min_confidence, class_filter, model)
        return result if scale == 1.0 else result.scaled(1.0 / scale)

    async def backend_info(self) -> dict[str, str]:
        info: dict[str, str] = await self.handle.backend_info.remote()
        return {**info, "placement": self.placement}

    async def batch_stats(self) -> dict[int, int]:
        stats: dict[int, int] = await self.handle.batch_stats.remote()
        return stats


class InProcessDetector:
    """The deployment's own class instantiated in this replica: the same model loading, backend choice
    and batcher (calls of this process's concurrent tasks share model calls), no hop."""

    placement = "in_process"

    def __init__(self, settings: Settings) -> None:
        # ``@serve.deployment`` keeps the plain class as ``func_or_class``
        self._impl = cast(Any, DetectorDeployment).func_or_class(settings)

    async def detect(
        self, image: Image, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections:
        result: Detections = await self._impl.detect(np.ascontiguousarray(image), min_confidence, class_filter, model)
        return result

    async def backend_info(self) -> dict[str, str]:
        info: dict[str, str] = await self._impl.backend_info()
        return {**info, "placement": self.placement}

    async def batch_stats(self) -> dict[int, int]:
        stats: dict[int, int] = self._impl.batch_stats()
        return stats


def detector_client(settings: Settings, handle: DeploymentHandle) -> DetectorClient:
    """The detector as ``settings.detector_placement`` places it (``auto``: in-process on CPU)."""
    if detector_in_process(settings):
        return InProcessDetector(settings)
    return RemoteDetector(handle)
