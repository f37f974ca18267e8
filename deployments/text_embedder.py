"""The text embedder as a Ray Serve deployment: a thin continuous batching (``deployments/batching.py``) wrapper of
:class:`models.runtime.text_embedder.TextEmbedder` (all-MiniLM-L6-v2 in NumPy, the plain class).

The texts of every caller are batched into one forward pass; each caller keeps its own errors.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from models.runtime.backend import Backend, BackendChoice
from models.runtime.text_embedder import TextEmbedder
from visiongrid.settings import Settings

__all__ = ["TextEmbedderDeployment"]


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class TextEmbedderDeployment(BatchedModel):
    """The text embedder as a Ray Serve deployment: the texts of every caller are batched into one
    forward pass (continuous batching (``deployments/batching.py``)), each caller keeping its own errors."""

    def __init__(self, settings: Settings) -> None:
        # all-MiniLM-L6-v2 in NumPy (no ONNX export ships offline): CPU on every machine, ~3 ms a text
        self.backend = BackendChoice(Backend.CPU, "numpy", "NumPy BERT: runs on CPU everywhere")
        self.embedder = TextEmbedder()
        self._embeds = self.batcher(
            self.embed_batch, max_batch_size=settings.model_max_batch_size, wait_s=settings.model_batch_wait_s
        )

    async def embed_batch(self, batches: list[list[str]]) -> list[npt.NDArray[np.float32] | Exception]:
        self.count_batch(len(batches))
        # BLAS releases the GIL; running the pass off the event loop lets the next batch gather.
        return await asyncio.to_thread(self.embedder.embed_each, batches)

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One caller's texts → ``float32 [N, 384]`` unit vectors (``[]`` → ``[0, 384]``)."""
        return item_or_raise(await self._embeds.submit(texts))

    def dim(self) -> int:
        return self.embedder.dim
