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
from api.errors import APIError, not_found
from api.schemas import CollectionCreate, ImageIn, IndexRequest, SearchRequest
from api.services import Services
from pipelines.chunks import EMBEDDINGS_KEY
from pipelines.step_specs import PlanError
from pipelines.vectors import BUNDLES, SPACES, ItemError, check_bundle
from store.collections import CollectionExistsError
from store.records import CollectionRecord
from store.vector_index import FilterError, VectorStoreUnavailable, conditions_to_where, validate_where

router = APIRouter(prefix="/v1/vectors", tags=["vectors"])

_AUDIO: Final[str] = "no offline audio embedding model exists in this build (none is available offline)"


def unwrap(error: BaseException) -> BaseException:
    """The original exception of a failed deployment call (Ray wraps it in a RayTaskError)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


async def call(services: Services, method: str, *args: Any) -> Any:
    """Call the vectors deployment; map its typed errors to HTTP."""
    handle = services.vectors
    if handle is None:
        raise APIError(503, "vectors_unavailable", "no vectors deployment is attached to this API process")
    try:
        return await getattr(handle, method).remote(*args)
    except Exception as exc:
        error = unwrap(exc)
        if isinstance(error, VectorStoreUnavailable):
            raise APIError(503, "vectors_unavailable", f"the vector store is unavailable: {error}") from None
        if isinstance(error, ItemError):
            status = 413 if error.code in ("media_too_large", "image_too_large") else 400
            raise APIError(status, error.code, error.message, error.field) from None
        raise


def _view(collection: CollectionRecord) -> dict[str, Any]:
    return {
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


async def _collection(services: Services, project: str, collection_id: str) -> CollectionRecord:
    record = await run_in_threadpool(services.collections_or_raise().get, project, collection_id)
    if record is None:
        raise not_found("collection", collection_id)
    return record


@router.get("/models")
async def models(_: ProjectDep) -> dict[str, Any]:
    """Embedding spaces (modality, dimension, what they are good for) and the collection models."""
    return {
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


@router.post("/collections", status_code=201)
async def create_collection(body: CollectionCreate, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    try:
        spaces = check_bundle(body.model)
    except PlanError as exc:
        raise APIError(400, "invalid_request", exc.message, exc.field) from None
    store = services.collections_or_raise()
    try:
        record = await run_in_threadpool(
            store.create, project, body.name, body.model, body.metric, list(spaces), dict(body.metadata)
        )
    except CollectionExistsError as exc:
        raise APIError(409, "collection_exists", str(exc), "name") from None
    try:
        await call(services, "create_spaces", record)
    except BaseException:
        await run_in_threadpool(store.delete, project, record.id)  # no half-made collection is left behind
        raise
    return _view(record)


@router.get("/collections")
async def list_collections(project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    records = await run_in_threadpool(services.collections_or_raise().list, project)
    return {"object": "list", "data": [_view(record) for record in records]}


@router.get("/collections/{collection_id}")
async def get_collection(collection_id: str, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    return _view(await _collection(services, project, collection_id))


@router.delete("/collections/{collection_id}", status_code=204)
async def delete_collection(collection_id: str, project: ProjectDep, services: ServicesDep) -> Response:
    """Drops the vectors first: if Chroma is down (503) the collection stays, nothing is orphaned."""
    record = await _collection(services, project, collection_id)
    await call(services, "drop_spaces", record)
    await run_in_threadpool(services.collections_or_raise().delete, project, collection_id)
    return Response(status_code=204)


@router.post("/collections/{collection_id}/index")
async def index_items(
    collection_id: str, body: IndexRequest, project: ProjectDep, services: ServicesDep
) -> dict[str, Any]:
    """Embed and store items, idempotent on ``id``; a bad item fails the batch (nothing stored) and
    is named by its field."""
    if len(body.items) > services.settings.max_index_items:
        raise APIError(400, "too_many_items", f"at most {services.settings.max_index_items} items", "items")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, item in enumerate(body.items):
        field = f"items[{position}]"
        if item.audio is not None:
            raise APIError(400, "unsupported_modality", _AUDIO, f"{field}.audio")
        given = [name for name in ("text", "image", "vector") if getattr(item, name) is not None]
        if len(given) != 1:
            raise APIError(400, "invalid_request", f"give exactly one of text, image, vector (got {given})", field)
        if item.id in seen:
            raise APIError(400, "duplicate_id", f"item id {item.id!r} appears twice in this batch", f"{field}.id")
        seen.add(item.id)
        items.append(item.model_dump(exclude_none=True))
    record = await _collection(services, project, collection_id)
    result: dict[str, Any] = await call(services, "index_items", record, project, items)
    return {"object": "vector.index_result", "collection": record.id, **result}


@router.get("/collections/{collection_id}/items")
async def list_items(
    collection_id: str,
    project: ProjectDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    offset = 0
    if cursor is not None:
        if not cursor.isdigit():
            raise APIError(400, "invalid_request", "cursor must be a value returned as next_cursor", "cursor")
        offset = int(cursor)
    record = await _collection(services, project, collection_id)
    page: dict[str, Any] = await call(services, "list_items", record, limit, offset)
    next_offset = page.get("next_offset")
    return {
        "object": "list",
        "data": page["data"],
        "total": page["total"],
        "next_cursor": None if next_offset is None else str(next_offset),
    }


@router.delete("/collections/{collection_id}/items", status_code=204)
async def delete_items(
    collection_id: str,
    project: ProjectDep,
    services: ServicesDep,
    ids: Annotated[str, Query(min_length=1, description="comma-separated item ids")],
) -> Response:
    record = await _collection(services, project, collection_id)
    await call(services, "delete_items", record, [part for part in ids.split(",") if part])
    return Response(status_code=204)


async def _track_vector(services: Services, project: str, task_id: str, track_id: int) -> list[float]:
    task = await run_in_threadpool(services.tasks.get, project, task_id)
    if task is None:
        raise APIError(404, "not_found", f"task {task_id} not found", "track.task_id")
    embeddings = (task.result or {}).get(EMBEDDINGS_KEY) or {}
    vector = embeddings.get(str(track_id))
    if vector is None:
        raise APIError(
            400, "no_track_embedding", f"task {task_id} has no feature for track {track_id}", "track.track_id"
        )
    return list(vector)


def _where(body: SearchRequest) -> dict[str, Any] | None:
    try:
        clauses: list[dict[str, Any]] = []
        if body.where:
            validate_where(body.where)
            clauses.append(body.where)
        if body.conditions:
            clauses.append(conditions_to_where([condition.model_dump() for condition in body.conditions]))
    except FilterError as exc:
        raise APIError(400, "invalid_filter", exc.message, exc.field_path) from None
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@router.post("/collections/{collection_id}/search")
async def search(collection_id: str, body: SearchRequest, project: ProjectDep, services: ServicesDep) -> dict[str, Any]:
    """Nearest items by text, image, a video track or a raw vector; several → weighted fusion of the
    similarities (``text_weight`` for text, ``image_weight`` for image/face, 1 each by default)."""
    if body.audio_data is not None:
        raise APIError(400, "unsupported_modality", _AUDIO, "audio_data")
    if body.top_k > services.settings.max_top_k:
        raise APIError(400, "invalid_request", f"top_k must be at most {services.settings.max_top_k}", "top_k")
    images = [name for name in ("image_data", "image_url", "image_path", "image") if getattr(body, name) is not None]
    if len(images) > 1:
        raise APIError(400, "invalid_request", f"give at most one image (got {images})", images[1])
    if not images and body.text_query is None and body.track is None and body.vector is None:
        raise APIError(400, "invalid_request", "give text_query, an image, a track or a vector", "text_query")
    if (body.text_weight, body.image_weight) == (0, 0):
        raise APIError(400, "invalid_request", "the weights must not both be 0", "text_weight")
    image: ImageIn | None = body.image
    if body.image_data is not None:
        if body.image_data.lstrip()[:5].lower() == "data:":
            raise APIError(400, "invalid_base64", "image_data must be raw base64 (no data: URI prefix)", "image_data")
        image = ImageIn(base64=body.image_data)
    elif body.image_url is not None:
        image = ImageIn(url=body.image_url)
    elif body.image_path is not None:
        image = ImageIn(path=body.image_path)
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
            raise APIError(400, "model_mismatch", f"collection model {record.model!r} has no image space", "track")
        vector = await _track_vector(services, project, body.track.task_id, body.track.track_id)
        request["vectors"]["image"] = np.asarray(vector, dtype=np.float32)
    hits: list[dict[str, Any]] = await call(services, "search", record, project, request)
    return {"object": "list", "collection": record.id, "data": hits}
