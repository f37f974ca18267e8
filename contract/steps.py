"""``steps[]``: a discriminated union on ``model``, each step with typed ``parameters`` and ``when``.

One definition serves video tasks, image batches and the synchronous vision endpoints, so a
request gets the same field names in its errors (``steps[1].when.class_is[0]``) wherever it was
sent, and OpenAPI shows every step's parameters. Class names are checked against the COCO-80
names and aliases here; turning them into ids is :mod:`pipelines.step_specs`' job.

Numbers are strict: ``true`` is not a confidence, ``"0.5"`` is not a number, ``NaN`` is not a
threshold. Cross-step rules (``detect`` first, each model once, ``feature`` after a step that
makes targets, ``when`` only where there are targets to choose) are checked on the whole list.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StrictStr, model_validator

from contract.common import Strict
from contract.errors import PlanError
from models.coco import UnknownClassError, class_ids_for

__all__ = [
    "FRAME_CAPABLE_STEPS",
    "KNOWN_STEP_MODELS",
    "DescribeParameters",
    "DescribeStep",
    "DetectParameters",
    "DetectStep",
    "FaceParameters",
    "FaceStep",
    "FeatureParameters",
    "FeatureStep",
    "OcrParameters",
    "OcrStep",
    "Step",
    "StepList",
    "When",
    "step_as_written",
]

#: Step models this build runs, in the order the docs list them.
KNOWN_STEP_MODELS: Final[tuple[str, ...]] = ("detect", "ocr", "feature", "face", "describe")
#: Steps that work on the whole frame, creating targets, when no detect step precedes them.
FRAME_CAPABLE_STEPS: Final[frozenset[str]] = frozenset({"ocr", "face"})
_TARGET_MAKERS: Final[frozenset[str]] = frozenset({"detect", "ocr", "face"})

INT64_MAX: Final[int] = 2**63 - 1
UnitInterval = Annotated[float, Field(strict=True, ge=0, le=1)]
NonNegative = Annotated[float, Field(strict=True, ge=0)]


def _class_name(name: str) -> str:
    if not name.strip():
        raise ValueError("must be a non-empty class name")
    try:
        class_ids_for(name)
    except UnknownClassError as exc:
        raise ValueError(str(exc)) from None
    return name


def _class_list(value: Any) -> Any:
    """``detect.classes`` is judged as a whole (its errors name ``parameters.classes``)."""
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValueError("must be a non-empty list of class names")
    if not all(isinstance(name, str) and name.strip() for name in value):
        raise ValueError("every class name must be a non-empty string")
    for name in value:
        _class_name(name)
    return list(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def _track_ids(value: Any) -> Any:
    if not isinstance(value, list) or not value or not all(_is_id(t) for t in value):
        raise ValueError("must be a non-empty list of track ids (integers >= 0)")
    return value


ClassName = Annotated[StrictStr, AfterValidator(_class_name)]
ClassNames = Annotated[list[ClassName], Field(min_length=1, description="COCO-80 names or aliases ('vehicle')")]


class When(Strict):
    """Which targets a step works on; the others pass through unchanged. Bounds are inclusive;
    sizes are in source pixels."""

    class_is: ClassNames | None = None
    class_not: ClassNames | None = None
    min_confidence: UnitInterval | None = None
    max_confidence: UnitInterval | None = None
    min_width: NonNegative | None = None
    min_height: NonNegative | None = None
    track_is: Annotated[list[int], BeforeValidator(_track_ids)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError(f"must set at least one of {list(cls.model_fields)} (leave it out to match every target)")
        return data

    @model_validator(mode="after")
    def _bounds_ordered(self) -> When:
        low, high = self.min_confidence, self.max_confidence
        if low is not None and high is not None and low > high:
            raise PlanError("max_confidence", f"must be >= min_confidence ({low}), got {high}")
        return self


class DetectParameters(Strict):
    classes: Annotated[list[str], BeforeValidator(_class_list)] | None = Field(
        None, description="COCO-80 names or aliases; default every class"
    )
    min_confidence: UnitInterval | None = Field(None, description="score floor (default 0.3)")
    model: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = Field(
        None, description="a registered detector (GET /v1/vision/models)"
    )


class OcrParameters(Strict):
    min_confidence: UnitInterval = Field(0.5, description="text lines read below this score are dropped")


class FeatureParameters(Strict):
    include_vector: StrictBool = Field(False, description="the full embedding in each chunk (default: a digest)")
    collection: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        None, description="a vector collection id: every track's mean embedding is indexed there at the end"
    )


class FaceParameters(Strict):
    min_confidence: UnitInterval | None = Field(None, description="face score floor (default: the configured one)")
    include_vector: StrictBool = Field(False, description="each face's descriptor in the chunks")


class DescribeParameters(Strict):
    segment_frames: Annotated[StrictInt, Field(ge=1, le=10_000)] = Field(
        1, description="one description per this many processed frames"
    )


class _Step(Strict):
    when: When | None = Field(None, description="which targets the step works on (default: all)")

    @model_validator(mode="before")
    @classmethod
    def _null_parameters(cls, data: Any) -> Any:
        """``"parameters": null`` means the defaults, as it always has."""
        if isinstance(data, dict) and "parameters" in data and data["parameters"] is None:
            return {key: value for key, value in data.items() if key != "parameters"}
        return data


class DetectStep(_Step):
    """Finds the targets later steps work on; filter with ``parameters`` (not ``when``)."""

    model: Literal["detect"]
    parameters: DetectParameters = Field(default_factory=DetectParameters)


class OcrStep(_Step):
    """Reads text: in each target's crop after ``detect``, else lines of the whole frame as targets."""

    model: Literal["ocr"]
    parameters: OcrParameters = Field(default_factory=OcrParameters)


