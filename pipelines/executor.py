"""Run a request's steps on one image: detect → (when) → ocr → (when) → feature → (when) → face.

The executor is the per-frame part of the DAG. It knows the step semantics (which targets a step
works on, where results attach) and nothing of how models run: it calls a :class:`StepModels`, which
is the Ray Serve deployment handles in the cluster (frames of every task batched together inside each
model deployment) and the plain in-process models in the bare loop and tests. Video tasks, the image
batch and the synchronous endpoints all go through :func:`run_steps`, so a photo sent to
``/v1/vision/detect`` and the same picture as a video frame give the same targets.

Results stay in the one value type: each step adds per-target columns to the frame's
:class:`~kernels.detections.Detections` (lists aligned with the rows, ``None`` where a step did not run
on that target), so the tracker carries them along and the chunk builder renders them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from contract.errors import ErrorCode, VisionGridError
from kernels.detections import Detections
from pipelines.step_specs import DetectParams, FaceParams, OcrParams, StepPlan, StepSpec

__all__ = [
    "DESCRIPTOR",
    "FACES",
    "FEATURE",
    "STEP_COLUMNS",
    "TEXT",
    "TEXT_CONFIDENCE",
    "TEXT_LINES",
    "StepFailedError",
    "StepModels",
    "crop",
    "run_steps",
    "with_columns",
]

#: Per-target columns the steps add (``Detections.data`` keys); each a list aligned with the rows.
TEXT: Final[str] = "text"  # str | None: the target's text (a line for a text target, the lines joined for a crop)
TEXT_CONFIDENCE: Final[str] = "text_confidence"  # float | None: mean recognition score of that text
TEXT_LINES: Final[str] = "text_lines"  # Detections | None: the lines read inside a target, frame pixels
FEATURE: Final[str] = "feature"  # float32 [D] | None: un-normalised appearance embedding
FACES: Final[str] = "faces"  # Detections | None: faces inside a target (with their descriptors), frame pixels
DESCRIPTOR: Final[str] = "descriptor"  # float32 [D] | None: the face descriptor of a face target
STEP_COLUMNS: Final[tuple[str, ...]] = (TEXT, TEXT_CONFIDENCE, TEXT_LINES, FEATURE, FACES, DESCRIPTOR)

Image = npt.NDArray[np.uint8]
StepTimer = Callable[[str, float], None]


class StepModels(Protocol):
    """The models a step plan calls. Each call is one image, so a model deployment batches calls
    from every frame and task together; crops are cut by the executor, in source resolution."""

    async def detect(
        self, image: Image, *, model: str | None, min_confidence: float, class_filter: tuple[int, ...] | None
    ) -> Detections: ...

    async def read_text(self, image: Image) -> Detections:
        """Text lines (``data["text"]``) in ``image`` pixels."""
        ...

    async def embed(self, image: Image, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Un-normalised appearance embeddings ``[N, D]`` of the boxes."""
        ...

    async def find_faces(self, image: Image) -> Detections:
        """Faces (``data["descriptor"]`` ``[F, D]``, L2-normalised) in ``image`` pixels."""
        ...


class StepFailedError(VisionGridError, RuntimeError):
    """A model call of one step failed on this image; ``step`` names it (``detect``, ``ocr``, ...).

    The code is stable: ``detector_error`` (it predates the other steps) or ``<step>_error``.
    """

    def __init__(self, step: str, cause: BaseException) -> None:
        code = ErrorCode.DETECTOR_ERROR if step == "detect" else f"{step}_error"
        super().__init__(code, f"{step} failed: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause


def with_columns(detections: Detections, **columns: list[Any]) -> Detections:
    """A copy with ``columns`` set; every step column missing from the result is filled with ``None``.

    Filling keeps all frames' targets column-compatible, so targets made by different steps merge and
    the tracker's row selection carries every column.
    """
    data = dict(detections.data)
    data.update(columns)
    for name in STEP_COLUMNS:
        data.setdefault(name, [None] * len(detections))
    return Detections(detections.xyxy, detections.confidence, detections.class_id, detections.track_id, data)


def _only_step_columns(detections: Detections) -> Detections:
    """The step columns only (a model's own extra columns dropped), each present (``None`` if unset)."""
    data = {name: detections.data.get(name, [None] * len(detections)) for name in STEP_COLUMNS}
    return Detections(detections.xyxy, detections.confidence, detections.class_id, detections.track_id, data)


def crop(image: Image, box: npt.NDArray[np.float32]) -> tuple[Image, tuple[int, int]]:
    """The pixels of ``box`` (clipped, at least 1×1) and the crop's top-left offset in the image."""
    height, width = image.shape[:2]
    x1 = int(np.clip(np.floor(box[0]), 0, max(width - 1, 0)))
    y1 = int(np.clip(np.floor(box[1]), 0, max(height - 1, 0)))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, height))
    return image[y1:y2, x1:x2], (x1, y1)


def _shifted(found: Detections, offset: tuple[int, int]) -> Detections:
    shift = np.asarray([offset[0], offset[1], offset[0], offset[1]], dtype=np.float32)
    return Detections(found.xyxy + shift, found.confidence, found.class_id, found.track_id, dict(found.data))


def _text_lines(found: Detections, floor: float) -> Detections:
    return found[found.confidence >= np.float32(floor)]


def _as_targets(found: Detections, columns: dict[str, list[Any]]) -> Detections:
    bare = Detections(found.xyxy, found.confidence, found.class_id)
    return with_columns(bare, **columns)


