"""One model call for several callers' inputs: how a batch keeps each caller's rows and errors apart.

The embedders' ``embed_each`` use it; the Serve deployments batch callers (``deployments/batching.py``) and hand
the batch here, so a bad item fails alone and a model failure fails the call's items together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["split_joint_call"]


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
