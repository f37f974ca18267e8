"""How every model deployment batches: one model call at a time, and the calls that arrive while it
runs make up the next batch (continuous batching); per-item errors; a per-size batch counter.

Why not ``@serve.batch``: Ray Serve's batcher forms the next batch *before* it waits for the running
one to finish, so with no wait window every batch is whatever had arrived at that instant — measured
on 2 cores with 4 concurrent tasks (benchmarks/vision.py, 2026-12-02): 160 detector calls, all of
batch size 1. Here a batch is taken only when the model is free, so everything that queued meanwhile
goes in it (up to ``max_batch_size``); ``wait_s`` only makes a lone first call wait for company.
The counter of model calls per batch size is how tests assert that concurrent tasks really share
model calls (a counter, not a timing). How one joint model call keeps callers' rows apart is the
plain classes' business (``models/runtime/joint.py``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from models.runtime.backend import BackendChoice

__all__ = ["BatchedModel", "ContinuousBatcher", "item_or_raise"]

T = TypeVar("T")
R = TypeVar("R")


class ContinuousBatcher(Generic[T, R]):
    """Batches concurrent ``submit`` calls into ``run_batch`` calls, one at a time, on this event loop."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[list[R | Exception]]],
        *,
        max_batch_size: int,
        wait_s: float = 0.0,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._queue: deque[tuple[T, asyncio.Future[R | Exception]]] = deque()
        self._consumer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R | Exception:
        """This item's result, or its own exception (returned, not raised: see :func:`item_or_raise`)."""
        future: asyncio.Future[R | Exception] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.get_running_loop().create_task(self._consume())
        return await future

    async def _consume(self) -> None:
        while self._queue:
            if self.wait_s > 0 and len(self._queue) < self.max_batch_size:
                await asyncio.sleep(self.wait_s)  # a lone call on an idle model waits for company
            taken = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
            live = [(item, future) for item, future in taken if not future.done()]  # cancelled callers drop out
            if not live:
                continue
            try:
                results = await self._run_batch([item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"a batch of {len(live)} gave {len(results)} results")
            except Exception as error:  # the whole call failed: every caller in it gets the error
                results = [error] * len(live)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)


class BatchedModel:
    """Mixin of the model deployments: their batchers, a per-size call counter, ``batch_stats()``,
    and ``backend_info()`` (where this replica runs its model, chosen at start-up)."""

    batch_sizes: Counter[int]
    backend: BackendChoice

    def batcher(
        self, run_batch: Callable[[list[T]], Awaitable[list[R | Exception]]], *, max_batch_size: int, wait_s: float
    ) -> ContinuousBatcher[T, R]:
        """A batcher over ``run_batch`` (which should call :meth:`count_batch`) with the settings."""
        if not hasattr(self, "batch_sizes"):
            self.batch_sizes = Counter()
        return ContinuousBatcher(run_batch, max_batch_size=max_batch_size, wait_s=wait_s)

    def count_batch(self, size: int) -> None:
        self.batch_sizes[size] += 1

    async def backend_info(self) -> dict[str, str]:
        """``{"backend": "cpu" | "cuda", "runtime": ...}`` of this replica (``/v1/status``, task usage)."""
        return self.backend.as_usage()

    def batch_stats(self) -> dict[int, int]:
        """How many model calls ran at each batch size."""
        return dict(self.batch_sizes)


def item_or_raise(result: T | Exception) -> T:
    """One caller's slot of a batch: its result, or its own exception raised."""
    if isinstance(result, Exception):
        raise result
    return result