def _rows(step: StepSpec, targets: Detections, floor: float) -> npt.NDArray[np.intp]:
    """Targets a step works on: those its ``when`` selects, at or above the target floor."""
    return np.flatnonzero(step.select(targets) & (targets.confidence >= np.float32(floor)))


async def _ocr(models: StepModels, image: Image, targets: Detections, step: StepSpec, floor: float) -> Detections:
    assert isinstance(step.params, OcrParams)
    if step.on_frame:
        lines = _text_lines(await models.read_text(image), step.params.min_confidence)
        texts = list(lines.data.get("text", []))
        new = _as_targets(lines, {TEXT: texts, TEXT_CONFIDENCE: lines.confidence.tolist()})
        return Detections.merge([targets, new]) if len(targets) else new
    rows = _rows(step, targets, floor)
    crops = [crop(image, targets.xyxy[row]) for row in rows]
    found = await asyncio.gather(*(models.read_text(pixels) for pixels, _ in crops))
    text = list(targets.data[TEXT])
    confidence = list(targets.data[TEXT_CONFIDENCE])
    lines_column = list(targets.data[TEXT_LINES])
    for row, (_, offset), lines in zip(rows.tolist(), crops, found, strict=True):
        lines = _text_lines(lines, step.params.min_confidence)
        lines_column[row] = _shifted(lines, offset)
        words = [line for line in lines.data.get("text", []) if line]
        text[row] = " ".join(words) if words else None
        confidence[row] = float(lines.confidence.mean()) if words else None
    return with_columns(targets, **{TEXT: text, TEXT_CONFIDENCE: confidence, TEXT_LINES: lines_column})


async def _feature(models: StepModels, image: Image, targets: Detections, step: StepSpec, floor: float) -> Detections:
    rows = _rows(step, targets, floor)
    column = list(targets.data[FEATURE])
    if len(rows):
        vectors = await models.embed(image, targets.xyxy[rows])
        for row, vector in zip(rows.tolist(), vectors, strict=True):
            column[row] = np.asarray(vector, dtype=np.float32)
    return with_columns(targets, **{FEATURE: column})


def _face_floor(found: Detections, params: FaceParams) -> Detections:
    if params.min_confidence is None:
        return found
    return found[found.confidence >= np.float32(params.min_confidence)]


async def _faces(models: StepModels, image: Image, targets: Detections, step: StepSpec, floor: float) -> Detections:
    assert isinstance(step.params, FaceParams)
    if step.on_frame:
        faces = _face_floor(await models.find_faces(image), step.params)
        descriptors = faces.data.get(DESCRIPTOR)
        vectors = (
            [np.asarray(row, np.float32) for row in descriptors] if descriptors is not None else [None] * len(faces)
        )
        new = _as_targets(faces, {DESCRIPTOR: vectors})
        return Detections.merge([targets, new]) if len(targets) else new
    rows = _rows(step, targets, floor)
    crops = [crop(image, targets.xyxy[row]) for row in rows]
    found = await asyncio.gather(*(models.find_faces(pixels) for pixels, _ in crops))
    column = list(targets.data[FACES])
    for row, (_, offset), faces in zip(rows.tolist(), crops, found, strict=True):
        column[row] = _shifted(_face_floor(faces, step.params), offset)
    return with_columns(targets, **{FACES: column})


async def _detect(models: StepModels, image: Image, step: StepSpec, default_floor: float) -> Detections:
    assert isinstance(step.params, DetectParams)
    found = await models.detect(
        image,
        model=step.params.model,
        min_confidence=default_floor,
        class_filter=step.params.class_filter,
    )
    return _only_step_columns(found)


async def run_steps(
    image: Image,
    plan: StepPlan,
    models: StepModels,
    *,
    detect_floor: float,
    target_floor: float | None = None,
    timer: StepTimer | None = None,
) -> Detections:
    """Every step of ``plan`` but ``describe`` (a frame- or segment-level step the caller runs after
    tracking) on one RGB image; returns its targets with the steps' columns.

    A failing model call raises :class:`StepFailedError` naming the step. ``detect_floor`` is the score
    the detector keeps down to: the tracker's low threshold in a video (weak boxes may continue tracks),
    the request's ``min_confidence`` for a single image. ``target_floor`` (default: ``detect_floor``) is
    the score a target needs for ocr/feature/face to work on it: in a video, the weak boxes the tracker
    only uses to bridge a track are not worth a model call each (CenterNet returns 100 boxes per frame,
    most of them weak).
    """
    floor = detect_floor if target_floor is None else target_floor
    targets = with_columns(Detections.empty())
    for step in plan.steps:
        started = time.perf_counter()
        try:
            if step.model == "detect":
                targets = await _detect(models, image, step, detect_floor)
            elif step.model == "ocr":
                targets = await _ocr(models, image, targets, step, floor)
            elif step.model == "feature":
                targets = await _feature(models, image, targets, step, floor)
            elif step.model == "face":
                targets = await _faces(models, image, targets, step, floor)
            else:
                continue  # describe: after tracking, in the caller
        except Exception as exc:
            raise StepFailedError(step.model, exc) from exc
        if timer is not None:
            timer(step.model, time.perf_counter() - started)
    return targets


def feature_matrix(column: Sequence[Any]) -> npt.NDArray[np.float32] | None:
    """Stack a ``feature``/``descriptor`` column's present rows (``None`` if none are present)."""
    rows = [np.asarray(value, np.float32) for value in column if value is not None]
    return np.stack(rows) if rows else None
