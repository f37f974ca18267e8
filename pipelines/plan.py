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

from models.registry import UnknownModelError, get_model
from pipelines.decode import FrameRange, Sampling
from pipelines.describe import UnknownProviderError, resolve_chain
from pipelines.step_specs import KNOWN_STEP_MODELS, DetectParams, PlanError, StepPlan, mapping, parse_steps
from visiongrid.settings import Settings

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_SAMPLING_FPS",
    "KNOWN_STEP_MODELS",
    "PlanError",
    "TaskPlan",
    "check_resources",
]

#: Contract defaults, applied when the stored request leaves the field out.
DEFAULT_SAMPLING_FPS: Final[float] = 1.0
DEFAULT_MAX_FRAMES: Final[int] = 3000
_INPUT_TYPES: Final[tuple[str, ...]] = ("video_url", "video_base64")


def _is_number(value: object) -> TypeGuard[int | float]:
    """Real numbers only: ``True`` is not 1 frame per second."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PlanError(field, "must be a non-empty string")
    return value


def _parse_sampling(raw: object) -> Sampling:
    field = "input[0].sampling"
    spec = mapping(raw, field, optional=True)
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
    spec = mapping(raw, field, optional=True)
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
class TaskPlan:
    """Everything a runner needs from the request, already validated and resolved.

    ``steps`` holds the validated step specs; ``labels`` (from the detect step) maps each COCO id the
    request asked for to the word it used ("pedestrian"), so chunks report the request's own vocabulary.
    """

    source_url: str
    sampling: Sampling
    frame_range: FrameRange | None
    max_frames: int
    model_hint: str | None
    steps: StepPlan

    @property
    def labels(self) -> dict[int, str] | None:
        return self.steps.labels

    @property
    def min_confidence(self) -> float | None:
        return self.steps.min_confidence

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TaskPlan:
        """Parse the validated request dict (see the pipelines API spec); raises :class:`PlanError`."""
        if not isinstance(request, Mapping):
            raise PlanError("request", "must be an object")
        inputs = request.get("input")
        if not isinstance(inputs, list) or len(inputs) != 1:
            raise PlanError("input", "must be a list with exactly one element")
        source = mapping(inputs[0], "input[0]")
        assert source is not None  # not optional: _mapping raised otherwise
        kind = source.get("type")
        if kind not in _INPUT_TYPES:
            raise PlanError("input[0].type", f"must be one of {list(_INPUT_TYPES)}, got {kind!r}")
        # A base64 input is staged to storage by the API before the task is stored, so every runnable
        # request has a URL. Requests stored by older versions may carry "staged_path" (a local file):
        # it is ignored, and such a request without a URL has no media to read.
        url = _optional_str(source.get("url"), "input[0].url")
        if url is None:
            raise PlanError("input[0].url", "no video to read: the request has no URL")

        return cls(
            source_url=url,
            sampling=_parse_sampling(source.get("sampling")),
            frame_range=_parse_range(source.get("range")),
            max_frames=_parse_max_frames(source.get("max_frames")),
            model_hint=_optional_str(request.get("model"), "model"),
            steps=parse_steps(request.get("steps")),
        )


def check_resources(steps: StepPlan, model_hint: str | None, settings: Settings) -> None:
    """What the pure parser cannot know: the named detector is registered (and is a detector), and a
    ``describe`` step's provider hint names a configured provider. Raises :class:`PlanError`."""
    detect = steps.get("detect")
    if detect is not None and isinstance(detect.params, DetectParams) and detect.params.model is not None:
        field = f"steps[{detect.index}].parameters.model"
        try:
            entry = get_model(detect.params.model, settings.models_dir)
        except UnknownModelError as exc:
            raise PlanError(field, str(exc).strip('"')) from exc
        if entry.task != "detect":
            raise PlanError(field, f"model {entry.name!r} is a {entry.task!r} model, not a detector")
    if steps.get("describe") is not None:
        try:
            resolve_chain(model_hint, settings)
        except UnknownProviderError as exc:
            raise PlanError("model", str(exc)) from exc
        except ValueError as exc:  # the configured providers themselves are broken: not the caller's fault
            raise RuntimeError(f"vlm_providers setting is invalid: {exc}") from exc
