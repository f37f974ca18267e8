"""Executable step specs: the contract's validated ``steps[]`` with class names resolved to ids.

Validation is the contract's (:mod:`contract.steps`): one definition for video tasks, image batches
and the synchronous vision endpoints, with the same field names in errors wherever a request was sent.
What is left here is what a runner needs and a client never sees: class ids for ``when`` masks, the
request's own words for each id (``labels``), and where each step runs — ``ocr`` and ``face`` work on
each target's crop when a ``detect`` step comes before them, and on the whole frame otherwise, where
each text line / face they find becomes a target of its own (class ``text`` / ``face``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter, ValidationError

import contract.steps as contract
from contract.common import plan_error
from contract.errors import PlanError
from contract.steps import FRAME_CAPABLE_STEPS, KNOWN_STEP_MODELS, StepList
from kernels.detections import Detections
from models.coco import class_ids_for, resolve_classes

__all__ = [
    "KNOWN_STEP_MODELS",
    "DescribeParams",
    "DetectParams",
    "FaceParams",
    "FeatureParams",
    "OcrParams",
    "PlanError",
    "StepPlan",
    "StepSpec",
    "When",
    "parse_steps",
    "plan_steps",
]

StepModel = Literal["detect", "ocr", "feature", "face", "describe"]
_STEPS: TypeAdapter[list[contract.Step]] = TypeAdapter(StepList)
_WHEN: TypeAdapter[contract.When | None] = TypeAdapter(contract.When | None)


# ---------------------------------------------------------------------------------------------- when


@dataclass(frozen=True)
class When:
    """Which targets a step works on; the others pass through unchanged.

    ``class_is`` / ``class_not`` take class names or aliases ("vehicle"), like ``detect.classes``;
    confidence bounds are inclusive; ``min_width`` / ``min_height`` are in source pixels (an OCR step
    on a 12-px-tall box reads nothing anyway); ``track_is`` picks tracked targets by id.
    """

    class_ids: frozenset[int] | None = None
    excluded_ids: frozenset[int] | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    min_width: float | None = None
    min_height: float | None = None
    track_ids: frozenset[int] | None = None

    @classmethod
    def parse(cls, raw: object, field: str) -> When | None:
        """Validate ``raw`` with the contract's ``When`` (errors name ``field``) and resolve it."""
        try:
            spec = _WHEN.validate_python(raw)
        except ValidationError as exc:
            raise plan_error(exc, field) from None
        return cls.of(spec)

    @classmethod
    def of(cls, spec: contract.When | None) -> When | None:
        """The executable filter of a validated ``when`` (class names resolved to ids)."""
        if spec is None:
            return None
        return cls(
            class_ids=_ids(spec.class_is),
            excluded_ids=_ids(spec.class_not),
            min_confidence=spec.min_confidence,
            max_confidence=spec.max_confidence,
            min_width=spec.min_width,
            min_height=spec.min_height,
            track_ids=frozenset(spec.track_is) if spec.track_is is not None else None,
        )

    def mask(self, detections: Detections) -> npt.NDArray[np.bool_]:
        """Rows of ``detections`` this filter selects."""
        keep = np.ones(len(detections), dtype=bool)
        if self.class_ids is not None:
            keep &= np.isin(detections.class_id, list(self.class_ids))
        if self.excluded_ids is not None:
            keep &= ~np.isin(detections.class_id, list(self.excluded_ids))
        if self.min_confidence is not None:
            keep &= detections.confidence >= np.float32(self.min_confidence)
        if self.max_confidence is not None:
            keep &= detections.confidence <= np.float32(self.max_confidence)
        if self.min_width is not None:
            keep &= (detections.xyxy[:, 2] - detections.xyxy[:, 0]) >= self.min_width
        if self.min_height is not None:
            keep &= (detections.xyxy[:, 3] - detections.xyxy[:, 1]) >= self.min_height
        if self.track_ids is not None:
            keep &= np.isin(detections.track_id, list(self.track_ids))
        return keep


def _ids(names: list[str] | None) -> frozenset[int] | None:
    if names is None:
        return None
    return frozenset(class_id for name in names for class_id in class_ids_for(name))


