"""The step models in the cluster: :class:`~pipelines.executor.StepModels` over deployment handles.

Used by task workers (video frames, image batches) and the ingress (synchronous vision endpoints).
The detector is a :class:`~deployments.detector_client.DetectorClient` (in this process or its own
deployment, as ``detector_placement`` says). Appearance crops are cut *here*, in the caller, so
what crosses the object store is as small as the model needs; OCR and face crops go at source
resolution because both read fine detail.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
from ray.serve.handle import DeploymentHandle

from deployments.detector_client import DetectorClient
from kernels.crops import crop_resize
from kernels.detections import Detections

__all__ = ["ServeStepModels"]


class ServeStepModels:
    """Calls the model deployments; each call is one image so every deployment batches across tasks."""

    def __init__(
        self,
        *,
        detector: DetectorClient,
        ocr: DeploymentHandle,
        embedder: DeploymentHandle,
        face: DeploymentHandle,
    ) -> None:
        self.detector = detector
        self.ocr = ocr
        self.embedder = embedder
        self.face = face
        self._crop_size: tuple[int, int] | None = None

    async def detect(
        self,
        image: npt.NDArray[np.uint8],
        *,
        model: str | None,
        min_confidence: float,
        class_filter: tuple[int, ...] | None,
    ) -> Detections:
        return await self.detector.detect(image, model=model, min_confidence=min_confidence, class_filter=class_filter)

    async def read_text(self, image: npt.NDArray[np.uint8]) -> Detections:
        result: Detections = await self.ocr.read.remote(np.ascontiguousarray(image))
        return result

    async def embed(self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._crop_size is None:
            self._crop_size = await self.embedder.crop_size.remote()
        crops = await asyncio.to_thread(crop_resize, image, xyxy, self._crop_size)
        vectors: npt.NDArray[np.float32] = await self.embedder.embed.remote(crops)
        return vectors

    async def find_faces(self, image: npt.NDArray[np.uint8]) -> Detections:
        result: Detections = await self.face.analyse.remote(np.ascontiguousarray(image))
        return result