class FeatureStep(_Step):
    """An appearance embedding per target (needs a step before it that makes targets)."""

    model: Literal["feature"]
    parameters: FeatureParameters = Field(default_factory=FeatureParameters)


class FaceStep(_Step):
    """Faces with descriptors: in each target's crop after ``detect``, else on the whole frame."""

    model: Literal["face"]
    parameters: FaceParameters = Field(default_factory=FaceParameters)


class DescribeStep(_Step):
    """A description of the frame (or a segment of frames); ``when`` picks the targets it mentions."""

    model: Literal["describe"]
    parameters: DescribeParameters = Field(default_factory=DescribeParameters)


Step = Annotated[DetectStep | OcrStep | FeatureStep | FaceStep | DescribeStep, Field(discriminator="model")]


def check_order(steps: list[Any]) -> list[Any]:
    """The rules across steps; errors name ``[i].model`` / ``[i].when`` relative to the list."""
    seen: set[str] = set()
    for index, step in enumerate(steps):
        name = step.model
        if name in seen:
            raise PlanError(f"[{index}].model", f"{name!r} may appear only once")
        if name == "detect" and seen:
            raise PlanError(
                f"[{index}].model", "'detect' must be the first step: it creates the targets later steps use"
            )
        on_frame = name in FRAME_CAPABLE_STEPS and "detect" not in seen
        if step.when is not None and name == "detect":
            raise PlanError(
                f"[{index}].when", "detect creates the targets: filter with parameters.classes/min_confidence"
            )
        if step.when is not None and on_frame:
            raise PlanError(
                f"[{index}].when",
                f"{name!r} runs on the whole frame here (no detect step before it); when chooses targets",
            )
        if name == "feature" and not seen & _TARGET_MAKERS:
            raise PlanError(f"[{index}].model", "'feature' embeds targets: put a detect, ocr or face step before it")
        seen.add(name)
    return steps


StepList = Annotated[list[Step], Field(min_length=1), AfterValidator(check_order)]


def step_as_written(step: Step) -> dict[str, Any]:
    """A validated step as the client wrote it: what is stored and what ``?include=request`` echoes."""
    when = step.when.model_dump(exclude_unset=True) if step.when is not None else None
    return {"model": step.model, "parameters": step.parameters.model_dump(exclude_unset=True), "when": when}
