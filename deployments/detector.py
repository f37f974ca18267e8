"""The detector as a Ray Serve deployment: a thin continuous batching (``deployments/batching.py``) wrapper of
:class:`models.runtime.detector.Detector` (the plain class, usable in-process).

Frames from every running task are batched into one model call per registered detector named in
the batch; each item keeps its own options and its own errors.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from deployments.scaling import backend_of
from kernels.detections import Detections
from models.registry import get_model
from models.runtime.backend import onnx_providers
from models.runtime.detector import Detector, DetectRequest
from visiongrid.settings import Settings

__all__ = ["DetectorDeployment"]


@serve.deployment(ray_actor_options={"num_cpus": 1.0}, max_ongoing_requests=64)
class DetectorDeployment(BatchedModel):
    """The detector as a Ray Serve deployment: frames from every running task are batched
    together (continuous batching (``deployments/batching.py``)), each keeping its own options and its own errors."""

    def __init__(self, settings: Settings) -> None:
        # ORT threads follow the replica's CPU share, rounded up: on 2 cores the detector gets
        # 1.3 CPUs of Ray's accounting (the rest hosts the light ingress, workers and other models) and 2 threads.
        self.settings = settings
        self.threads = max(1, math.ceil(settings.detector_num_cpus))
        self.detectors: dict[str, Detector] = {}
        self.default = settings.detector_model
        self.backend = backend_of(settings, "detector")  # cuda where this replica sees a GPU, else cpu
        self._detector(None)  # load the default now: a broken model should fail the deployment, not a task
        self._detects = self.batcher(
            self.detect_batch, max_batch_size=settings.detector_max_batch_size, wait_s=settings.detector_batch_wait_s
        )

    def _detector(self, name: str | None) -> Detector:
        """The detector registered as ``name``, loaded on first use (a user's own ONNX needs no code)."""
        key = name or self.default
        if key not in self.detectors:
            self.detectors[key] = Detector(
                get_model(key, self.settings.models_dir),
                intra_op_threads=self.threads,
                inter_op_threads=self.settings.ort_inter_op_threads,
                spin=self.settings.detector_spin_wait,
                providers=self._providers(key),
            )
        return self.detectors[key]

    def _providers(self, key: str) -> list[Any]:
        return onnx_providers(
            self.backend, get_model(key, self.settings.models_dir).path, self.settings.engine_cache_dir
        )

    def _detect_grouped(self, requests: list[DetectRequest]) -> list[Detections | Exception]:
        """One model call per detector named in the batch; an unknown model fails only its items."""
        results: list[Detections | Exception] = [Detections.empty()] * len(requests)
        groups: dict[str | None, list[int]] = {}
        for slot, request in enumerate(requests):
            groups.setdefault(request.model, []).append(slot)
        for name, slots in groups.items():
            try:
                detector = self._detector(name)
            except Exception as error:
                for slot in slots:
                    results[slot] = error
                continue
            for slot, result in zip(slots, detector.detect_each([requests[s] for s in slots]), strict=True):
                results[slot] = result
        return results

    async def detect_batch(self, requests: list[DetectRequest]) -> list[Detections | Exception]:
        self.count_batch(len(requests))
        # ONNX Runtime releases the GIL; running it off the event loop lets the next batch
        # gather while this one computes.
        return await asyncio.to_thread(self._detect_grouped, requests)

    async def detect(
        self,
        image: npt.NDArray[np.uint8],
        min_confidence: float,
        class_filter: tuple[int, ...] | None,
        model: str | None = None,
    ) -> Detections:
        return item_or_raise(await self._detects.submit(DetectRequest(image, min_confidence, class_filter, model)))

    def input_size(self, model: str | None = None) -> tuple[int, int]:
        """(height, width) of the model input, so callers can downscale frames before sending."""
        return self._detector(model).input_size
