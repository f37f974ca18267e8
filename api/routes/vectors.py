"""Vectors: embedding spaces, per-project collections, indexing and weighted multimodal search.

Contracts: VisoWork's ``/v1/vectors`` table and VideoVector's search fields (``text_query``,
``image_data``, ``text_weight``, ``image_weight``, ``top_k``, ``conditions``). Collections belong to
a project (another project's id is a 404); the vectors live in Chroma behind the vectors deployment,
and when Chroma is down these endpoints answer 503 ``vectors_unavailable`` while the rest of the API
works.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import numpy as np
from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ProjectDep, ServicesDep
from api.errors import APIError, error_responses, not_found
from api.services import Services
from contract.errors import ErrorCode, VisionGridError
from contract.events import EventType
from contract.filters import Where, all_of, where_to_json
from contract.vectors import (
    Collection,
    CollectionCreate,
    CollectionList,
    EmbeddingModelList,
    IndexRequest,
    IndexResult,
    ItemList,
    SearchRequest,
    SearchResults,
)
from contract.vision import ImageIn
from pipelines.chunks import EMBEDDINGS_KEY
from pipelines.vectors import BUNDLES, SPACES, check_bundle
from store.collections import CollectionExistsError
from store.records import CollectionRecord

router = APIRouter(prefix="/v1/vectors", tags=["vectors"])

_MAX_OFFSET: Final[int] = 2**63 - 1
_AUDIO: Final[str] = "no offline audio embedding model exists in this build (none is available offline)"


def unwrap(error: BaseException) -> BaseException:
    """The original exception of a failed deployment call (Ray wraps it in a RayTaskError)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


async def call(services: Services, method: str, *args: Any) -> Any:
    """Call the vectors deployment; its typed errors (unwrapped from Ray's) are raised as they are."""
    handle = services.vectors
    if handle is None:
        raise APIError(ErrorCode.VECTORS_UNAVAILABLE, "no vectors deployment is attached to this API process")
    try:
        return await getattr(handle, method).remote(*args)
    except Exception as exc:
        error = unwrap(exc)
        if isinstance(error, VisionGridError):
            raise error from None
        raise


def _view(collection: CollectionRecord) -> Collection:
    return Collection.model_validate(
        {
            "id": collection.id,
            "object": "vector.collection",
            "name": collection.name,
            "model": collection.model,
            "metric": collection.metric,
            "spaces": [
                {"space": space, "model": SPACES[space].model, "dim": SPACES[space].dim} for space in collection.spaces
            ],
            "metadata": collection.metadata,
            "created_at": collection.created_at.isoformat(),
        }
    )


async def _collection(services: Services, project: str, collection_id: str) -> CollectionRecord:
    record = await run_in_threadpool(services.collections_or_raise().get, project, collection_id)
    if record is None:
        raise not_found("collection", collection_id)
    return record


@router.get("/models", response_model=EmbeddingModelList, responses=error_responses())
async def models(_: ProjectDep) -> EmbeddingModelList:
    """Embedding spaces (modality, dimension, what they are good for) and the collection models."""
    return EmbeddingModelList.model_validate(
        {
            "object": "list",
            "data": [
                {
                    "id": info.model,
                    "object": "embedding_model",
                    "space": info.name,
                    "modality": info.modality,
                    "dim": info.dim,
                    "description": info.description,
                }
                for info in SPACES.values()
            ],
            "collection_models": {name: list(spaces) for name, spaces in BUNDLES.items()},
            "text_to_image": "through the built-in descriptions of indexed images (text space); no joint "
            "text-image model exists offline",
            "audio": _AUDIO,
        }
    )


@router.post("/collections", status_code=201, response_model=Collection, responses=error_responses(409, 503))
async def create_collection(body: CollectionCreate, project: ProjectDep, services: ServicesDep) -> Collection:
    spaces = check_bundle(body.model)
    store = services.collections_or_raise()
    try:
        record = await run_in_threadpool(
            store.create, project, body.name, body.model, body.metric, list(spaces), dict(body.metadata)
        )
    except CollectionExistsError as exc:
        raise APIError(ErrorCode.COLLECTION_EXISTS, exc.message, "name") from None
    try:
        await call(services, "create_spaces", record)
    except BaseException:
        await run_in_threadpool(store.delete, project, record.id)  # no half-made collection is left behind
        raise
    return _view(record)


