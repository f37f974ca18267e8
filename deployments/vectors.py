"""The vectors deployment: the only replica that talks to Chroma, and the one that embeds for it.

The ingress (``/v1/vectors/*``) and the task workers (a video's ``feature`` step indexing its tracks)
call it through handles; it embeds with the model deployments (text embedder, appearance embedder,
face, and detector + OCR for image descriptions) and reads and writes Chroma through
``store.vector_index``. When Chroma is down its calls raise ``VectorStoreUnavailable`` (the API
answers 503) and everything else keeps working; the index client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.detector_client import RemoteDetector
from deployments.step_models import ServeStepModels
from kernels.detections import Detections
from pipelines.image_analysis import scene_targets
from pipelines.images import ImageDecodeError, decode_image
from pipelines.vectors import (
    ITEM_KEY,
    KIND_KEY,
    SPACES,
    ItemError,
    VectorRecord,
    checked_vector,
    fuse,
    image_records,
    item_metadata,
    space_name,
    text_records,
    unit_vector,
)
from store import media
from store.records import CollectionRecord
from store.vector_index import Metric, VectorIndex
from visiongrid.settings import Settings

logger = logging.getLogger("visiongrid.vectors")


__all__ = ["ServeVectorModels", "VectorsDeployment", "VectorsService"]


class ServeVectorModels:
    """:class:`pipelines.vectors.VectorModels` over the model deployments."""

    def __init__(self, steps: ServeStepModels, text: DeploymentHandle, settings: Settings) -> None:
        self.steps = steps
        self.text = text
        self.settings = settings

    async def embed_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors: npt.NDArray[np.float32] = await self.text.embed.remote(texts)
        return vectors

    async def embed_image(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        height, width = image.shape[:2]
        whole = np.asarray([[0, 0, width, height]], dtype=np.float32)
        return np.asarray((await self.steps.embed(image, whole))[0], dtype=np.float32)

    async def find_faces(self, image: npt.NDArray[np.uint8]) -> Detections:
        return await self.steps.find_faces(image)

    async def scene(self, image: npt.NDArray[np.uint8]) -> Detections:
        return await scene_targets(image, self.steps, settings=self.settings)


class VectorsService:
    """Collections' spaces in Chroma, item indexing and search (plain class: testable without Serve)."""

    def __init__(self, settings: Settings, index: VectorIndex, models: Any) -> None:
        self.settings = settings
        self.index = index
        self.models = models

    # ------------------------------------------------------------------ spaces

    async def create_spaces(self, collection: CollectionRecord) -> None:
        for space in collection.spaces:
            await asyncio.to_thread(
                self.index.create_space,
                space_name(collection.id, space),
                dim=SPACES[space].dim,
                metric=cast(Metric, collection.metric),
            )

    async def drop_spaces(self, collection: CollectionRecord) -> None:
        for space in collection.spaces:
            await asyncio.to_thread(self.index.drop_space, space_name(collection.id, space))

    async def ping(self) -> bool:
        return bool(await asyncio.to_thread(self.index.ping))

    # ------------------------------------------------------------------ images

    def _load_image(self, source: Mapping[str, Any], project: str, field: str) -> npt.NDArray[np.uint8]:
        try:
            data = media.read_image_source(source, self.settings, project, field)
            return decode_image(data, max_pixels=self.settings.max_image_pixels)
        except media.MediaError as exc:
            raise ItemError(exc.field or field, exc.code, exc.message) from None
        except ImageDecodeError as exc:
            raise ItemError(field, exc.code, exc.message) from None

    # ------------------------------------------------------------------ index

    async def _item_records(
        self, collection: CollectionRecord, project: str, position: int, item: Mapping[str, Any]
    ) -> list[VectorRecord]:
        field = f"items[{position}]"
        item_id = str(item["id"])
        metadata = item_metadata(item.get("metadata"), f"{field}.metadata")
        spaces = collection.spaces
        if item.get("vector") is not None:
            space, vector = checked_vector(
                item["vector"], item.get("space"), spaces, f"{field}.vector", f"{field}.space"
            )
            return [VectorRecord(space, item_id, vector, {**metadata, ITEM_KEY: item_id, KIND_KEY: "vector"})]
        if item.get("text") is not None:
            if "text" not in spaces:
                raise ItemError(
                    f"{field}.text", "model_mismatch", f"collection model {collection.model!r} has no text space"
                )
            return await text_records(self.models, item_id, str(item["text"]), spaces, metadata)
        image = await asyncio.to_thread(self._load_image, item["image"], project, f"{field}.image")
        records = await image_records(self.models, item_id, image, spaces, metadata)
        if not records:
            raise ItemError(f"{field}.image", "nothing_to_index", "no face found in the image (a face collection)")
        return records

    async def index_items(
        self, collection: CollectionRecord, project: str, items: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Embed every item first (a bad one fails the whole batch, naming it), then upsert per space.

        Upserts are idempotent on item id; if a space fails half-way, what this batch already wrote
        is deleted again, so a failed batch stores nothing.
        """
        records: list[VectorRecord] = []
        for position, item in enumerate(items):
            records.extend(await self._item_records(collection, project, position, item))
        by_space: dict[str, list[VectorRecord]] = {}
        for record in records:
            by_space.setdefault(record.space, []).append(record)
        ids = [str(item["id"]) for item in items]
        written: list[str] = []
        try:
            for space, group in by_space.items():
                # a re-indexed image may have fewer faces now: its old face vectors go first
                if space == "face":
                    await asyncio.to_thread(self._delete_items, space_name(collection.id, space), ids)
                await asyncio.to_thread(
                    self.index.upsert,
                    space_name(collection.id, space),
                    [record.id for record in group],
                    np.stack([record.vector for record in group]),
                    [record.metadata for record in group],
                    [record.document for record in group],
                )
                written.append(space)
        except Exception:
            for space in written:
                try:
                    await asyncio.to_thread(self._delete_items, space_name(collection.id, space), ids)
                except Exception:
                    logger.warning("could not roll back %s of a failed index batch", space, exc_info=True)
            raise
        return {
            "indexed": len(items),
            "vectors": {space: len(group) for space, group in by_space.items()},
        }

    async def delete_items(self, collection: CollectionRecord, ids: Sequence[str]) -> None:
        for space in collection.spaces:
            await asyncio.to_thread(self._delete_items, space_name(collection.id, space), list(ids))

    def _delete_items(self, space: str, ids: Sequence[str]) -> None:
        """Every vector of these items in one space (an image has one vector per face in a face space)."""
        doomed = set(ids)
        offset: int | None = 0
        while offset is not None:
            page, offset = self.index.get(space, limit=1000, offset=offset, where={ITEM_KEY: {"$in": list(ids)}})
            doomed.update(item.id for item in page)
        self.index.delete(space, sorted(doomed))

    async def list_items(self, collection: CollectionRecord, *, limit: int, offset: int) -> dict[str, Any]:
        """Items of the collection's first space (every item has a vector there), in insertion order."""
        space = space_name(collection.id, collection.spaces[0])
        items, next_offset = await asyncio.to_thread(self.index.get, space, limit=limit, offset=offset)
        total = await asyncio.to_thread(self.index.count, space)
        data = []
        for item in items:
            metadata = dict(item.metadata or {})
            data.append(
                {
                    "id": metadata.get(ITEM_KEY, item.id),
                    "vector_id": item.id,
                    "kind": metadata.get(KIND_KEY),
                    "text": item.document,
                    "metadata": {key: value for key, value in metadata.items() if not key.startswith("_")},
                }
            )
        return {
            "data": data,
            "total": total,
            "next_offset": next_offset,
        }

    # ------------------------------------------------------------------ search

    async def query_vectors(
        self, collection: CollectionRecord, project: str, request: Mapping[str, Any]
    ) -> dict[str, npt.NDArray[np.float32]]:
        """One query vector per space the request reaches; raises ItemError naming the field."""
        spaces = collection.spaces
        vectors: dict[str, npt.NDArray[np.float32]] = {}
        if request.get("text_query") is not None:
            if "text" not in spaces:
                raise ItemError(
                    "text_query", "model_mismatch", f"collection model {collection.model!r} has no text space"
                )
            [vector] = await self.models.embed_texts([str(request["text_query"])])
            vectors["text"] = unit_vector(vector)
        if request.get("image") is not None:
            image = await asyncio.to_thread(self._load_image, request["image"], project, "image")
            if "image" in spaces:
                vectors["image"] = unit_vector(await self.models.embed_image(image))
            elif "face" in spaces:
                faces = await self.models.find_faces(image)
                if not len(faces):
                    raise ItemError("image", "no_face", "no face found in the query image")
                largest = int(np.argmax(faces.area))
                vectors["face"] = unit_vector(faces.data["descriptor"][largest])
            else:
                raise ItemError("image", "model_mismatch", f"collection model {collection.model!r} has no image space")
        if request.get("vector") is not None:
            space, vector = checked_vector(request["vector"], request.get("space"), spaces, "vector", "space")
            vectors[space] = vector
        return vectors

    async def search(
        self,
        collection: CollectionRecord,
        vectors: Mapping[str, npt.NDArray[np.float32]],
        weights: Mapping[str, float],
        *,
        top_k: int,
        where: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """Query each space (over-fetching when fusing several) and fuse the similarities."""
        fetch = top_k if len(vectors) == 1 else min(self.settings.max_top_k, max(top_k * 4, 40))
        hits = {}
        for space, vector in vectors.items():
            hits[space] = await asyncio.to_thread(
                self.index.query, space_name(collection.id, space), vector, top_k=fetch, where=where
            )
        return fuse(hits, weights, top_k)


def _weight(request: Mapping[str, Any], space: str) -> float:
    """The request's weight for a space: ``text_weight`` for text, ``image_weight`` for image and face."""
    key = "text_weight" if space == "text" else "image_weight"
    value = request.get(key)
    return 1.0 if value is None else float(value)


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=64)
class VectorsDeployment:
    """:class:`VectorsService` as a replica; Chroma errors surface as ``VectorStoreUnavailable``."""

    def __init__(
        self,
        settings: Settings,
        detector: DeploymentHandle,
        ocr: DeploymentHandle,
        embedder: DeploymentHandle,
        face: DeploymentHandle,
        text_embedder: DeploymentHandle,
    ) -> None:
        steps = ServeStepModels(detector=RemoteDetector(detector), ocr=ocr, embedder=embedder, face=face)
        self.service = VectorsService(
            settings, VectorIndex(settings), ServeVectorModels(steps, text_embedder, settings)
        )

    async def create_spaces(self, collection: CollectionRecord) -> None:
        await self.service.create_spaces(collection)

    async def drop_spaces(self, collection: CollectionRecord) -> None:
        await self.service.drop_spaces(collection)

    async def index_items(
        self, collection: CollectionRecord, project: str, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return await self.service.index_items(collection, project, items)

    async def delete_items(self, collection: CollectionRecord, ids: list[str]) -> None:
        await self.service.delete_items(collection, ids)

    async def list_items(self, collection: CollectionRecord, limit: int, offset: int) -> dict[str, Any]:
        return await self.service.list_items(collection, limit=limit, offset=offset)

    async def search(self, collection: CollectionRecord, project: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        """``request``: text_query / image / vector+space / vectors (space → vector, e.g. a video track),
        text_weight / image_weight (default 1 each), top_k, where (Chroma style, already validated)."""
        vectors = await self.service.query_vectors(collection, project, request)
        vectors.update({space: unit_vector(vector) for space, vector in (request.get("vectors") or {}).items()})
        weights = {space: _weight(request, space) for space in vectors}
        return await self.service.search(
            collection, vectors, weights, top_k=int(request.get("top_k", 10)), where=request.get("where")
        )

    async def ping(self) -> bool:
        return await self.service.ping()
