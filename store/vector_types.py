"""What the vector index returns and raises: spaces, hits, items, and its typed errors.

Every error is a :class:`contract.errors.VisionGridError` with its code, so the API and the task
runner report it without knowing Chroma: an outage is ``vectors_unavailable`` (503), bad input an
``invalid_request`` / ``dimension_mismatch`` (400), a missing space ``not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from contract.errors import ErrorCode, VisionGridError

Metric = Literal["cosine", "l2", "ip"]
METRICS: Final[tuple[str, ...]] = get_args(Metric)


# --- errors ---------------------------------------------------------------------------------------


class VectorIndexError(VisionGridError):
    """Base class of everything the index raises; by itself a fault on Chroma's side (500)."""

    def __init__(
        self, message: str, code: ErrorCode | str = ErrorCode.INTERNAL_ERROR, field: str | None = None
    ) -> None:
        super().__init__(code, message, field)


class VectorStoreUnavailable(VectorIndexError):  # noqa: N818 - names fixed by the API's error mapping
    """Chroma is down, unreachable or timed out (503 ``vectors_unavailable``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.VECTORS_UNAVAILABLE)


class SpaceNotFound(VectorIndexError, LookupError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, name: str) -> None:
        super().__init__(f"vector space {name!r} does not exist", ErrorCode.NOT_FOUND)
        self.name = name


class SpaceExists(VectorIndexError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(message or f"vector space {name!r} already exists", ErrorCode.COLLECTION_EXISTS)
        self.name = name


class InvalidSpaceName(VectorIndexError, ValueError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.INVALID_REQUEST)


class VectorInputError(VectorIndexError, ValueError):
    """Ids, vectors, metadata or arguments that cannot be stored or searched (400 ``invalid_request``)."""

    def __init__(
        self, message: str, field: str | None = None, code: ErrorCode | str = ErrorCode.INVALID_REQUEST
    ) -> None:
        super().__init__(message, code, field)


class DimensionMismatch(VectorInputError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, expected: int, got: int) -> None:
        message = f"vector dimension mismatch: the space holds {expected}-d vectors, got {got}-d"
        super().__init__(message, None, ErrorCode.DIMENSION_MISMATCH)
        self.expected = expected
        self.got = got


def unavailable(exc: BaseException) -> VectorStoreUnavailable:
    """The outage error for a transport failure (refused, reset, timed out, a proxy's 5xx)."""
    return VectorStoreUnavailable(f"vector store unavailable: {type(exc).__name__}: {exc}")


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceInfo:
    name: str
    dim: int | None  # None only for a collection not created by this module
    metric: Metric


@dataclass(frozen=True)
class Hit:
    id: str
    distance: float  # Chroma's distance in the space's metric (lower is closer)
    score: float  # higher is better; the cosine similarity for unit vectors in every metric
    metadata: dict[str, Any]
    document: str | None


@dataclass(frozen=True)
class Item:
    id: str
    metadata: dict[str, Any]
    document: str | None
    vector: npt.NDArray[np.float32] | None = None


def score_from_distance(metric: Metric, distance: float) -> float:
    """Higher is better, the cosine of unit vectors in every metric: cosine ``1 - d`` (d = 1 - cos),
    ip ``1 - d`` (Chroma's d = 1 - dot), l2 ``1 - d / 2`` (Chroma's d is squared: 2 - 2 cos)."""
    if metric == "l2":
        return 1.0 - distance / 2.0
    return 1.0 - distance  # cosine: 1 - (1 - cos); ip: 1 - (1 - dot)
