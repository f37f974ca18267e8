"""Turn a validated video request into a :class:`TaskPlan` the runner can execute.

Validation is the contract's (:class:`contract.video.ProcessRequest`); the runner re-validates the
stored JSON with the same model (``context={"stored": True}``) because the database is a trust
boundary in time. What is left here is what a client never sees: contract defaults filled in,
the decoder's sampling and range values, and the executable step plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from contract.common import plan_error
from contract.video import ProcessRequest, Range, VideoInput
from contract.video import Sampling as SamplingSpec
from models.registry import UnknownModelError, get_model
from pipelines.decode import FrameRange, Sampling
from pipelines.decode_live import is_live_url
from pipelines.describe import resolve_chain
from pipelines.render import OutputOptions
from pipelines.step_specs import KNOWN_STEP_MODELS, DetectParams, PlanError, StepPlan, plan_steps
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
#: Keys older versions stored that the contract no longer has (a local staging path, long gone).
_LEGACY_INPUT_KEYS: Final[tuple[str, ...]] = ("staged_path",)


def _sampling(spec: SamplingSpec | None) -> Sampling:
    if spec is None:
        return Sampling(mode="fps", value=DEFAULT_SAMPLING_FPS)
    if spec.mode == "keyframe":
        return Sampling(mode="keyframe", value=None)  # ignored by the decoder; normalised so plans compare equal
    return Sampling(mode=spec.mode, value=float(spec.value) if spec.value is not None else DEFAULT_SAMPLING_FPS)


def _frame_range(spec: Range | None) -> FrameRange | None:
    if spec is None or (spec.start is None and spec.end is None):
        return None  # "the full video", said explicitly or not
    return FrameRange(start=spec.start, end=spec.end, unit=spec.unit)


def _without_legacy_keys(request: Mapping[str, Any]) -> dict[str, Any]:
    inputs = request.get("input")
    if not isinstance(inputs, list):
        return dict(request)
    upgraded = [
        {k: v for k, v in item.items() if k not in _LEGACY_INPUT_KEYS} if isinstance(item, Mapping) else item
        for item in inputs
    ]
    return {**request, "input": upgraded}


@dataclass(frozen=True)
class TaskPlan:
    """Everything a runner needs from the request, already validated and resolved.

    ``steps`` holds the validated step specs; ``labels`` (from the detect step) maps each COCO id the
    request asked for to the word it used ("pedestrian"), so chunks report the request's own vocabulary.
    """

    source_url: str
    sampling: Sampling
    frame_range: FrameRange | None
    max_frames: int | None  # None: a live source without a limit runs until it ends or is cancelled
    model_hint: str | None
    steps: StepPlan
    live: bool = False  # input type "live", or a URL scheme that is always live (pipelines/decode_live.py)
    max_duration_s: float | None = None
    output: OutputOptions = field(default_factory=OutputOptions)

    @property
    def labels(self) -> dict[int, str] | None:
        return self.steps.labels

    @property
    def min_confidence(self) -> float | None:
        return self.steps.min_confidence

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TaskPlan:
        """Validate a stored request with the contract and plan it; raises :class:`PlanError`."""
        if not isinstance(request, Mapping):
            raise PlanError("request", "must be an object")
        try:
            body = ProcessRequest.model_validate(_without_legacy_keys(request), context={"stored": True})
        except ValidationError as exc:
            raise plan_error(exc) from None
        return cls.of(body)

    @classmethod
    def of(cls, body: ProcessRequest) -> TaskPlan:
        """The plan of a validated request (its one input must carry a URL by now)."""
        source: VideoInput = body.input[0]
        if source.url is None:
            raise PlanError("input[0].url", "no video to read: the request has no URL")
        live = source.type == "live" or is_live_url(source.url)
        return cls(
            source_url=source.url,
            sampling=_sampling(source.sampling),
            frame_range=_frame_range(source.range),
            max_frames=source.max_frames or (None if live else DEFAULT_MAX_FRAMES),
            model_hint=body.model,
            steps=plan_steps(body.steps),
            live=live,
            max_duration_s=source.max_duration_s,
            output=OutputOptions(
                annotated_video=bool(body.output and body.output.annotated_video),
                track_previews=bool(body.output and body.output.track_previews),
            ),
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
        resolve_chain(model_hint, settings)  # an unknown provider hint: UnknownProviderError (a PlanError on model)