@router.get("/collections", response_model=CollectionList, responses=error_responses(503))
async def list_collections(project: ProjectDep, services: ServicesDep) -> CollectionList:
    records = await run_in_threadpool(services.collections_or_raise().list, project)
    return CollectionList(data=[_view(record) for record in records])


@router.get("/collections/{collection_id}", response_model=Collection, responses=error_responses(404, 503))
async def get_collection(collection_id: str, project: ProjectDep, services: ServicesDep) -> Collection:
    return _view(await _collection(services, project, collection_id))


@router.delete(
    "/collections/{collection_id}", status_code=204, response_class=Response, responses=error_responses(404, 503)
)
async def delete_collection(collection_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Drops the vectors first: if Chroma is down (503) the collection stays, nothing is orphaned."""
    record = await _collection(services, project, collection_id)
    await call(services, "drop_spaces", record)
    await run_in_threadpool(services.collections_or_raise().delete, project, collection_id)
    return Response(status_code=204)


@router.post("/collections/{collection_id}/index", response_model=IndexResult, responses=error_responses(404, 413, 503))
async def index_items(
    collection_id: str, body: IndexRequest, project: ProjectDep, services: ServicesDep
) -> IndexResult:
    """Embed and store items, idempotent on ``id``; a bad item fails the batch (nothing stored) and
    is named by its field."""
    if len(body.items) > services.settings.max_index_items:
        raise APIError(ErrorCode.TOO_MANY_ITEMS, f"at most {services.settings.max_index_items} items", "items")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, item in enumerate(body.items):
        field = f"items[{position}]"
        if item.audio is not None:
            raise APIError(ErrorCode.UNSUPPORTED_MODALITY, _AUDIO, f"{field}.audio")
        given = [name for name in ("text", "image", "vector") if getattr(item, name) is not None]
        if len(given) != 1:
            raise APIError(ErrorCode.INVALID_REQUEST, f"give exactly one of text, image, vector (got {given})", field)
        if item.id in seen:
            raise APIError(ErrorCode.DUPLICATE_ID, f"item id {item.id!r} appears twice in this batch", f"{field}.id")
        seen.add(item.id)
        items.append(item.model_dump(exclude_none=True))
    record = await _collection(services, project, collection_id)
    result: dict[str, Any] = await call(services, "index_items", record, project, items)
    if services.events is not None:
        payload = {"collection_id": record.id, "name": record.name, "items": len(items), **result}
        await run_in_threadpool(services.events.emit, project, EventType.COLLECTION_INDEXED, payload)
    return IndexResult(collection=record.id, **result)


@router.get("/collections/{collection_id}/items", response_model=ItemList, responses=error_responses(404, 503))
async def list_items(
    collection_id: str,
    project: ProjectDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=19, pattern="^[0-9]+$")] = None,
) -> ItemList:
    offset = int(cursor) if cursor is not None else 0
    if offset > _MAX_OFFSET:
        raise APIError(ErrorCode.INVALID_REQUEST, "cursor must be a value returned as next_cursor", "cursor")
    record = await _collection(services, project, collection_id)
    page: dict[str, Any] = await call(services, "list_items", record, limit, offset)
    next_offset = page.get("next_offset")
    cursor_out = None if next_offset is None else str(next_offset)
    return ItemList.model_validate({"data": page["data"], "total": page["total"], "next_cursor": cursor_out})


@router.delete(
    "/collections/{collection_id}/items", status_code=204, response_class=Response, responses=error_responses(404, 503)
)
async def delete_items(
    collection_id: str,
    project: ProjectDep,
    services: ServicesDep,
    ids: Annotated[str, Query(min_length=1, max_length=65_536, description="comma-separated item ids")],
) -> Response:
    record = await _collection(services, project, collection_id)
    await call(services, "delete_items", record, [part for part in ids.split(",") if part])
    return Response(status_code=204)


async def _track_vector(services: Services, project: str, task_id: str, track_id: int) -> list[float]:
    task = await run_in_threadpool(services.tasks.get, project, task_id)
    if task is None:
        raise not_found("task", task_id, "track.task_id")
    embeddings = (task.result or {}).get(EMBEDDINGS_KEY) or {}
    vector = embeddings.get(str(track_id))
    if vector is None:
        message = f"task {task_id} has no feature for track {track_id}"
        raise APIError(ErrorCode.NO_TRACK_EMBEDDING, message, "track.track_id")
    return list(vector)


def _where(body: SearchRequest) -> dict[str, Any] | None:
    """``where`` and ``conditions`` (already parsed by the contract), combined with AND."""
    clauses: list[Where | None] = [body.where, *(condition.to_where() for condition in body.conditions or ())]
    return where_to_json(all_of(clauses))


def _search_image(body: SearchRequest) -> ImageIn | None:
    images = [name for name in ("image_data", "image_url", "image_path", "image") if getattr(body, name) is not None]
    if len(images) > 1:
        raise APIError(ErrorCode.INVALID_REQUEST, f"give at most one image (got {images})", images[1])
    if body.image_data is not None:
        if body.image_data.lstrip()[:5].lower() == "data:":
            message = "image_data must be raw base64 (no data: URI prefix)"
            raise APIError(ErrorCode.INVALID_BASE64, message, "image_data")
        return ImageIn(base64=body.image_data)
    if body.image_url is not None:
        return ImageIn(url=body.image_url)
    if body.image_path is not None:
        return ImageIn(path=body.image_path)
    return body.image


def _check_search(body: SearchRequest, services: Services, image: ImageIn | None) -> None:
    if body.audio_data is not None:
        raise APIError(ErrorCode.UNSUPPORTED_MODALITY, _AUDIO, "audio_data")
    if body.top_k > services.settings.max_top_k:
        raise APIError(ErrorCode.INVALID_REQUEST, f"top_k must be at most {services.settings.max_top_k}", "top_k")
    if image is None and body.text_query is None and body.track is None and body.vector is None:
        raise APIError(ErrorCode.INVALID_REQUEST, "give text_query, an image, a track or a vector", "text_query")
    if (body.text_weight, body.image_weight) == (0, 0):
        raise APIError(ErrorCode.INVALID_REQUEST, "the weights must not both be 0", "text_weight")


@router.post(
    "/collections/{collection_id}/search", response_model=SearchResults, responses=error_responses(404, 413, 503)
)
async def search(collection_id: str, body: SearchRequest, project: ProjectDep, services: ServicesDep) -> SearchResults:
    """Nearest items by text, image, a video track or a raw vector; several → weighted fusion of the
    similarities (``text_weight`` for text, ``image_weight`` for image/face, 1 each by default)."""
    image = _search_image(body)
    _check_search(body, services, image)
    record = await _collection(services, project, collection_id)
    request: dict[str, Any] = {
        "text_query": body.text_query,
        "image": image.model_dump(exclude_none=True) if image is not None else None,
        "vector": body.vector,
        "space": body.space,
        "text_weight": body.text_weight,
        "image_weight": body.image_weight,
        "top_k": body.top_k,
        "where": _where(body),
        "vectors": {},
    }
    if body.track is not None:
        if "image" not in record.spaces:
            message = f"collection model {record.model!r} has no image space"
            raise APIError(ErrorCode.MODEL_MISMATCH, message, "track")
        vector = await _track_vector(services, project, body.track.task_id, body.track.track_id)
        request["vectors"]["image"] = np.asarray(vector, dtype=np.float32)
    hits: list[dict[str, Any]] = await call(services, "search", record, project, request)
    return SearchResults.model_validate({"collection": record.id, "data": hits})
