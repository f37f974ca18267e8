"""The face analyser as a Ray Serve deployment: a thin continuous batching (``deployments/batching.py``) wrapper of
:class:`models.runtime.face.FaceAnalyzer` (BlazeFace + FaceRes, the plain class)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import numpy.typing as npt
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from deployments.scaling import backend_of
from kernels.detections import Detections
from models.registry import get_model
from models.runtime.backend import onnx_providers
from models.runtime.face import FaceAnalyzer
from visiongrid.settings import Settings

__all__ = ["FaceDeployment"]


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class FaceDeployment(BatchedModel):
    """The face analyser as a Ray Serve deployment: images from every task are batched."""

    def __init__(self, settings: Settings) -> None:
        threads = max(1, math.ceil(settings.model_num_cpus))
        detector = get_model(settings.face_detector_model, settings.models_dir)
        self.backend = backend_of(settings, "face")  # cuda where this replica sees a GPU, else cpu
        # both sessions share the engine cache folder: ONNX Runtime names each engine by its graph
        self.analyzer = FaceAnalyzer(
            detector,
            get_model(settings.face_descriptor_model, settings.models_dir),
            intra_op_threads=threads,
            min_confidence=settings.face_min_confidence,
            providers=onnx_providers(self.backend, detector.path, settings.engine_cache_dir, max_batch=None),
        )
        self._analyses = self.batcher(
            self.analyse_batch, max_batch_size=settings.model_max_batch_size, wait_s=settings.model_batch_wait_s
        )

    async def analyse_batch(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections | Exception]:
        self.count_batch(len(images))
        # ONNX Runtime releases the GIL: run it off the event loop so the next batch gathers.
        return await asyncio.to_thread(self.analyzer.analyse_each, images)

    async def analyse(self, image: npt.NDArray[np.uint8]) -> Detections:
        return item_or_raise(await self._analyses.submit(image))

    def descriptor_dim(self) -> int:
        return self.analyzer.descriptor_dim
