"""The text reader as a Ray Serve deployment: a thin continuous batching (``deployments/batching.py``) wrapper of
:class:`models.runtime.ocr.TextReader` (RapidOCR's PP-OCR models, the plain class).

RapidOCR reads one image at a time, so a batch is a loop; it runs off the event loop so the next
batch can gather.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from deployments.scaling import backend_of
from kernels.detections import Detections
from models.runtime.backend import Backend
from models.runtime.ocr import TextReader
from visiongrid.settings import Settings

__all__ = ["OCRDeployment"]


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class OCRDeployment(BatchedModel):
    """The text reader as a Ray Serve deployment: images (frames or crops) from every running task
    are batched together (continuous batching (``deployments/batching.py``)); each item keeps its own errors."""

    def __init__(self, settings: Settings) -> None:
        # ORT threads follow the replica's CPU share, rounded up (a 0.25 share runs one thread).
        choice = backend_of(settings, "ocr")
        # RapidOCR switches ONNX Runtime to CUDA itself and has no TensorRT option: report what runs
        on_gpu = choice.backend is Backend.CUDA
        self.backend = replace(choice, runtime="onnxruntime-cuda") if on_gpu else choice
        self.reader = TextReader(intra_op_threads=max(1, math.ceil(settings.model_num_cpus)), use_cuda=on_gpu)
        self._reads = self.batcher(
            self.read_batch, max_batch_size=settings.model_max_batch_size, wait_s=settings.model_batch_wait_s
        )

    async def read_batch(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections | Exception]:
        self.count_batch(len(images))
        # ONNX Runtime releases the GIL; off the event loop the next batch gathers meanwhile.
        return await asyncio.to_thread(self.reader.read_each, images)

    async def read(self, image: npt.NDArray[np.uint8]) -> Detections:
        return item_or_raise(await self._reads.submit(image))
