"""The one module that talks to Chroma: named vector *spaces* (one Chroma collection each) over HTTP.

Why it is built this way:

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
* Input is checked before Chroma sees it: finite vectors, ids and documents that are valid Unicode,
  metadata of storable scalars (:func:`contract.filters.check_metadata`: finite, within int64), filters
  typed by :mod:`contract.filters` and translated by :mod:`store.chroma_where`; Chroma answers 500 for
  some of these, which would read as an outage.
* Connection, timeouts and error translation: :mod:`store.chroma_client`.
* Recovery: nothing is cached that a restart invalidates. The httpx pool drops dead connections by itself;
  a cached collection handle whose id the server no longer knows (dropped and re-created elsewhere, or
  another data dir) is refetched once by name.
* Scores: ``Hit.score`` is "higher is better" and equals the cosine similarity of unit vectors in every
  metric (:func:`store.vector_types.score_from_distance`).

The error and result types live in :mod:`store.vector_types` and the filter language in
:mod:`contract.filters`; their names are re-exported here for existing importers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import numpy as np
import numpy.typing as npt

from contract.filters import FilterError, Where, validate_where
from store.chroma_client import ChromaConnection
from store.chroma_where import conditions_to_where, to_chroma
from store.vector_checks import checked_documents, checked_ids, checked_matrix, checked_metadatas
from store.vector_types import (
    METRICS,
    DimensionMismatch,
    Hit,
    InvalidSpaceName,
    Item,
    Metric,
    SpaceExists,
    SpaceInfo,
    SpaceNotFound,
    VectorIndexError,
    VectorInputError,
    VectorStoreUnavailable,
    score_from_distance,
)

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
    "score_from_distance",
    "validate_where",
]

# Chroma 1.5.9: "3-512 characters from [a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9]".
_SPACE_NAME_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")

T = TypeVar("T")
WhereInput = Where | Mapping[str, Any] | None


class VectorIndex:
    """Named vector spaces in one Chroma server. Thread-safe; create one per process and keep it."""

    def __init__(self, settings: Settings) -> None:
        self._chroma = ChromaConnection(settings)
        self._url = self._chroma.url
        self._hnsw: dict[str, int] = {
            "ef_search": settings.chroma_hnsw_ef_search,
            "ef_construction": settings.chroma_hnsw_ef_construction,
            "max_neighbors": settings.chroma_hnsw_max_neighbors,
        }
        self._spaces: dict[str, tuple[Collection, SpaceInfo]] = {}
        self._translate = self._chroma.translate

    def _client(self) -> ClientAPI:
        return self._chroma.client()

    def ping(self) -> bool:
        """True if Chroma answers its heartbeat within the timeout (health checks)."""
        return self._chroma.ping()

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

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: npt.ArrayLike,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        documents: Sequence[str | None] | None = None,
    ) -> None:
        """Insert or replace items by id (idempotent). Large inputs are split into Chroma's max batch size.

        Everything is checked before the first batch is sent, so a refused input stores nothing."""
        ids = checked_ids(ids)
        _, info = self._space(name)
        matrix = checked_matrix(vectors, info.dim)
        metas = checked_metadatas(metadatas, len(ids))
        docs = checked_documents(documents)
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
        where: WhereInput = None,
        ids: Sequence[str] | None = None,
        include_vectors: bool = False,
    ) -> tuple[list[Item], int | None]:
        """One page of items (in Chroma's storage order) and the offset of the next page, None at the end."""
        if limit < 1 or offset < 0:
            raise VectorInputError("limit must be >= 1 and offset >= 0")
        chroma_where = to_chroma(where)
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

    def query(self, name: str, vector: npt.ArrayLike, *, top_k: int, where: WhereInput = None) -> list[Hit]:
        """The ``top_k`` nearest items to one vector, best first (approximate: HNSW)."""
        matrix = checked_matrix(vector, None)
        if len(matrix) != 1:
            raise VectorInputError("query takes one vector; use query_many for several")
        return self.query_many(name, matrix, top_k=top_k, where=where)[0]

    def query_many(self, name: str, vectors: npt.ArrayLike, *, top_k: int, where: WhereInput = None) -> list[list[Hit]]:
        """:meth:`query` for several vectors in one request."""
        if not isinstance(top_k, int) or not 1 <= top_k <= 10_000:
            raise VectorInputError(f"top_k must be an integer in 1..10000, got {top_k!r}")
        chroma_where = to_chroma(where)
        _, info = self._space(name)
        matrix = checked_matrix(vectors, info.dim)

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
