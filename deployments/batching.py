"""What every model deployment shares about ``@serve.batch``: its settings and its batch counter.

Each model deployment batches calls from every task with ``@serve.batch`` and keeps per-item errors
(an item's exception comes back in its slot). The batch size and wait are settings, applied per
replica; the counter of model calls per batch size is how tests assert that concurrent tasks really
share model calls (a counter, not a timing). How one joint model call keeps callers' rows apart is
the plain classes' business (``models/runtime/joint.py``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeVar

__all__ = ["BatchedModel", "item_or_raise"]

T = TypeVar("T")


class BatchedModel:
    """Mixin of the model deployments: batch settings, a per-size call counter, ``batch_stats()``."""

    batch_sizes: Counter[int]

    def configure_batching(self, batched_method: Any, *, max_batch_size: int, wait_s: float) -> None:
        """Apply the settings to a ``@serve.batch`` method (its setters are invisible to type checkers)."""
        batched_method.set_max_batch_size(max_batch_size)
        batched_method.set_batch_wait_timeout_s(wait_s)
        self.batch_sizes = Counter()

    def count_batch(self, size: int) -> None:
        self.batch_sizes[size] += 1

    def batch_stats(self) -> dict[int, int]:
        """How many model calls ran at each batch size."""
        return dict(self.batch_sizes)


def item_or_raise(result: T | Exception) -> T:
    """One caller's slot of a batch: its result, or its own exception raised."""
    if isinstance(result, Exception):
        raise result
    return result
