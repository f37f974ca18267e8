"""The step models in the cluster: :class:`~pipelines.executor.StepModels` over deployment handles.

Used by task workers (video frames, image batches) and the ingress (synchronous vision endpoints).
Frames are downscaled to the detector's input and appearance crops are cut *here*, in the caller, so
what crosses the object store is as small as the model needs; OCR and face crops go at source
resolution because both read fine detail.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
from ray.serve.handle import DeploymentHandle

from kernels.crops import crop_resize
from kernels.detections import Detections
from kernels.letterbox import fit_within

__all__ = ["ServeStepModels"]


class ServeStepModels:
    """Calls the model deployments; each call is one image so every deployment batches across tasks."""

    def __init__(
        self,
        *,
        detector: DeploymentHandle,
        ocr: DeploymentHandle,
        embedder: DeploymentHandle,
        face: DeploymentHandle,
    ) -> None:
        self.detector = detector
        self.ocr = ocr
        self.embedder = embedder
        self.face = face
        self._input_sizes: dict[str | None, tuple[int, int]] = {}
        self._crop_size: tuple[int, int] | None = None

    async def detect(
        self,
        image: npt.NDArray[np.uint8],
        *,
        model: str | None,
        min_confidence: float,
        class_filter: tuple[int, ...] | None,
    ) -> Detections:
        """Downscale to the model's input size here, ship the smaller frame, scale boxes back.

        A 768x576 frame is 1.3 MB; fitted to 512 px it is 0.6 MB, and the detector replica (the busiest
        process) is spared the resize. Results are identical (see ``fit_within``).
        """
        if model not in self._input_sizes:
            self._input_sizes[model] = await self.detector.input_size.remote(model)
        fitted, scale = await asyncio.to_thread(fit_within, image, self._input_sizes[model])
        result: Detections = await self.detector.detect.remote(fitted, min_confidence, class_filter, model)
        return result if scale == 1.0 else result.scaled(1.0 / scale)

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
