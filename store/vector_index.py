"""The one module that talks to Chroma: named vector *spaces* (one Chroma collection each) over HTTP.

Why it is built this way:

* HTTP client only (``chromadb-client``): the Chroma server runs as its own process from its own venv
  (:mod:`visiongrid.chroma_server`), so every API replica and worker shares one index.
* HNSW parameters come from settings and are set with Chroma 1.5's ``configuration={"hnsw": {...}}`` at
  creation (``space``, ``ef_search``, ``ef_construction``, ``max_neighbors``). 1.5.9 also maps the legacy
  ``metadata={"hnsw:space": ..., "hnsw:search_ef": ...}`` onto the same configuration, but the legacy keys are
  deprecated, so they are not used. Chroma's default ``ef_search`` is 100 (with ``max_neighbors`` 16,
  ``ef_construction`` 100): recall@10 on 100k vectors falls well below 0.95 with it (benchmarks/vectors.py).
* No embedding function, ever: vectors are always passed in, and collections are created *and fetched*
  with ``embedding_function=None`` so the client never instantiates its default ONNX model (which would
  try to download weights).
* Dimension: Chroma fixes it on the first add; we also store ``dim`` (and ``metric``) in the collection's
  metadata and check every upsert and query ourselves, so a mismatch is a :class:`DimensionMismatch` even
  on an empty space.
* Failing fast: the client's ``httpx`` session is created with ``timeout=None`` and Chroma does not retry
  transport errors; a refused connection fails in about a millisecond, but a hung server would block
  forever. The session timeout is therefore set to ``settings.chroma_timeout_s``; and since the
  ``HttpClient`` constructor itself calls the server (tenant/database validation, with no timeout), the
  client is created lazily after a heartbeat probe bounded by the same timeout. Every transport error
  (refused, reset, timeout) and any 5xx not produced by Chroma becomes :class:`VectorStoreUnavailable`.
* Recovery: nothing is cached that a restart invalidates. The httpx pool drops dead connections by itself;
  a cached collection handle whose id the server no longer knows (dropped and re-created elsewhere, or
  another data dir) is refetched once by name.
* Scores: ``Hit.score`` is "higher is better" and equals the cosine similarity of unit vectors in every
  metric: cosine ``1 - d`` (d = 1 - cos), ip ``1 - d`` (Chroma's d = 1 - dot, so the score is the dot
  product), l2 ``1 - d / 2`` (Chroma's d is the *squared* distance, = 2 - 2 cos for unit vectors).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from visiongrid.chroma_server import chroma_answers

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from visiongrid.settings import Settings

__all__ = [
    "DimensionMismatch",
    "FilterError",
    "Hit",
    "InvalidSpaceName",
    "Item",
    "Metric",
    "SpaceExists",
    "SpaceInfo",
    "SpaceNotFound",
    "VectorIndex",
    "VectorIndexError",
    "VectorInputError",
    "VectorStoreUnavailable",
    "conditions_to_where",
    "validate_where",
]

Metric = Literal["cosine", "l2", "ip"]
METRICS: Final[tuple[str, ...]] = get_args(Metric)
# Chroma 1.5.9: "3-512 characters from [a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9]".
_SPACE_NAME_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_FIELD_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
MAX_IN_VALUES: Final[int] = 1000

T = TypeVar("T")


# --- errors ---------------------------------------------------------------------------------------------


class VectorIndexError(Exception):
    """Base class of everything this module raises."""


class VectorStoreUnavailable(VectorIndexError):  # noqa: N818 - names fixed by the API's error mapping
    """Chroma is down, unreachable or timed out (the API answers 503)."""


class SpaceNotFound(VectorIndexError, LookupError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, name: str) -> None:
        super().__init__(f"vector space {name!r} does not exist")
        self.name = name


class SpaceExists(VectorIndexError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(message or f"vector space {name!r} already exists")
        self.name = name


class InvalidSpaceName(VectorIndexError, ValueError):  # noqa: N818 - names fixed by the API's error mapping
    pass


class VectorInputError(VectorIndexError, ValueError):
    """Ids, vectors, metadata or arguments that cannot be stored or searched."""


class DimensionMismatch(VectorInputError):  # noqa: N818 - names fixed by the API's error mapping
    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"vector dimension mismatch: the space holds {expected}-d vectors, got {got}-d")
        self.expected = expected
        self.got = got


class FilterError(VectorIndexError, ValueError):
    """An invalid filter; ``field_path`` names the offending part, e.g. ``conditions[1].operator``."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path
        self.message = message


