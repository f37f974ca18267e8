"""TaskPlan.from_request: the stored request becomes a runnable plan, or a PlanError naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipelines.decode import FrameRange, Sampling
from pipelines.plan import DEFAULT_MAX_FRAMES, KNOWN_STEP_MODELS, PlanError, TaskPlan

PERSON, BICYCLE, CAR, MOTORCYCLE, BUS, TRUCK = 0, 1, 2, 3, 5, 7


def request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "input": [
            {
                "type": "video_url",
                "url": "https://example.com/clip.mp4",
                "staged_path": None,
                "sampling": {"mode": "fps", "value": 5},
                "range": {"start": 0, "end": 30, "unit": "seconds"},
                "max_frames": 300,
            }
        ],
        "steps": [{"model": "detect", "parameters": {"classes": ["pedestrian"], "min_confidence": None}}],
        "model": "qwen-vl-max",
    }
    for path, value in changes.items():
        target: Any = base
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return copy.deepcopy(base)


_DELETE = object()


def test_full_request_parses() -> None:
    plan = TaskPlan.from_request(request())
    assert plan.source_url == "https://example.com/clip.mp4"
    assert plan.sampling == Sampling(mode="fps", value=5.0)
    assert plan.frame_range == FrameRange(start=0, end=30, unit="seconds")
    assert plan.max_frames == 300
    assert plan.steps.detect.classes == ("pedestrian",)
    assert plan.labels == {PERSON: "pedestrian"}
    assert plan.steps.detect.class_filter == (PERSON,)
    assert plan.min_confidence is None
    assert plan.model_hint == "qwen-vl-max"
    assert plan.steps.names == ("detect",)


def test_defaults_follow_the_contract() -> None:
    raw = {
        "input": [{"type": "video_base64", "url": "storage://staged/x.mp4"}],
        "steps": [{"model": "detect"}],
    }
    plan = TaskPlan.from_request(raw)
    assert plan.sampling == Sampling(mode="fps", value=1.0)  # default 1 FPS
    assert plan.frame_range is None  # full video
    assert plan.max_frames == DEFAULT_MAX_FRAMES == 3000
    assert plan.steps.detect.classes is None and plan.labels is None and plan.steps.detect.class_filter is None
    assert plan.model_hint is None and plan.source_url == "storage://staged/x.mp4"


def test_an_old_stored_request_with_a_null_staged_path_still_parses() -> None:
    """Requests stored before local staging was removed carry ``"staged_path": null``: it is ignored."""
    raw = request(input__0__type="video_base64", input__0__url="storage://staged/x.mp4")
    assert raw["input"][0]["staged_path"] is None
    assert TaskPlan.from_request(raw) == TaskPlan.from_request(request(input__0__url="storage://staged/x.mp4"))
    assert TaskPlan.from_request(raw).source_url == "storage://staged/x.mp4"


def test_a_local_staged_path_without_a_url_has_no_media_to_read() -> None:
    """Local staging is gone: a stored request naming only a local file fails on the URL, never reads it."""
    raw = request(input__0__type="video_base64", input__0__url=None, input__0__staged_path="/data/staged/x.mp4")
    with pytest.raises(PlanError, match="no video to read") as caught:
        TaskPlan.from_request(raw)
    assert caught.value.field == "input[0].url"
    # with a URL as well, the URL is what is read
    plan = TaskPlan.from_request({**raw, "input": [{**raw["input"][0], "url": "storage://staged/y.mp4"}]})
    assert plan.source_url == "storage://staged/y.mp4"


def test_alias_classes_resolve_to_sorted_ids_and_keep_the_request_word() -> None:
    plan = TaskPlan.from_request(request(steps__0__parameters={"classes": ["vehicle", "car", "bike"]}))
    assert plan.steps.detect.class_filter == (BICYCLE, CAR, MOTORCYCLE, BUS, TRUCK)
    assert plan.labels is not None and plan.labels[CAR] == "vehicle" and plan.labels[BICYCLE] == "bike"


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ({"mode": "keyframe", "value": None}, Sampling(mode="keyframe", value=None)),
        ({"mode": "keyframe"}, Sampling(mode="keyframe", value=None)),
        ({"mode": "interval", "value": 3}, Sampling(mode="interval", value=3.0)),
        ({"mode": "fps", "value": None}, Sampling(mode="fps", value=1.0)),
        (None, Sampling(mode="fps", value=1.0)),
    ],
)
def test_sampling_modes(sampling: dict[str, Any] | None, expected: Sampling) -> None:
    assert TaskPlan.from_request(request(input__0__sampling=sampling)).sampling == expected


def test_frame_range_in_frames_and_empty_range() -> None:
    plan = TaskPlan.from_request(request(input__0__range={"start": 10, "end": 20, "unit": "frames"}))
    assert plan.frame_range == FrameRange(start=10, end=20, unit="frames")
    assert TaskPlan.from_request(request(input__0__range={"start": None, "end": None})).frame_range is None
    assert TaskPlan.from_request(request(input__0__range=None)).frame_range is None


def test_unknown_step_model_names_the_field_and_lists_known_ones() -> None:
    with pytest.raises(PlanError) as caught:
        TaskPlan.from_request(request(steps=[{"model": "levitate"}]))
    assert caught.value.field == "steps[0].model"
    assert "levitate" in str(caught.value)
    for known in KNOWN_STEP_MODELS:
        assert known in caught.value.message
    with pytest.raises(PlanError) as caught:
        TaskPlan.from_request(request(steps=[{"model": "detect"}, {"model": "detect"}]))
    assert caught.value.field == "steps[1].model"


def test_plan_error_is_a_value_error_with_field_and_message() -> None:
    error = PlanError("input[0].url", "bad")
    assert isinstance(error, ValueError)
    assert (error.field, error.message, str(error)) == ("input[0].url", "bad", "input[0].url: bad")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"input__0__sampling": {"mode": "fps", "value": 0}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "fps", "value": -2}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "fps", "value": "5"}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "interval", "value": 2.5}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "interval", "value": None}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "fps", "value": True}}, "input[0].sampling.value"),
        ({"input__0__sampling": {"mode": "scene"}}, "input[0].sampling.mode"),
        ({"input__0__sampling": "fast"}, "input[0].sampling"),
        ({"input__0__range": {"start": 5, "end": 2}}, "input[0].range.end"),
        ({"input__0__range": {"start": -1}}, "input[0].range.start"),
        ({"input__0__range": {"start": 1.5, "unit": "frames"}}, "input[0].range.start"),
        ({"input__0__range": {"start": 1, "unit": "hours"}}, "input[0].range.unit"),
        ({"input__0__max_frames": 0}, "input[0].max_frames"),
        ({"input__0__max_frames": 2.5}, "input[0].max_frames"),
        ({"input__0__max_frames": "10"}, "input[0].max_frames"),
        ({"input__0__type": "image_url"}, "input[0].type"),
        ({"input__0__url": None}, "input[0].url"),
        ({"input__0__url": ""}, "input[0].url"),
        ({"input__0__type": "video_base64", "input__0__url": None}, "input[0].url"),
        ({"input": []}, "input"),
        ({"input": "clip.mp4"}, "input"),
        ({"input__0": "clip.mp4"}, "input[0]"),
        ({"steps": []}, "steps"),
        ({"steps": [{"model": "detect"}, {"model": "detect"}]}, "steps[1].model"),
        ({"steps__0__parameters": {"classes": ["unicorn"]}}, "steps[0].parameters.classes"),
        ({"steps__0__parameters": {"classes": "person"}}, "steps[0].parameters.classes"),
        ({"steps__0__parameters": {"classes": []}}, "steps[0].parameters.classes"),
        ({"steps__0__parameters": {"classes": [3]}}, "steps[0].parameters.classes"),
        ({"steps__0__parameters": {"min_confidence": 1.5}}, "steps[0].parameters.min_confidence"),
        ({"steps__0__parameters": "all"}, "steps[0].parameters"),
        ({"steps__0__when": ["car"]}, "steps[0].when"),
        ({"model": 7}, "model"),
    ],
)
def test_invalid_requests_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PlanError) as caught:
        TaskPlan.from_request(request(**changes))
    assert caught.value.field == field, caught.value


def test_unknown_class_message_names_the_class() -> None:
    with pytest.raises(PlanError, match="unicorn") as caught:
        TaskPlan.from_request(request(steps__0__parameters={"classes": ["person", "unicorn"]}))
    assert caught.value.field == "steps[0].parameters.classes"


def test_min_confidence_is_kept() -> None:
    plan = TaskPlan.from_request(request(steps__0__parameters={"classes": None, "min_confidence": 0.7}))
    assert plan.min_confidence == 0.7 and plan.steps.detect.class_filter is None
