"""Vectors (contract: VisoWork ``/v1/vectors``, VideoVector's search fields): collections, indexing,
weighted multimodal search, and what each returns.

Metadata and filters are the contract's filter language (:mod:`contract.filters`): finite numbers,
int64 integers and valid Unicode only, so nothing stored can break a later read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from contract.common import RequestBody, Strict
from contract.filters import Conditions, Metadata, WhereField
from contract.vision import ImageIn

__all__ = [
    "Collection",
    "CollectionCreate",
    "CollectionList",
    "EmbeddingModel",
    "EmbeddingModelList",
    "IndexItem",
    "IndexRequest",
    "IndexResult",
    "ItemList",
    "SearchHit",
    "SearchRequest",
    "SearchResults",
    "Space",
    "StoredItem",
    "TrackRef",
]

SpaceName = Literal["text", "image", "face"]
Weight = Annotated[float, Field(strict=True, ge=0, le=1000)]
Vector = Annotated[list[Annotated[float, Field(strict=True)]], Field(min_length=1, max_length=4096)]


class CollectionCreate(RequestBody):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    model: StrictStr = Field("multimodal", description="bundle of spaces: multimodal (text+image), text, image, face")
    metric: Literal["cosine", "l2", "ip"] = "cosine"
    metadata: Metadata = Field(default_factory=dict)


class IndexItem(Strict):
    """One item: exactly one of ``text``, ``image`` or ``vector`` (+ ``space``); ``audio`` is refused."""

    id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    text: Annotated[StrictStr, Field(min_length=1, max_length=10_000)] | None = None
    image: ImageIn | None = None
    vector: Vector | None = None
    space: SpaceName | None = None
    audio: Any = Field(None, description="refused: no offline audio embedding model exists")
    metadata: Metadata = Field(default_factory=dict)


class IndexRequest(RequestBody):
    items: list[IndexItem] = Field(min_length=1)


class TrackRef(Strict):
    task_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    track_id: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]


class SearchRequest(RequestBody):
    """Any combination of a text query, an image (``image_data`` raw base64, ``image_url``,
    ``image_path`` or ``image``), a video ``track`` and a raw ``vector`` (+ ``space``)."""

    text_query: Annotated[StrictStr, Field(min_length=1, max_length=2000)] | None = None
    image_data: Annotated[StrictStr, Field(min_length=1)] | None = None
    image_url: Annotated[StrictStr, Field(min_length=1, max_length=4096)] | None = None
    image_path: Annotated[StrictStr, Field(min_length=1, max_length=1024)] | None = None
    image: ImageIn | None = None
    track: TrackRef | None = None
    vector: Vector | None = None
    space: SpaceName | None = None
    audio_data: Any = Field(None, description="refused: no offline audio embedding model exists")
    text_weight: Weight | None = None
    image_weight: Weight | None = None
    top_k: Annotated[StrictInt, Field(ge=1, le=2**31)] = 10
    where: WhereField = None
    conditions: Conditions = None


class Space(BaseModel):
    space: SpaceName
    model: str
    dim: int


class Collection(BaseModel):
    id: str
    object: Literal["vector.collection"] = "vector.collection"
    name: str
    model: str
    metric: str
    spaces: list[Space]
    metadata: dict[str, str | int | float | bool]
    created_at: str = Field(description="ISO-8601")


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Collection]


class IndexResult(BaseModel):
    object: Literal["vector.index_result"] = "vector.index_result"
    collection: str
    indexed: int
    vectors: dict[str, int] = Field(description="vectors written per space")


class StoredItem(BaseModel):
    id: str
    vector_id: str
    kind: str | None
    text: str | None
    metadata: dict[str, str | int | float | bool]


class ItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StoredItem]
    total: int
    next_cursor: str | None


class SearchHit(BaseModel):
    id: str
    score: float = Field(description="weighted fusion of the per-space similarities")
    scores: dict[str, float]
    kind: str | None
    text: str | None
    metadata: dict[str, str | int | float | bool]


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    collection: str
    data: list[SearchHit]


class EmbeddingModel(BaseModel):
    id: str
    object: Literal["embedding_model"] = "embedding_model"
    space: str
    modality: str
    dim: int
    description: str


class EmbeddingModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingModel]
    collection_models: dict[str, list[str]]
    text_to_image: str
    audio: str
