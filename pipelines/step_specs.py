"""Parse ``steps[]`` (models, parameters, ``when`` filters) into validated, immutable step specs.

One parser serves the video tasks, the image batch and the synchronous vision endpoints, so a request
gets the same field names in its errors (``steps[1].when.class_is``) wherever it was sent. Parsing is
pure: no settings, no models, no I/O; names of registered detectors and providers are checked by the
callers that know them.

Where a step runs is decided here, once: ``ocr`` and ``face`` work on each target's crop when a
``detect`` step comes before them, and on the whole frame otherwise, where each text line / face they
find becomes a target of its own (class ``text`` / ``face``). ``feature`` needs targets; ``describe``
describes the frame (or a segment of frames) and its ``when`` chooses which targets it mentions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from models.coco import UnknownClassError, class_ids_for, resolve_classes

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
]

StepModel = Literal["detect", "ocr", "feature", "face", "describe"]
#: Step models this build runs, in the order the docs list them.
KNOWN_STEP_MODELS: Final[tuple[str, ...]] = ("detect", "ocr", "feature", "face", "describe")
#: Steps that can work on the whole frame and create targets when no detect step precedes them.
_FRAME_CAPABLE: Final[frozenset[str]] = frozenset({"ocr", "face"})
_WHEN_KEYS: Final[tuple[str, ...]] = (
    "class_is",
    "class_not",
    "min_confidence",
    "max_confidence",
    "min_width",
    "min_height",
    "track_is",
)


class PlanError(ValueError):
    """A request that cannot be executed; ``field`` is the JSON path of the offending value.

    The field uses the request's own path syntax (``input[0].sampling.value``, ``steps[1].model``) so the
    API can return it verbatim and a client can point at the exact input that was wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def is_number(value: object) -> TypeGuard[int | float]:
    """Real, finite numbers only: ``True`` is not a confidence and NaN is not a threshold."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def mapping(value: object, field: str, *, optional: bool = False) -> Mapping[str, Any] | None:
    """``value`` as an object, or a :class:`PlanError` naming ``field``."""
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise PlanError(field, f"must be an object, got {type(value).__name__}")
    return value


def _unknown_keys(spec: Mapping[str, Any], allowed: Sequence[str], field: str) -> None:
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise PlanError(f"{field}.{unknown[0]}", f"unknown field; allowed: {list(allowed)}")


def _unit_interval(value: object, field: str) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise PlanError(field, f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def _non_negative(value: object, field: str) -> float | None:
    if value is None:
        return None
    if not is_number(value) or float(value) < 0:
        raise PlanError(field, f"must be a number >= 0, got {value!r}")
    return float(value)


def _bool(value: object, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PlanError(field, f"must be true or false, got {value!r}")
    return value


def _class_names(value: object, field: str) -> tuple[tuple[str, ...], dict[int, str]]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise PlanError(field, "must be a non-empty list of class names")
    if not all(isinstance(name, str) and name.strip() for name in value):
        raise PlanError(field, "every class name must be a non-empty string")
    try:
        labels = resolve_classes(value)
    except UnknownClassError as exc:
        raise PlanError(field, str(exc)) from exc
    assert labels is not None
    return tuple(value), labels


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
        spec = mapping(raw, field, optional=True)
        if spec is None:
            return None
        _unknown_keys(spec, _WHEN_KEYS, field)
        if not spec:
            raise PlanError(field, f"must set at least one of {list(_WHEN_KEYS)} (leave it out to match every target)")
        low = _unit_interval(spec.get("min_confidence"), f"{field}.min_confidence")
        high = _unit_interval(spec.get("max_confidence"), f"{field}.max_confidence")
        if low is not None and high is not None and low > high:
            raise PlanError(f"{field}.max_confidence", f"must be >= min_confidence ({low}), got {high}")
        tracks = spec.get("track_is")
        track_ids: frozenset[int] | None = None
        if tracks is not None:
            if not isinstance(tracks, list) or not tracks or not all(_is_int(t) and t >= 0 for t in tracks):
                raise PlanError(f"{field}.track_is", "must be a non-empty list of track ids (integers >= 0)")
            track_ids = frozenset(int(t) for t in tracks)
        return cls(
            class_ids=_ids(spec.get("class_is"), f"{field}.class_is"),
            excluded_ids=_ids(spec.get("class_not"), f"{field}.class_not"),
            min_confidence=low,
            max_confidence=high,
            min_width=_non_negative(spec.get("min_width"), f"{field}.min_width"),
            min_height=_non_negative(spec.get("min_height"), f"{field}.min_height"),
            track_ids=track_ids,
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


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _ids(value: object, field: str) -> frozenset[int] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise PlanError(field, "must be a non-empty list of class names")
    ids: set[int] = set()
    for position, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            raise PlanError(f"{field}[{position}]", "must be a non-empty class name")
        try:
            ids.update(class_ids_for(name))
        except UnknownClassError as exc:
            raise PlanError(f"{field}[{position}]", str(exc)) from exc
    return frozenset(ids)


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

    @classmethod
    def parse(cls, params: Mapping[str, Any], field: str) -> DetectParams:
        _unknown_keys(params, ("classes", "min_confidence", "model"), field)
        classes, labels = (None, None)
        if params.get("classes") is not None:
            classes, labels = _class_names(params["classes"], f"{field}.classes")
        model = params.get("model")
        if model is not None and (not isinstance(model, str) or not model):
            raise PlanError(f"{field}.model", "must be the name of a registered detector")
        return cls(classes, labels, _unit_interval(params.get("min_confidence"), f"{field}.min_confidence"), model)


@dataclass(frozen=True)
class OcrParams:
    """``ocr``: text lines read below ``min_confidence`` are dropped."""

    min_confidence: float = 0.5

    @classmethod
    def parse(cls, params: Mapping[str, Any], field: str) -> OcrParams:
        _unknown_keys(params, ("min_confidence",), field)
        floor = _unit_interval(params.get("min_confidence"), f"{field}.min_confidence")
        return cls() if floor is None else cls(floor)


@dataclass(frozen=True)
class FeatureParams:
    """``feature``: ``include_vector`` puts the full embedding in each chunk (off: a digest only);
    ``collection`` (a vector collection id) indexes every track's mean embedding there at the end."""

    include_vector: bool = False
    collection: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any], field: str) -> FeatureParams:
        _unknown_keys(params, ("include_vector", "collection"), field)
        collection = params.get("collection")
        if collection is not None and (not isinstance(collection, str) or not collection or len(collection) > 64):
            raise PlanError(f"{field}.collection", "must be a vector collection id")
        return cls(_bool(params.get("include_vector"), f"{field}.include_vector", False), collection)


