"""Checks of what the vector index is asked to store or search, before Chroma sees any of it.

Chroma answers some bad input with a 500 (an integer beyond int64, a lone surrogate in a string), which
would read as an outage; and a batch refused half-way would leave half of it stored. So every id,
vector, metadata value and document is checked here first, and a refusal is a
:class:`VectorInputError` naming the offending position (``metadatas[3].year``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.filters import MetadataError, check_metadata, text_problem
from store.vector_types import DimensionMismatch, VectorInputError


def checked_matrix(vectors: object, dim: int | None) -> npt.NDArray[np.float32]:
    """``vectors`` as a finite float32 ``[N, dim]`` matrix (one vector may be given as ``[dim]``)."""
    try:
        with np.errstate(over="ignore"):  # what overflows float32 becomes infinity, refused below
            matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise VectorInputError(f"vectors must be numbers: {exc}") from exc
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise VectorInputError(f"vectors must be a non-empty 2-d array, got shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise DimensionMismatch(dim, int(matrix.shape[1]))
    if not np.isfinite(matrix).all():  # also what overflowed float32 on the way in (1e39)
        raise VectorInputError("vectors must be finite (no NaN or infinity)")
    return matrix


def checked_ids(ids: Sequence[str]) -> list[str]:
    checked = list(ids)
    if not checked or not all(isinstance(i, str) and i for i in checked):
        raise VectorInputError("ids must be a non-empty list of non-empty strings")
    if len(set(checked)) != len(checked):
        raise VectorInputError("ids must be unique within one upsert")
    for position, item_id in enumerate(checked):
        problem = text_problem(item_id)
        if problem is not None:
            raise VectorInputError(f"id {item_id!r} {problem}", f"ids[{position}]")
    return checked


def checked_metadatas(metadatas: Sequence[Mapping[str, Any] | None] | None, count: int) -> list[dict[str, Any] | None]:
    """Storable metadata (Chroma rejects an empty dict: None means "no metadata")."""
    if metadatas is None:
        return [None] * count
    try:
        return [check_metadata(m, f"metadatas[{i}]") if m else None for i, m in enumerate(metadatas)]
    except MetadataError as exc:
        raise VectorInputError(exc.message, exc.field) from None


def checked_documents(documents: Sequence[str | None] | None) -> list[str | None] | None:
    if documents is None:
        return None
    checked = list(documents)
    for position, document in enumerate(checked):
        problem = None if document is None else text_problem(document)
        if problem is not None:
            raise VectorInputError(f"the document {problem}", f"documents[{position}]")
    return checked
