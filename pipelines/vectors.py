"""Vector collections: what gets embedded into which space, and how a search is answered.

A collection is a *bundle* of embedding spaces (one Chroma collection each). Every space has one
offline model behind it, and an item is embedded into every space of its collection that its
modality reaches:

* ``text`` — all-MiniLM-L6-v2 (384-d): text items, the built-in description of every image, the
  described segments of videos. "Text → image" search works through those descriptions (no CLIP
  exists offline) and says so in ``/v1/vectors/models``.
* ``image`` — the appearance embedding of the vision steps (960-d, the detector's backbone): whole
  images, and the mean embedding of every video track (so an object found in one video is found in
  another).
* ``face`` — the FaceRes descriptor (1024-d): one vector per face found in an image.

Search embeds the query with the same models, queries each space it reaches and fuses the
similarities with the request's weights (:func:`fuse_hits`, typed :class:`FusedHit`). This module
is orchestration only; Chroma sits behind ``store.vector_index``, the models behind the
``VectorModels`` protocol, and the filter language in ``contract.filters``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from contract.errors import ErrorCode, PlanError, VisionGridError
from contract.filters import MetadataError, Scalar, Where, check_metadata
from kernels.detections import Detections
from kernels.vectors import l2_normalise
from pipelines.describe import describe_frame

__all__ = [
    "BUNDLES",
    "SPACES",
    "FusedHit",
    "ItemError",
    "SearchQuery",
    "SpaceInfo",
    "VectorModels",
    "VectorRecord",
    "checked_vector",
    "fuse",
    "fuse_hits",
    "item_metadata",
    "space_name",
    "unit_vector",
]

Space = Literal["text", "image", "face"]


@dataclass(frozen=True)
class SpaceInfo:
    """One embedding space: its model, dimension and what reaches it (for ``/v1/vectors/models``)."""

    name: Space
    model: str
    dim: int
    modality: str
    description: str


SPACES: Final[dict[str, SpaceInfo]] = {
    "text": SpaceInfo(
        "text",
        "all-minilm-l6-v2",
        384,
        "text",
        "sentence embedding (all-MiniLM-L6-v2, run offline with NumPy). Holds text items, the built-in "
        "description of every indexed image and described video segments, so a text query also finds "
        "images through what the models saw in them (objects, positions, text read, faces, colours); "
        "there is no CLIP-like joint text-image model offline",
    ),
    "image": SpaceInfo(
        "image",
        "appearance",
        960,
        "image",
        "appearance embedding of the vision `feature` step (the detector's MobileNetV3 backbone, stripe-"
        "pooled): whole images and video tracks (each track's mean embedding). Good for finding the same "
        "object or a similar-looking scene, not for semantics",
    ),
    "face": SpaceInfo(
        "face",
        "faceres",
        1024,
        "face",
        "face descriptor (FaceRes, eye-aligned crops): one vector per face found in an indexed image",
    ),
}

#: Collection models: the bundles of spaces a collection may be created with.
BUNDLES: Final[dict[str, tuple[str, ...]]] = {
    "multimodal": ("text", "image"),
    "text": ("text",),
    "image": ("image",),
    "face": ("face",),
}

#: Metadata keys VisionGrid writes itself (prefixed so they never collide with the caller's).
ITEM_KEY: Final[str] = "_item"
KIND_KEY: Final[str] = "_kind"


def space_name(collection_id: str, space: str) -> str:
    """The Chroma collection holding one space of a collection."""
    return f"vg_{collection_id}_{space}"


def unit_vector(vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """One vector, flattened to ``float32 [D]`` at unit length (:func:`kernels.vectors.l2_normalise`)."""
    return l2_normalise(np.asarray(vector, dtype=np.float32).reshape(-1))


class ItemError(VisionGridError, ValueError):
    """An item or query input that cannot be embedded; ``field`` names it (``items[3].image``)."""

    def __init__(self, field: str, code: ErrorCode | str, message: str) -> None:
        super().__init__(code, message, field)


def checked_vector(
    values: object, space: str | None, spaces: Sequence[str], field: str, space_field: str
) -> tuple[str, npt.NDArray[np.float32]]:
    """A raw vector given for ``space`` (default: the collection's first) as (space, unit vector).

    ItemError on ``space_field`` for a space the collection lacks, and on ``field`` for a wrong
    dimension or a non-finite component (JSON's ``1e400`` is infinity; NaN would poison every score).
    """
    chosen = space or spaces[0]
    if chosen not in spaces:
        raise ItemError(space_field, ErrorCode.MODEL_MISMATCH, f"collection has no {chosen!r} space ({list(spaces)})")
    try:
        with np.errstate(over="ignore"):
            vector = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ItemError(field, ErrorCode.INVALID_REQUEST, "must be a list of numbers") from None
    dim = SPACES[chosen].dim
    if vector.size != dim:
        message = f"the {chosen} space holds {dim}-d vectors, got {vector.size}"
        raise ItemError(field, ErrorCode.DIMENSION_MISMATCH, message)
    if not np.isfinite(vector).all():
        raise ItemError(field, ErrorCode.INVALID_REQUEST, "must be finite numbers (no NaN or infinity)")
    return chosen, unit_vector(vector)


def item_metadata(metadata: Mapping[str, object] | None, field: str) -> dict[str, Scalar]:
    """An item's metadata as it can be stored (finite numbers within int64, valid Unicode), else
    ItemError ``invalid_request`` naming ``<field>.<key>``."""
    try:
        return check_metadata(metadata or {}, field)
    except MetadataError as exc:
        raise ItemError(exc.field or field, ErrorCode.INVALID_REQUEST, exc.message) from None


class VectorModels(Protocol):
    """The embedding models a vectors service needs (deployment handles in the cluster)."""

    async def embed_texts(self, texts: list[str]) -> npt.NDArray[np.float32]: ...

    async def embed_image(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The appearance embedding of the whole image (un-normalised)."""
        ...

    async def find_faces(self, image: npt.NDArray[np.uint8]) -> Detections: ...

    async def scene(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Objects, text lines and faces of the whole image (for its description)."""
        ...


@dataclass(frozen=True)
class VectorRecord:
    """One vector to store in one space."""

    space: str
    id: str
    vector: npt.NDArray[np.float32]
    metadata: dict[str, Any]
    document: str | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: at most one vector per space, each with its weight."""

    vectors: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    top_k: int = 10
    where: Where | None = None


def describe_image(image: npt.NDArray[np.uint8], scene: Detections) -> str:
    height, width = image.shape[:2]
    return describe_frame(image, scene, labels=None, width=width, height=height)


async def image_records(
    models: VectorModels,
    item_id: str,
    image: npt.NDArray[np.uint8],
    spaces: Sequence[str],
    metadata: Mapping[str, Any],
) -> list[VectorRecord]:
    """An image's vectors for the spaces of its collection (description → text, appearance → image,
    each face → face)."""
    base = {**metadata, ITEM_KEY: item_id, KIND_KEY: "image"}
    records: list[VectorRecord] = []
    needs_scene = "text" in spaces or "image" in spaces
    scene = await models.scene(image) if needs_scene else None
    description = describe_image(image, scene) if scene is not None else None
    if "text" in spaces and description is not None:
        [text_vector] = await models.embed_texts([description])
        records.append(VectorRecord("text", item_id, unit_vector(text_vector), base, description))
    if "image" in spaces:
        records.append(VectorRecord("image", item_id, unit_vector(await models.embed_image(image)), base, description))
    if "face" in spaces:
        faces = await models.find_faces(image)
        descriptors = faces.data.get("descriptor")
        for index in range(len(faces)):
            assert descriptors is not None
            x1, y1, x2, y2 = (round(float(v), 1) for v in faces.xyxy[index])
            face_meta = {**base, "face_index": index, "face_box": f"{x1},{y1},{x2},{y2}"}
            face_meta["face_confidence"] = round(float(faces.confidence[index]), 4)
            records.append(VectorRecord("face", f"{item_id}#face{index}", unit_vector(descriptors[index]), face_meta))
    return records


async def text_records(
    models: VectorModels, item_id: str, text: str, spaces: Sequence[str], metadata: Mapping[str, Any]
) -> list[VectorRecord]:
    if "text" not in spaces:
        return []
    [vector] = await models.embed_texts([text])
    return [VectorRecord("text", item_id, unit_vector(vector), {**metadata, ITEM_KEY: item_id, KIND_KEY: "text"}, text)]


class ScoredHit(Protocol):
    """What one space's search returns per vector (``store.vector_types.Hit``)."""

    @property
    def id(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...
    @property
    def document(self) -> str | None: ...


@dataclass
class FusedHit:
    """One item of a fused search: its weighted score, the similarity per space, what it holds."""

    id: str
    score: float
    scores: dict[str, float]
    metadata: dict[str, Any]
    text: str | None
    kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The search response's hit object (``id, score, scores, metadata, text, kind``)."""
        return {
            "id": self.id,
            "score": self.score,
            "scores": self.scores,
            "metadata": self.metadata,
            "text": self.text,
            "kind": self.kind,
        }


def _add_hit(fused: dict[str, FusedHit], space: str, weight: float, hit: ScoredHit) -> None:
    metadata = dict(hit.metadata or {})
    item = str(metadata.get(ITEM_KEY, hit.id))
    entry = fused.setdefault(item, FusedHit(item, 0.0, {}, metadata, hit.document))
    best = entry.scores.get(space)
    if best is None or hit.score > best:  # several faces of one image: the best one counts
        if best is not None:
            entry.score -= weight * best
        entry.scores[space] = hit.score
        entry.score += weight * hit.score
    if entry.text is None and hit.document is not None:
        entry.text = hit.document


def fuse_hits(
    hits_by_space: Mapping[str, Sequence[ScoredHit]], weights: Mapping[str, float], top_k: int
) -> list[FusedHit]:
    """Weighted late fusion: an item's score is Σ weight × similarity over the spaces that found it
    (a space that did not return it contributes 0). Face hits count for their image item."""
    fused: dict[str, FusedHit] = {}
    for space, hits in hits_by_space.items():
        weight = weights.get(space, 0.0)
        for hit in hits:
            _add_hit(fused, space, weight, hit)
    ranked = sorted(fused.values(), key=lambda entry: (-entry.score, entry.id))[:top_k]
    for entry in ranked:
        entry.score = round(float(entry.score), 6)
        entry.scores = {space: round(float(score), 6) for space, score in entry.scores.items()}
        entry.kind = entry.metadata.get(KIND_KEY)
        entry.metadata = {key: value for key, value in entry.metadata.items() if not key.startswith("_")}
    return ranked


def fuse(hits_by_space: Mapping[str, Sequence[Any]], weights: Mapping[str, float], top_k: int) -> list[dict[str, Any]]:
    """:func:`fuse_hits` as the response's hit objects (the former dict API)."""
    return [entry.to_dict() for entry in fuse_hits(hits_by_space, weights, top_k)]


def check_bundle(model: str, field_name: str = "model") -> tuple[str, ...]:
    if model not in BUNDLES:
        if model == "audio":
            raise PlanError(field_name, "no offline audio embedding model exists in this build")
        raise PlanError(field_name, f"unknown collection model {model!r}; known: {sorted(BUNDLES)}")
    return BUNDLES[model]
