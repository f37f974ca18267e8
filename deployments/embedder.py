"""The appearance embedder as a Ray Serve deployment: a thin batching wrapper of
:class:`models.runtime.embedder.AppearanceEmbedder` (crops in, ``float32 [N, D]`` vectors out).

The crops of frames from every running task are batched into one model call; each caller keeps its
own errors.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import numpy.typing as npt
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from deployments.scaling import backend_of
from models.registry import get_model
from models.runtime.backend import onnx_providers
from models.runtime.embedder import AppearanceEmbedder
from visiongrid.settings import Settings

__all__ = ["EmbedderDeployment"]


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class EmbedderDeployment(BatchedModel):
    """The appearance embedder as a Ray Serve deployment: the crops of frames from every running
    task are batched into one model call (``deployments/batching.py``), each caller keeping its own errors."""

    def __init__(self, settings: Settings) -> None:
        # ORT threads follow the replica's CPU share, rounded up (a fractional share → 1 thread).
        threads = max(1, math.ceil(settings.model_num_cpus))
        entry = get_model(settings.appearance_model, settings.models_dir)
        self.backend = backend_of(settings, "embedder")  # cuda where this replica sees a GPU, else cpu
        self.embedder = AppearanceEmbedder(
            entry,
            intra_op_threads=threads,
            providers=onnx_providers(self.backend, entry.path, settings.engine_cache_dir, max_batch=64),
        )
        self._embeds = self.batcher(
            self.embed_batch, max_batch_size=settings.model_max_batch_size, wait_s=settings.model_batch_wait_s
        )

    async def embed_batch(self, batches: list[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32] | Exception]:
        self.count_batch(len(batches))
        # ONNX Runtime releases the GIL; running it off the event loop lets the next batch gather.
        return await asyncio.to_thread(self.embedder.embed_each, batches)

    async def embed(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """All crops of one frame (``uint8 [N, h, w, 3]`` at :meth:`crop_size`) → ``float32 [N, D]``."""
        return item_or_raise(await self._embeds.submit(crops))

    def crop_size(self) -> tuple[int, int]:
        """(height, width) the crops must have, so callers cut them before sending."""
        return self.embedder.crop_size

    def pad_value(self) -> int:
        """Grey of the letterbox padding the model expects around a crop."""
        return self.embedder.pad_value

    def dim(self) -> int:
        return self.embedder.dim