@dataclass(frozen=True)
class FaceParams:
    """``face``: a score floor (``None``: the configured one) and whether descriptors go into chunks."""

    min_confidence: float | None = None
    include_vector: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, Any], field: str) -> FaceParams:
        _unknown_keys(params, ("min_confidence", "include_vector"), field)
        return cls(
            _unit_interval(params.get("min_confidence"), f"{field}.min_confidence"),
            _bool(params.get("include_vector"), f"{field}.include_vector", False),
        )


@dataclass(frozen=True)
class DescribeParams:
    """``describe``: one description per ``segment_frames`` processed frames (1: every frame)."""

    segment_frames: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, Any], field: str) -> DescribeParams:
        _unknown_keys(params, ("segment_frames",), field)
        segment = params.get("segment_frames", 1)
        if not _is_int(segment) or not 1 <= segment <= 10_000:
            raise PlanError(f"{field}.segment_frames", f"must be an integer between 1 and 10000, got {segment!r}")
        return cls(segment)


StepParams = DetectParams | OcrParams | FeatureParams | FaceParams | DescribeParams
_PARSERS: Final[dict[str, Any]] = {
    "detect": DetectParams,
    "ocr": OcrParams,
    "feature": FeatureParams,
    "face": FaceParams,
    "describe": DescribeParams,
}


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


def parse_steps(raw: object, field: str = "steps") -> StepPlan:
    """Validate ``steps[]``; raises :class:`PlanError` naming the exact field."""
    if not isinstance(raw, list) or not raw:
        raise PlanError(field, "must be a non-empty list")
    specs: list[StepSpec] = []
    seen: set[str] = set()
    for index, step_raw in enumerate(raw):
        at = f"{field}[{index}]"
        step = mapping(step_raw, at)
        assert step is not None
        _unknown_keys(step, ("model", "parameters", "when"), at)
        name = step.get("model")
        if name not in KNOWN_STEP_MODELS:
            raise PlanError(f"{at}.model", f"unknown step model {name!r}; known models: {list(KNOWN_STEP_MODELS)}")
        if name in seen:
            raise PlanError(f"{at}.model", f"{name!r} may appear only once")
        if name == "detect" and specs:
            raise PlanError(f"{at}.model", "'detect' must be the first step: it creates the targets later steps use")
        params_raw = mapping(step.get("parameters"), f"{at}.parameters", optional=True) or {}
        params = _PARSERS[name].parse(params_raw, f"{at}.parameters")
        on_frame = name in _FRAME_CAPABLE and "detect" not in seen
        when = When.parse(step.get("when"), f"{at}.when")
        if when is not None and name == "detect":
            raise PlanError(f"{at}.when", "detect creates the targets: filter with parameters.classes/min_confidence")
        if when is not None and on_frame:
            raise PlanError(
                f"{at}.when", f"{name!r} runs on the whole frame here (no detect step before it); when chooses targets"
            )
        if name == "feature" and not seen & {"detect", "ocr", "face"}:
            raise PlanError(f"{at}.model", "'feature' embeds targets: put a detect, ocr or face step before it")
        seen.add(name)
        specs.append(StepSpec(index=index, model=name, params=params, when=when, on_frame=on_frame))
    return StepPlan(tuple(specs))
