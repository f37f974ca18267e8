"""What every model deployment shares about ``@serve.batch``: its settings and its batch counter.

Each model deployment batches calls from every task with ``@serve.batch`` and keeps per-item errors
(an item's exception comes back in its slot). The batch size and wait are settings, applied per
replica; the counter of model calls per batch size is how tests assert that concurrent tasks really
share model calls (a counter, not a timing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence, Sized
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["BatchedModel", "item_or_raise", "split_joint_call"]

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


def split_joint_call(
    items: Sequence[Any],
    validate: Callable[[Any], Sized],
    run: Callable[[list[Any]], npt.NDArray[np.float32]],
    dim: int,
) -> list[npt.NDArray[np.float32] | Exception]:
    """One model call for several callers' inputs, each getting its own rows back.

    Each item is one caller's list of inputs (crops, texts); ``validate`` returns it checked (or raises:
    that caller alone gets the exception). The valid items' inputs are concatenated into ONE ``run``
    returning ``[total, dim]``; each caller gets its slice (an empty list → ``[0, dim]``). If the model
    itself fails, every caller of this call gets that error.
    """
    results: list[npt.NDArray[np.float32] | Exception] = []
    good: list[tuple[int, Sized]] = []
    for slot, item in enumerate(items):
        try:
            good.append((slot, validate(item)))
            results.append(np.zeros((0, dim), dtype=np.float32))
        except Exception as error:
            results.append(error)
    joint = [entry for _, checked in good for entry in checked]  # type: ignore[attr-defined]
    if not joint:
        return results
    try:
        vectors = run(joint)
    except Exception as error:  # the model itself failed: every item of this call shares it
        for slot, _ in good:
            results[slot] = error
        return results
    start = 0
    for slot, checked in good:
        results[slot] = vectors[start : start + len(checked)]
        start += len(checked)
    return results