# --- results ----------------------------------------------------------------------------------------------


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
    if metric == "l2":
        return 1.0 - distance / 2.0
    return 1.0 - distance  # cosine: 1 - (1 - cos); ip: 1 - (1 - dot)


# --- filters ----------------------------------------------------------------------------------------------

_OPERATORS: Final[dict[str, str]] = {
    "equals": "$eq",
    "not_equals": "$ne",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
    "in": "$in",
    "not_in": "$nin",
}
_TYPE_OPERATORS: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({"equals", "not_equals", "in", "not_in"}),
    "number": frozenset(_OPERATORS),
    "boolean": frozenset({"equals", "not_equals", "in", "not_in"}),
}
_WHERE_OPERATORS: Final[frozenset[str]] = frozenset(_OPERATORS.values())
_CONDITION_KEYS: Final[frozenset[str]] = frozenset({"field", "operator", "value", "type"})


def _is_type(value: object, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    # number: int or float but not bool (a bool is an int in Python), finite
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_field(field: object, path: str) -> str:
    if not isinstance(field, str) or not _FIELD_RE.match(field):
        raise FilterError(path, "must be a metadata field name (letters, digits, _ . : -; at most 128 characters)")
    return field


def conditions_to_where(conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Translate the contract's ``[{field, operator, value, type}]`` (combined with AND) into a Chroma where.

    ``type`` (string | number | boolean, default: inferred from the value) must match the value, and the
    operator must suit the type (``gt``/``gte``/``lt``/``lte`` only on numbers; ``in``/``not_in`` take a
    non-empty list of that type). An empty list gives ``{}``, meaning no filter. Raises :class:`FilterError`
    with a path such as ``conditions[1].operator``.
    """
    if not isinstance(conditions, list | tuple):
        raise FilterError("conditions", "must be a list of conditions")
    clauses: list[dict[str, Any]] = []
    for index, condition in enumerate(conditions):
        path = f"conditions[{index}]"
        if not isinstance(condition, Mapping):
            raise FilterError(path, "must be an object with field, operator and value")
        unknown = sorted(set(condition) - _CONDITION_KEYS)
        if unknown:
            raise FilterError(f"{path}.{unknown[0]}", "unknown key (allowed: field, operator, value, type)")
        for key in ("field", "operator", "value"):
            if key not in condition:
                raise FilterError(f"{path}.{key}", "is required")
        field = _check_field(condition["field"], f"{path}.field")
        operator = condition["operator"]
        if operator not in _OPERATORS:
            raise FilterError(f"{path}.operator", f"must be one of {', '.join(_OPERATORS)}; got {operator!r}")
        value = condition["value"]
        listed = operator in ("in", "not_in")
        kind = condition.get("type")
        if kind is None:
            sample = value[0] if listed and isinstance(value, list) and value else value
            kind = "boolean" if isinstance(sample, bool) else "string" if isinstance(sample, str) else "number"
        if kind not in _TYPE_OPERATORS:
            raise FilterError(f"{path}.type", f"must be string, number or boolean; got {kind!r}")
        if operator not in _TYPE_OPERATORS[kind]:
            raise FilterError(f"{path}.operator", f"{operator} does not apply to a {kind}")
        if listed:
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise FilterError(f"{path}.value", f"{operator} needs a list of 1 to {MAX_IN_VALUES} values")
            for position, element in enumerate(value):
                if not _is_type(element, kind):
                    raise FilterError(f"{path}.value[{position}]", f"must be a {kind}; got {element!r}")
        elif not _is_type(value, kind):
            raise FilterError(f"{path}.value", f"must be a {kind}; got {value!r}")
        clauses.append({field: {_OPERATORS[operator]: list(value) if listed else value}})
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


def _scalar_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if _is_type(value, "number"):
        return "number"
    return None


def validate_where(where: object, path: str = "where", *, max_in: int | None = MAX_IN_VALUES) -> None:
    """Check a Chroma-style where passed straight through; raise :class:`FilterError` naming the bad part.

    Accepted: ``{field: scalar}``, ``{field: {"$op": operand}}`` with $eq $ne $gt $gte $lt $lte $in $nin,
    and ``{"$and" | "$or": [where, where, ...]}`` (at least two). One key per dict, as Chroma requires.
    ``max_in`` bounds the values of one $in / $nin (user input); None lifts it (internal lookups by id).
    """
    if not isinstance(where, dict):
        raise FilterError(path, "must be an object")
    if len(where) != 1:
        raise FilterError(path, "must have exactly one key (combine several with $and / $or)")
    ((key, value),) = where.items()
    if key in ("$and", "$or"):
        if not isinstance(value, list) or len(value) < 2:
            raise FilterError(f"{path}.{key}", "must be a list of at least two where expressions")
        for index, expression in enumerate(value):
            validate_where(expression, f"{path}.{key}[{index}]", max_in=max_in)
        return
    if not isinstance(key, str) or key.startswith("$"):
        raise FilterError(f"{path}.{key}", "unknown operator (allowed at this level: $and, $or, or a field name)")
    field_path = f"{path}.{key}"
    _check_field(key, field_path)
    if not isinstance(value, dict):
        if _scalar_kind(value) is None:
            raise FilterError(field_path, "must be a string, number, boolean or an operator expression")
        return
    if len(value) != 1:
        raise FilterError(field_path, "an operator expression has exactly one operator")
    ((operator, operand),) = value.items()
    op_path = f"{field_path}.{operator}"
    if operator not in _WHERE_OPERATORS:
        raise FilterError(op_path, f"unknown operator (allowed: {', '.join(sorted(_WHERE_OPERATORS))})")
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list) or not operand or (max_in is not None and len(operand) > max_in):
            bound = "" if max_in is None else f" of at most {max_in} values"
            raise FilterError(op_path, f"needs a non-empty list{bound}")
        kinds = {_scalar_kind(element) for element in operand}
        if None in kinds or len(kinds) != 1:
            raise FilterError(op_path, "values must all be strings, all numbers or all booleans")
    elif operator in ("$gt", "$gte", "$lt", "$lte"):
        if _scalar_kind(operand) != "number":
            raise FilterError(op_path, "compares numbers only")
    elif _scalar_kind(operand) is None:
        raise FilterError(op_path, "must be a string, number or boolean")


# --- the index --------------------------------------------------------------------------------------------


def _unavailable(exc: BaseException) -> VectorStoreUnavailable:
    return VectorStoreUnavailable(f"vector store unavailable: {type(exc).__name__}: {exc}")


class VectorIndex:
    """Named vector spaces in one Chroma server. Thread-safe; create one per process and keep it."""

    def __init__(self, settings: Settings) -> None:
        parts = urlsplit(settings.chroma_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"chroma_url must be http(s)://host:port, got {settings.chroma_url!r}")
        self._url = settings.chroma_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = parts.scheme == "https"
        self._timeout_s = settings.chroma_timeout_s
        self._hnsw: dict[str, int] = {
            "ef_search": settings.chroma_hnsw_ef_search,
            "ef_construction": settings.chroma_hnsw_ef_construction,
            "max_neighbors": settings.chroma_hnsw_max_neighbors,
        }
        self._lock = threading.Lock()
        self._client_: ClientAPI | None = None
        self._spaces: dict[str, tuple[Collection, SpaceInfo]] = {}

    # -- connection ---------------------------------------------------------------------------------------

    def _client(self) -> ClientAPI:
        client = self._client_
        if client is not None:
            return client
        with self._lock:
            if self._client_ is None:
                # The constructor calls the server with no timeout: probe first, bounded.
                if not chroma_answers(self._url, timeout=self._timeout_s):
                    raise VectorStoreUnavailable(f"vector store unavailable: no Chroma heartbeat at {self._url}")
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                try:
                    client = chromadb.HttpClient(
                        host=self._host,
                        port=self._port,
                        ssl=self._ssl,
                        settings=ChromaSettings(anonymized_telemetry=False),
                    )
                except (httpx.TransportError, OSError) as exc:
                    raise _unavailable(exc) from exc
                except ValueError as exc:  # "Could not connect to a Chroma server. Are you sure it is running?"
                    raise _unavailable(exc) from exc
                # chromadb 1.5.9 builds its httpx.Client with timeout=None (a hung server blocks forever).
                session = getattr(getattr(client, "_server", None), "_session", None)
                if isinstance(session, httpx.Client):
                    session.timeout = httpx.Timeout(self._timeout_s)
                self._client_ = client
            return self._client_

    @contextmanager
    def _translate(self) -> Iterator[None]:
        from chromadb.errors import (
            BatchSizeExceededError,
            ChromaError,
            DuplicateIDError,
            InternalError,
            InvalidArgumentError,
            InvalidDimensionException,
        )

        try:
            yield
        except (httpx.TransportError, ConnectionError) as exc:  # refused, reset, timed out
            raise _unavailable(exc) from exc
        except httpx.HTTPStatusError as exc:  # a non-Chroma error body, e.g. from a proxy in between
            if exc.response.status_code >= 500:
                raise _unavailable(exc) from exc
            raise VectorIndexError(f"Chroma answered {exc.response.status_code}: {exc}") from exc
        except InternalError as exc:  # a bug or corruption on the server, not an outage
            raise VectorIndexError(f"Chroma internal error: {exc}") from exc
        except (InvalidArgumentError, InvalidDimensionException, DuplicateIDError, BatchSizeExceededError) as exc:
            raise VectorInputError(str(exc)) from exc  # e.g. a dimension Chroma fixed on first add
        except ChromaError as exc:  # 1.5.9 sends some statuses (409 ...) as a bare "ChromaError"
            if exc.code() >= 500:
                raise _unavailable(exc) from exc
            raise VectorIndexError(f"{type(exc).__name__}: {exc}") from exc

    def ping(self) -> bool:
        """True if Chroma answers its heartbeat within the timeout (health checks)."""
        return chroma_answers(self._url, timeout=self._timeout_s)

    def max_batch_size(self) -> int:
        """Largest batch Chroma accepts in one call (5461 on 1.5.9); upserts are split to fit."""
        with self._translate():
            size = int(self._client().get_max_batch_size())
        return size if size > 0 else 1000

    # -- spaces -------------------------------------------------------------------------------------------

    @staticmethod
    def check_space_name(name: str) -> str:
        if not isinstance(name, str) or not _SPACE_NAME_RE.match(name):
            raise InvalidSpaceName(
                f"invalid vector space name {name!r}: 3-512 characters from [A-Za-z0-9._-], "
                "starting and ending with a letter or digit"
            )
        return name

    @staticmethod
    def _info(collection: Collection) -> SpaceInfo:
        metadata = collection.metadata or {}
        metric = metadata.get("metric")
        if metric not in METRICS:  # not created here: ask the configuration (which warns about a legacy EF)
            config = cast(Mapping[str, Any], collection.configuration or {})
            metric = (config.get("hnsw") or {}).get("space") or "l2"
        dim = metadata.get("dim")
        return SpaceInfo(collection.name, int(dim) if isinstance(dim, int) else None, cast(Metric, metric))

    def _fetch(self, name: str) -> tuple[Collection, SpaceInfo]:
        from chromadb.errors import NotFoundError

        with self._translate():
            try:
                collection = self._client().get_collection(name, embedding_function=None)
            except NotFoundError as exc:
                self._spaces.pop(name, None)
                raise SpaceNotFound(name) from exc
        entry = (collection, self._info(collection))
        self._spaces[name] = entry
        return entry

    def _space(self, name: str) -> tuple[Collection, SpaceInfo]:
        self.check_space_name(name)
        entry = self._spaces.get(name)
        return entry if entry is not None else self._fetch(name)

    def _on_space(self, name: str, work: Callable[[Collection, SpaceInfo], T]) -> T:
        """Run ``work`` on the space's collection; refetch once if the cached handle went stale."""
        from chromadb.errors import NotFoundError

        cached = name in self._spaces
        collection, info = self._space(name)
        with self._translate():
            try:
                return work(collection, info)
            except NotFoundError:
                if not cached:
                    self._spaces.pop(name, None)
                    raise SpaceNotFound(name) from None
        collection, info = self._fetch(name)  # the cached id was stale (dropped / re-created / other server)
        with self._translate():
            try:
                return work(collection, info)
            except NotFoundError:
                self._spaces.pop(name, None)
                raise SpaceNotFound(name) from None

    def create_space(self, name: str, *, dim: int, metric: Metric, exist_ok: bool = False) -> SpaceInfo:
        """Create a space for ``dim``-d vectors compared by ``metric``, with HNSW parameters from settings.

        If it exists: :class:`SpaceExists`, or with ``exist_ok`` the existing space when its dim and metric
        match (else :class:`SpaceExists` saying how it differs).
        """
        from chromadb.errors import ChromaError, UniqueConstraintError

        self.check_space_name(name)
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 65536:
            raise VectorInputError(f"dim must be an integer in 1..65536, got {dim!r}")
        if metric not in METRICS:
            raise VectorInputError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        configuration: dict[str, Any] = {"hnsw": {"space": metric, **self._hnsw}}
        with self._translate():
            try:
                collection = self._client().create_collection(
                    name,
                    configuration=cast(Any, configuration),
                    metadata={"dim": dim, "metric": metric},
                    embedding_function=None,
                )
            except ChromaError as exc:  # 1.5.9: 409 {"error": "ChromaError", "message": "... already exists"}
                if not isinstance(exc, UniqueConstraintError) and "already exists" not in str(exc):
                    raise
                if not exist_ok:
                    raise SpaceExists(name) from None
                collection = None
        if collection is None:
            _, existing = self._fetch(name)
            if existing.dim != dim or existing.metric != metric:
                raise SpaceExists(
                    name, f"vector space {name!r} exists with dim={existing.dim}, metric={existing.metric}"
                )
            return existing
        info = SpaceInfo(name, dim, metric)
        self._spaces[name] = (collection, info)
        return info

    def space(self, name: str) -> SpaceInfo:
        """The space's dim and metric (asks the server, so it also tells whether the space still exists)."""
        return self._fetch(self.check_space_name(name))[1]

    def set_ef_search(self, name: str, ef_search: int) -> None:
        """Change a space's HNSW search breadth (no rebuild).

        Chroma 1.5.9 stores the new value at once but a running server keeps using the loaded index's old
        ef_search until that index is loaded again (measured: recall unchanged until a server restart).
        New spaces get ``settings.chroma_hnsw_ef_search`` at creation, which takes effect immediately.
        """
        if not isinstance(ef_search, int) or ef_search < 1:
            raise VectorInputError(f"ef_search must be a positive integer, got {ef_search!r}")

        def work(collection: Collection, _: SpaceInfo) -> None:
            collection.modify(configuration=cast(Any, {"hnsw": {"ef_search": ef_search}}))

        self._on_space(name, work)

    def drop_space(self, name: str) -> None:
        """Delete a space and its vectors; a missing space is not an error."""
        from chromadb.errors import NotFoundError

        self.check_space_name(name)
        self._spaces.pop(name, None)
        with self._translate(), suppress(NotFoundError):
            self._client().delete_collection(name)

    # -- items --------------------------------------------------------------------------------------------

    @staticmethod
    def _matrix(vectors: object, dim: int | None) -> npt.NDArray[np.float32]:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise VectorInputError(f"vectors must be numbers: {exc}") from exc
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise VectorInputError(f"vectors must be a non-empty 2-d array, got shape {matrix.shape}")
        if dim is not None and matrix.shape[1] != dim:
            raise DimensionMismatch(dim, int(matrix.shape[1]))
        if not np.isfinite(matrix).all():
            raise VectorInputError("vectors must be finite (no NaN or infinity)")
        return matrix

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        documents: Sequence[str | None] | None = None,
    ) -> None:
        """Insert or replace items by id (idempotent). Large inputs are split into Chroma's max batch size."""
        ids = list(ids)
        if not ids or not all(isinstance(i, str) and i for i in ids):
            raise VectorInputError("ids must be a non-empty list of non-empty strings")
        if len(set(ids)) != len(ids):
            raise VectorInputError("ids must be unique within one upsert")
        _, info = self._space(name)
        matrix = self._matrix(vectors, info.dim)
        # Chroma rejects an empty metadata dict; None means "no metadata".
        metas = [dict(m) if m else None for m in metadatas] if metadatas is not None else [None] * len(ids)
        docs = list(documents) if documents is not None else None
        if len(matrix) != len(ids) or len(metas) != len(ids) or (docs is not None and len(docs) != len(ids)):
            raise VectorInputError("ids, vectors, metadatas and documents must have the same length")
        step = self.max_batch_size()

        def work(collection: Collection, _: SpaceInfo) -> None:
            for start in range(0, len(ids), step):
                end = start + step
                try:
                    collection.upsert(
                        ids=ids[start:end],
                        embeddings=matrix[start:end],
                        metadatas=cast(Any, metas[start:end]),
                        documents=cast(Any, docs[start:end] if docs is not None else None),
                    )
                except (ValueError, TypeError) as exc:  # client-side validation of metadata / documents
                    raise VectorInputError(str(exc)) from exc

        self._on_space(name, work)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete items by id; unknown ids are ignored."""
        ids = list(ids)
        if not ids:
            return

        step = self.max_batch_size()

        def work(collection: Collection, _: SpaceInfo) -> None:
            for start in range(0, len(ids), step):
                collection.delete(ids=ids[start : start + step])

        self._on_space(name, work)

    def count(self, name: str) -> int:
        return self._on_space(name, lambda collection, _: int(collection.count()))

    def get(
        self,
        name: str,
        *,
        limit: int,
        offset: int = 0,
        where: Mapping[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        include_vectors: bool = False,
    ) -> tuple[list[Item], int | None]:
        """One page of items (in Chroma's storage order) and the offset of the next page, None at the end."""
        if limit < 1 or offset < 0:
            raise VectorInputError("limit must be >= 1 and offset >= 0")
        chroma_where = self._where(where)
        include = ["metadatas", "documents", *(["embeddings"] if include_vectors else [])]

        def work(collection: Collection, _: SpaceInfo) -> Any:
            return collection.get(
                ids=list(ids) if ids is not None else None,
                where=chroma_where,
                limit=limit + 1,  # one more tells whether another page exists
                offset=offset,
                include=cast(Any, include),
            )

        result = self._on_space(name, work)
        found_ids: list[str] = list(result["ids"])
        metadatas = result.get("metadatas") or [None] * len(found_ids)
        documents = result.get("documents") or [None] * len(found_ids)
        embeddings = result.get("embeddings")
        items = [
            Item(
                id=found_ids[i],
                metadata=dict(metadatas[i] or {}),
                document=documents[i],
                vector=np.asarray(embeddings[i], dtype=np.float32) if embeddings is not None else None,
            )
            for i in range(min(limit, len(found_ids)))
        ]
        return items, (offset + limit if len(found_ids) > limit else None)

    @staticmethod
    def _where(where: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not where:
            return None
        validate_where(dict(where), max_in=None)  # the API validated user input with the bound already
        return dict(where)

    def query(
        self, name: str, vector: npt.ArrayLike, *, top_k: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """The ``top_k`` nearest items to one vector, best first (approximate: HNSW)."""
        matrix = self._matrix(vector, None)
        if len(matrix) != 1:
            raise VectorInputError("query takes one vector; use query_many for several")
        return self.query_many(name, matrix, top_k=top_k, where=where)[0]

    def query_many(
        self, name: str, vectors: npt.ArrayLike, *, top_k: int, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        """:meth:`query` for several vectors in one request."""
        if not isinstance(top_k, int) or not 1 <= top_k <= 10_000:
            raise VectorInputError(f"top_k must be an integer in 1..10000, got {top_k!r}")
        chroma_where = self._where(where)
        _, info = self._space(name)
        matrix = self._matrix(vectors, info.dim)

        def work(collection: Collection, _: SpaceInfo) -> Any:
            return collection.query(
                query_embeddings=matrix,
                n_results=top_k,
                where=chroma_where,
                include=cast(Any, ["distances", "metadatas", "documents"]),
            )

        result = self._on_space(name, work)
        hits: list[list[Hit]] = []
        for row, row_ids in enumerate(result["ids"]):
            distances = (result.get("distances") or [])[row]
            metadatas = (result.get("metadatas") or [[None] * len(row_ids)])[row]
            documents = (result.get("documents") or [[None] * len(row_ids)])[row]
            hits.append(
                [
                    Hit(
                        id=row_ids[i],
                        distance=float(distances[i]),
                        score=score_from_distance(info.metric, float(distances[i])),
                        metadata=dict(metadatas[i] or {}),
                        document=documents[i],
                    )
                    for i in range(len(row_ids))
                ]
            )
        return hits
