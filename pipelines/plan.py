"""Turn a stored video request into a :class:`TaskPlan` the runner can execute.

The API validates requests at submit time, but the runner parses the stored JSON again here because
the database is a trust boundary in time: a request stored by an older API version, or edited by hand,
must fail the task with a named field (:class:`PlanError`) rather than crash a worker half-way through a
video. Parsing is pure (no settings, no I/O) so the API can call :meth:`TaskPlan.from_request` too and
report exactly the same field names a runner would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from models.coco import UnknownClassError, resolve_classes
from pipelines.decode import FrameRange, Sampling

__all__ = ["DEFAULT_MAX_FRAMES", "DEFAULT_SAMPLING_FPS", "KNOWN_STEP_MODELS", "PlanError", "TaskPlan"]

#: Step models this build can run. Listed in the error for an unknown one so the caller can fix the request.
KNOWN_STEP_MODELS: Final[tuple[str, ...]] = ("detect",)
#: Contract defaults, applied when the stored request leaves the field out.
DEFAULT_SAMPLING_FPS: Final[float] = 1.0
DEFAULT_MAX_FRAMES: Final[int] = 3000
_INPUT_TYPES: Final[tuple[str, ...]] = ("video_url", "video_base64")


class PlanError(ValueError):
    """A request the runner cannot execute; ``field`` is the JSON path of the offending value.

    The field uses the request's own path syntax (``input[0].sampling.value``, ``steps[1].model``) so the
    API can return it verbatim and a client can point at the exact input that was wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _is_number(value: object) -> TypeGuard[int | float]:
    """Real numbers only: ``True`` is not 1 frame per second."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _mapping(value: object, field: str, *, optional: bool = False) -> Mapping[str, Any] | None:
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise PlanError(field, f"must be an object, got {type(value).__name__}")
    return value


def _optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PlanError(field, "must be a non-empty string")
    return value


def _parse_sampling(raw: object) -> Sampling:
    field = "input[0].sampling"
    spec = _mapping(raw, field, optional=True)
    if spec is None:
        return Sampling(mode="fps", value=DEFAULT_SAMPLING_FPS)
    mode = spec.get("mode", "fps")
    if mode not in ("fps", "keyframe", "interval"):
        raise PlanError(f"{field}.mode", f"must be one of 'fps', 'keyframe', 'interval', got {mode!r}")
    value = spec.get("value")
    if mode == "fps" and value is None:
        value = DEFAULT_SAMPLING_FPS  # the contract's default rate
    if mode == "keyframe":
        value = None  # ignored by the decoder; normalised so plans compare equal
    elif value is None:
        raise PlanError(f"{field}.value", f"is required for mode {mode!r}")
    try:
        return Sampling(mode=mode, value=float(value) if _is_number(value) else value)  # Sampling rejects the rest
    except ValueError as exc:
        raise PlanError(f"{field}.value", str(exc)) from exc


def _parse_range(raw: object) -> FrameRange | None:
    field = "input[0].range"
    spec = _mapping(raw, field, optional=True)
    if spec is None:
        return None
    start, end = spec.get("start"), spec.get("end")
    unit: Any = spec.get("unit") or "seconds"  # FrameRange validates it
    if start is None and end is None:
        return None  # "the full video" said explicitly
    try:
        return FrameRange(start=start, end=end, unit=unit)
    except ValueError as exc:
        message = str(exc)
        # FrameRange names the bad part first ("range.end (...) must be ..."): map it to the request path.
        part = next((name for name in ("unit", "start", "end") if message.startswith(f"range.{name}")), None)
        raise PlanError(f"{field}.{part}" if part else field, message) from exc


def _parse_max_frames(value: object) -> int:
    if value is None:
        return DEFAULT_MAX_FRAMES
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value) or int(value) < 1:
        raise PlanError("input[0].max_frames", f"must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _DetectParameters:
    classes: tuple[str, ...] | None
    labels: dict[int, str] | None
    min_confidence: float | None


def _parse_detect_parameters(raw: object, index: int) -> _DetectParameters:
    field = f"steps[{index}].parameters"
    params = _mapping(raw, field, optional=True) or {}
    classes_raw = params.get("classes")
    classes: tuple[str, ...] | None = None
    labels: dict[int, str] | None = None
    if classes_raw is not None:
        if isinstance(classes_raw, str) or not isinstance(classes_raw, list | tuple):
            raise PlanError(f"{field}.classes", "must be a list of class names")
        if not classes_raw:
            raise PlanError(f"{field}.classes", "must name at least one class (leave it out for every class)")
        if not all(isinstance(name, str) for name in classes_raw):
            raise PlanError(f"{field}.classes", "every class name must be a string")
        classes = tuple(classes_raw)
        try:
            labels = resolve_classes(classes)
        except UnknownClassError as exc:
            raise PlanError(f"{field}.classes", str(exc)) from exc
    floor = params.get("min_confidence")
    if floor is not None and (not _is_number(floor) or not 0.0 <= float(floor) <= 1.0):
        raise PlanError(f"{field}.min_confidence", f"must be a number between 0 and 1, got {floor!r}")
    return _DetectParameters(classes, labels, None if floor is None else float(floor))


@dataclass(frozen=True)
class TaskPlan:
    """Everything a runner needs from the request, already validated and resolved.

    ``labels`` maps each COCO id the request asked for to the word it used ("pedestrian"), so chunks
    report the request's own vocabulary; ``class_filter`` is the sorted id tuple handed to the detector
    (``None``: every class).
    """

    source_url: str | None
    staged_path: str | None
    sampling: Sampling
    frame_range: FrameRange | None
    max_frames: int
    classes: tuple[str, ...] | None
    labels: dict[int, str] | None
    class_filter: tuple[int, ...] | None
    min_confidence: float | None
    model_hint: str | None
    steps: tuple[str, ...]

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TaskPlan:
        """Parse the validated request dict (see the pipelines API spec); raises :class:`PlanError`."""
        if not isinstance(request, Mapping):
            raise PlanError("request", "must be an object")
        inputs = request.get("input")
        if not isinstance(inputs, list) or len(inputs) != 1:
            raise PlanError("input", "must be a list with exactly one element")
        source = _mapping(inputs[0], "input[0]")
        assert source is not None  # not optional: _mapping raised otherwise
        kind = source.get("type")
        if kind not in _INPUT_TYPES:
            raise PlanError("input[0].type", f"must be one of {list(_INPUT_TYPES)}, got {kind!r}")
        url = _optional_str(source.get("url"), "input[0].url")
        staged = _optional_str(source.get("staged_path"), "input[0].staged_path")
        if staged is None and url is None:
            # a base64 input is staged by the API before the task is stored: to storage:// (url) or to disk
            field = "input[0].url" if kind == "video_url" else "input[0].staged_path"
            raise PlanError(field, "no video to read: the request has neither a URL nor staged media")

        steps_raw = request.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise PlanError("steps", "must be a non-empty list")
        names: list[str] = []
        detect: _DetectParameters | None = None
        for index, step_raw in enumerate(steps_raw):
            step = _mapping(step_raw, f"steps[{index}]")
            assert step is not None
            name = step.get("model")
            if name not in KNOWN_STEP_MODELS:
                raise PlanError(
                    f"steps[{index}].model", f"unknown step model {name!r}; known models: {list(KNOWN_STEP_MODELS)}"
                )
            if name in names:
                raise PlanError(f"steps[{index}].model", f"{name!r} may appear only once")
            names.append(name)
            _mapping(step.get("when"), f"steps[{index}].when", optional=True)
            if name == "detect":
                detect = _parse_detect_parameters(step.get("parameters"), index)
        if detect is None:  # unreachable while "detect" is the only known model; kept for when it is not
            raise PlanError("steps", "a 'detect' step is required")

        return cls(
            source_url=url,
            staged_path=staged,
            sampling=_parse_sampling(source.get("sampling")),
            frame_range=_parse_range(source.get("range")),
            max_frames=_parse_max_frames(source.get("max_frames")),
            classes=detect.classes,
            labels=detect.labels,
            class_filter=tuple(sorted(detect.labels)) if detect.labels is not None else None,
            min_confidence=detect.min_confidence,
            model_hint=_optional_str(request.get("model"), "model"),
            steps=tuple(names),
        )