# ---------------------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class DetectParams:
    """``detect``: which classes (names/aliases → ids, reported with the request's own word), a score
    floor, and which registered detector (``None``: the configured default)."""

    classes: tuple[str, ...] | None = None
    labels: dict[int, str] | None = None
    min_confidence: float | None = None
    model: str | None = None

    @property
    def class_filter(self) -> tuple[int, ...] | None:
        return tuple(sorted(self.labels)) if self.labels is not None else None


@dataclass(frozen=True)
class OcrParams:
    """``ocr``: text lines read below ``min_confidence`` are dropped."""

    min_confidence: float = 0.5


@dataclass(frozen=True)
class FeatureParams:
    """``feature``: ``include_vector`` puts the full embedding in each chunk (off: a digest only);
    ``collection`` (a vector collection id) indexes every track's mean embedding there at the end."""

    include_vector: bool = False
    collection: str | None = None


@dataclass(frozen=True)
class FaceParams:
    """``face``: a score floor (``None``: the configured one) and whether descriptors go into chunks."""

    min_confidence: float | None = None
    include_vector: bool = False


@dataclass(frozen=True)
class DescribeParams:
    """``describe``: one description per ``segment_frames`` processed frames (1: every frame)."""

    segment_frames: int = 1


StepParams = DetectParams | OcrParams | FeatureParams | FaceParams | DescribeParams


@dataclass(frozen=True)
class StepSpec:
    """One validated step. ``on_frame``: runs on the whole frame (no detect step before it)."""

    index: int
    model: StepModel
    params: StepParams
    when: When | None
    on_frame: bool

    def select(self, detections: Detections) -> npt.NDArray[np.bool_]:
        """Rows this step works on (every row without ``when``)."""
        if self.when is None:
            return np.ones(len(detections), dtype=bool)
        return self.when.mask(detections)


@dataclass(frozen=True)
class StepPlan:
    """The ordered steps of one request plus what the tracker and chunk builder need from them."""

    steps: tuple[StepSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.model for step in self.steps)

    def get(self, model: str) -> StepSpec | None:
        return next((step for step in self.steps if step.model == model), None)

    @property
    def detect(self) -> DetectParams | None:
        step = self.get("detect")
        return step.params if step is not None and isinstance(step.params, DetectParams) else None

    @property
    def labels(self) -> dict[int, str] | None:
        """Class ids the request named → the words it used (``None``: report COCO names)."""
        return self.detect.labels if self.detect is not None else None

    @property
    def min_confidence(self) -> float | None:
        return self.detect.min_confidence if self.detect is not None else None

    @property
    def collection(self) -> str | None:
        """The vector collection the feature step indexes tracks into, if any."""
        step = self.get("feature")
        return step.params.collection if step is not None and isinstance(step.params, FeatureParams) else None

    def include_vector(self, model: str) -> bool:
        step = self.get(model)
        return bool(step is not None and getattr(step.params, "include_vector", False))


def _params(step: contract.Step) -> StepParams:
    """The executable parameters of a validated step."""
    if isinstance(step, contract.DetectStep):
        given = step.parameters
        labels = resolve_classes(given.classes) if given.classes is not None else None
        classes = tuple(given.classes) if given.classes is not None else None
        return DetectParams(classes, labels, given.min_confidence, given.model)
    if isinstance(step, contract.OcrStep):
        return OcrParams(step.parameters.min_confidence)
    if isinstance(step, contract.FeatureStep):
        return FeatureParams(step.parameters.include_vector, step.parameters.collection)
    if isinstance(step, contract.FaceStep):
        return FaceParams(step.parameters.min_confidence, step.parameters.include_vector)
    return DescribeParams(step.parameters.segment_frames)


def plan_steps(steps: Sequence[contract.Step]) -> StepPlan:
    """The executable plan of steps the contract has validated (order rules included)."""
    specs: list[StepSpec] = []
    for index, step in enumerate(steps):
        on_frame = step.model in FRAME_CAPABLE_STEPS and not any(spec.model == "detect" for spec in specs)
        specs.append(StepSpec(index, step.model, _params(step), When.of(step.when), on_frame))
    return StepPlan(tuple(specs))


def parse_steps(raw: object, field: str = "steps") -> StepPlan:
    """Validate raw ``steps[]`` with the contract; raises :class:`PlanError` naming the exact field."""
    try:
        steps = _STEPS.validate_python(raw)
    except ValidationError as exc:
        raise plan_error(exc, field) from None
    return plan_steps(steps)
