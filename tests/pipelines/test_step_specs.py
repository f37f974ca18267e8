"""``steps[]`` parsing: ``when`` filters pick exactly the right rows, bad input names its exact field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from kernels.detections import Detections
from models.coco import COCO_CLASSES, FACE_CLASS_ID, TEXT_CLASS_ID
from pipelines.step_specs import (
    DescribeParams,
    DetectParams,
    FaceParams,
    FeatureParams,
    OcrParams,
    PlanError,
    StepPlan,
    When,
    parse_steps,
)

ID = {name: index for index, name in enumerate(COCO_CLASSES)}

# row: class, confidence, box (x1, y1, x2, y2) -> width x height, track id
ROWS: list[tuple[int, float, tuple[float, float, float, float], int]] = [
    (ID["person"], 0.90, (0, 0, 40, 100), 1),  # 40 x 100
    (ID["car"], 0.50, (10, 10, 210, 110), 2),  # 200 x 100
    (ID["truck"], 0.30, (0, 0, 300, 150), 3),  # 300 x 150
    (ID["bus"], 0.75, (5, 5, 25, 15), -1),  # 20 x 10, untracked
    (ID["dog"], 0.60, (0, 0, 50, 50), 7),  # 50 x 50
    (ID["motorcycle"], 0.45, (0, 0, 60, 30), 9),  # 60 x 30
    (TEXT_CLASS_ID, 0.99, (0, 0, 80, 12), -1),  # a text line target, 80 x 12
]


@pytest.fixture(scope="module")
def targets() -> Detections:
    return Detections(
        xyxy=np.array([row[2] for row in ROWS], np.float32),
        confidence=np.array([row[1] for row in ROWS], np.float32),
        class_id=np.array([row[0] for row in ROWS], np.int64),
        track_id=np.array([row[3] for row in ROWS], np.int64),
    )


def when_plan(when: dict[str, Any]) -> StepPlan:
    return parse_steps([{"model": "detect"}, {"model": "feature", "when": when}])


def selected(when: dict[str, Any], targets: Detections) -> list[int]:
    step = when_plan(when).steps[1]
    return np.flatnonzero(step.select(targets)).tolist()


def plan_error(raw: object) -> PlanError:
    with pytest.raises(PlanError) as caught:
        parse_steps(raw)
    return caught.value


# ---------------------------------------------------------------------------------------------- when: rows


@pytest.mark.parametrize(
    ("when", "rows"),
    [
        ({"class_is": ["dog"]}, [4]),
        ({"class_is": ["Dog"]}, [4]),  # case-insensitive, like detect.classes
        ({"class_is": ["person", "dog"]}, [0, 4]),
        ({"class_is": ["vehicle"]}, [1, 2, 3, 5]),  # alias: car, truck, bus, motorcycle
        ({"class_is": ["pedestrian"]}, [0]),
        ({"class_is": ["lorry"]}, [2]),
        ({"class_is": ["text"]}, [6]),  # a step class is a class name too
        ({"class_is": ["face"]}, []),
        ({"class_not": ["vehicle"]}, [0, 4, 6]),
        ({"class_not": ["person", "text"]}, [1, 2, 3, 4, 5]),
        ({"class_is": ["vehicle"], "class_not": ["bus"]}, [1, 2, 5]),
        ({"min_confidence": 0.5}, [0, 1, 3, 4, 6]),  # inclusive: the car at exactly 0.5 stays
        ({"max_confidence": 0.5}, [1, 2, 5]),  # inclusive
        ({"min_confidence": 0.45, "max_confidence": 0.6}, [1, 4, 5]),
        ({"min_confidence": 0.3, "max_confidence": 0.3}, [2]),  # a single value
        ({"min_confidence": 0.0}, [0, 1, 2, 3, 4, 5, 6]),
        ({"min_confidence": 1.0}, []),
        ({"min_width": 50}, [1, 2, 4, 5, 6]),  # inclusive: the 50-px dog stays
        ({"min_height": 100}, [0, 1, 2]),
        ({"min_width": 45, "min_height": 45}, [1, 2, 4]),
        ({"min_width": 0, "min_height": 0}, [0, 1, 2, 3, 4, 5, 6]),
        ({"track_is": [2, 7]}, [1, 4]),
        ({"track_is": [0]}, []),
        ({"track_is": [123456]}, []),
        ({"class_is": ["vehicle"], "min_confidence": 0.45, "min_width": 100}, [1]),
        ({"class_is": ["vehicle"], "track_is": [3, 9]}, [2, 5]),
    ],
)
def test_when_selects_exactly_the_right_rows(when: dict[str, Any], rows: list[int], targets: Detections) -> None:
    assert selected(when, targets) == rows


def test_no_when_selects_every_row(targets: Detections) -> None:
    step = parse_steps([{"model": "detect"}, {"model": "feature"}]).steps[1]
    assert step.when is None
    assert step.select(targets).tolist() == [True] * len(ROWS)


def test_when_on_no_targets_is_an_empty_mask() -> None:
    mask = when_plan({"class_is": ["dog"], "min_width": 3}).steps[1].select(Detections.empty())
    assert mask.dtype == np.bool_ and mask.shape == (0,)


def test_when_confidence_bounds_compare_in_float32() -> None:
    """A detector score is float32: 0.3 as float32 is 0.30000001; a bound of 0.3 must still include it."""
    row = Detections(np.array([[0, 0, 1, 1]], np.float32), np.array([0.3], np.float32), np.array([0]))
    assert when_plan({"max_confidence": 0.3}).steps[1].select(row).tolist() == [True]
    assert when_plan({"min_confidence": 0.3}).steps[1].select(row).tolist() == [True]


def test_when_parses_to_ids() -> None:
    when = When.parse(
        {"class_is": ["vehicle", "car"], "class_not": ["bus"], "track_is": [4, 4, 1], "min_width": 3},
        "w",
    )
    assert when is not None
    assert when.class_ids == frozenset({ID["car"], ID["truck"], ID["bus"], ID["motorcycle"]})
    assert when.excluded_ids == frozenset({ID["bus"]})
    assert when.track_ids == frozenset({1, 4})
    assert when.min_width == 3.0 and isinstance(when.min_width, float)
    assert when.min_height is None and when.min_confidence is None and when.max_confidence is None
    assert When.parse(None, "w") is None


# ---------------------------------------------------------------------------------------------- when: errors


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ({"class": ["dog"]}, "steps[1].when.class"),  # unknown key
        ({"class_is": ["dog"], "zzz": 1, "aaa": 2}, "steps[1].when.aaa"),  # the first unknown key, sorted
        ({}, "steps[1].when"),  # empty
        ("dog", "steps[1].when"),  # not an object
        (["dog"], "steps[1].when"),
        (3, "steps[1].when"),
        ({"class_is": "dog"}, "steps[1].when.class_is"),  # a string, not a list
        ({"class_is": []}, "steps[1].when.class_is"),
        ({"class_is": {"dog": 1}}, "steps[1].when.class_is"),
        ({"class_is": ["dog", "unicorn"]}, "steps[1].when.class_is[1]"),
        ({"class_is": ["unicorn"]}, "steps[1].when.class_is[0]"),
        ({"class_is": ["dog", 3]}, "steps[1].when.class_is[1]"),
        ({"class_is": ["dog", "  "]}, "steps[1].when.class_is[1]"),
        ({"class_is": [None]}, "steps[1].when.class_is[0]"),
        ({"class_not": ["person", "car", "hoverboard"]}, "steps[1].when.class_not[2]"),
        ({"class_not": "person"}, "steps[1].when.class_not"),
        ({"min_confidence": True}, "steps[1].when.min_confidence"),  # a bool is not a number
        ({"max_confidence": False}, "steps[1].when.max_confidence"),
        ({"min_confidence": math.nan}, "steps[1].when.min_confidence"),
        ({"min_confidence": math.inf}, "steps[1].when.min_confidence"),
        ({"min_confidence": 1.5}, "steps[1].when.min_confidence"),
        ({"min_confidence": -0.1}, "steps[1].when.min_confidence"),
        ({"min_confidence": "0.5"}, "steps[1].when.min_confidence"),
        ({"max_confidence": [0.5]}, "steps[1].when.max_confidence"),
        ({"min_confidence": 0.8, "max_confidence": 0.2}, "steps[1].when.max_confidence"),  # min > max
        ({"min_width": -1}, "steps[1].when.min_width"),
        ({"min_width": True}, "steps[1].when.min_width"),
        ({"min_width": math.nan}, "steps[1].when.min_width"),
        ({"min_height": "10"}, "steps[1].when.min_height"),
        ({"min_height": -math.inf}, "steps[1].when.min_height"),
        ({"track_is": []}, "steps[1].when.track_is"),
        ({"track_is": 3}, "steps[1].when.track_is"),
        ({"track_is": [-1]}, "steps[1].when.track_is"),
        ({"track_is": [1.0]}, "steps[1].when.track_is"),
        ({"track_is": [True]}, "steps[1].when.track_is"),
        ({"track_is": ["3"]}, "steps[1].when.track_is"),
    ],
)
def test_malformed_when_names_the_exact_field(when: object, field: str) -> None:
    error = plan_error([{"model": "detect"}, {"model": "feature", "when": when}])
    assert error.field == field, error
    assert str(error).startswith(f"{field}: ")


def test_unknown_class_message_names_the_class() -> None:
    error = plan_error([{"model": "detect"}, {"model": "ocr", "when": {"class_is": ["car", "Unicorn"]}}])
    assert error.field == "steps[1].when.class_is[1]"
    assert "'Unicorn'" in error.message


def test_when_null_is_no_filter() -> None:
    plan = parse_steps([{"model": "detect"}, {"model": "ocr", "when": None}])
    assert plan.steps[1].when is None


# ---------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"model": "detect", "parameters": {"class": ["dog"]}}], "steps[0].parameters.class"),
        ([{"model": "detect", "parameters": {"classes": "dog"}}], "steps[0].parameters.classes"),
        ([{"model": "detect", "parameters": {"classes": []}}], "steps[0].parameters.classes"),
        ([{"model": "detect", "parameters": {"classes": ["dog", "unicorn"]}}], "steps[0].parameters.classes"),
        ([{"model": "detect", "parameters": {"classes": ["dog", 1]}}], "steps[0].parameters.classes"),
        ([{"model": "detect", "parameters": {"min_confidence": True}}], "steps[0].parameters.min_confidence"),
        ([{"model": "detect", "parameters": {"min_confidence": math.nan}}], "steps[0].parameters.min_confidence"),
        ([{"model": "detect", "parameters": {"min_confidence": 2}}], "steps[0].parameters.min_confidence"),
        ([{"model": "detect", "parameters": {"model": ""}}], "steps[0].parameters.model"),
        ([{"model": "detect", "parameters": {"model": 3}}], "steps[0].parameters.model"),
        ([{"model": "detect", "parameters": ["classes"]}], "steps[0].parameters"),
        ([{"model": "detect", "parameters": "x"}], "steps[0].parameters"),
        ([{"model": "ocr", "parameters": {"min_confidence": -0.5}}], "steps[0].parameters.min_confidence"),
        ([{"model": "ocr", "parameters": {"min_confidence": False}}], "steps[0].parameters.min_confidence"),
        ([{"model": "ocr", "parameters": {"language": "en"}}], "steps[0].parameters.language"),
        (
            [{"model": "detect"}, {"model": "feature", "parameters": {"include_vector": 1}}],
            "steps[1].parameters.include_vector",
        ),
        (
            [{"model": "detect"}, {"model": "feature", "parameters": {"include_vector": "true"}}],
            "steps[1].parameters.include_vector",
        ),
        ([{"model": "detect"}, {"model": "feature", "parameters": {"dim": 128}}], "steps[1].parameters.dim"),
        ([{"model": "face", "parameters": {"include_vector": "yes"}}], "steps[0].parameters.include_vector"),
        ([{"model": "face", "parameters": {"include_vector": 0}}], "steps[0].parameters.include_vector"),
        ([{"model": "face", "parameters": {"min_confidence": math.inf}}], "steps[0].parameters.min_confidence"),
        ([{"model": "describe", "parameters": {"segment_frames": 0}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": 10_001}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": -3}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": 2.0}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": True}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": None}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"segment_frames": "5"}}], "steps[0].parameters.segment_frames"),
        ([{"model": "describe", "parameters": {"prompt": "hi"}}], "steps[0].parameters.prompt"),
    ],
)
def test_malformed_params_name_the_exact_field(steps: list[dict[str, Any]], field: str) -> None:
    assert plan_error(steps).field == field


def test_params_parse_to_typed_values() -> None:
    plan = parse_steps(
        [
            {"model": "detect", "parameters": {"classes": ["vehicle", "car", "dog"], "min_confidence": 0.4}},
            {"model": "ocr", "parameters": {"min_confidence": 0.7}},
            {"model": "feature", "parameters": {"include_vector": True}},
            {"model": "face", "parameters": {"min_confidence": 0.6, "include_vector": True}},
            {"model": "describe", "parameters": {"segment_frames": 10_000}},
        ]
    )
    detect, ocr, feature, face, describe = (step.params for step in plan.steps)
    assert detect == DetectParams(
        classes=("vehicle", "car", "dog"),
        # the first word that covers an id wins: car is reported as "vehicle"
        labels={
            ID["car"]: "vehicle",
            ID["truck"]: "vehicle",
            ID["bus"]: "vehicle",
            ID["motorcycle"]: "vehicle",
            ID["dog"]: "dog",
        },
        min_confidence=0.4,
        model=None,
    )
    assert isinstance(detect, DetectParams)
    assert detect.class_filter == (ID["car"], ID["motorcycle"], ID["bus"], ID["truck"], ID["dog"])  # sorted ids
    assert ocr == OcrParams(0.7)
    assert feature == FeatureParams(include_vector=True)
    assert face == FaceParams(min_confidence=0.6, include_vector=True)
    assert describe == DescribeParams(segment_frames=10_000)


def test_param_defaults() -> None:
    plan = parse_steps(
        [
            {"model": "detect", "parameters": None},
            {"model": "ocr", "parameters": {}},
            {"model": "feature"},
            {"model": "face"},
            {"model": "describe"},
        ]
    )
    detect, ocr, feature, face, describe = (step.params for step in plan.steps)
    assert detect == DetectParams() and isinstance(detect, DetectParams) and detect.class_filter is None
    assert ocr == OcrParams(0.5)
    assert feature == FeatureParams(False)
    assert face == FaceParams(None, False)
    assert describe == DescribeParams(1)


def test_integer_confidences_are_numbers() -> None:
    plan = parse_steps([{"model": "detect", "parameters": {"min_confidence": 1}}, {"model": "ocr"}])
    assert plan.min_confidence == 1.0 and isinstance(plan.min_confidence, float)


# ---------------------------------------------------------------------------------------------- step order


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        (None, "steps"),
        ([], "steps"),
        ({"model": "detect"}, "steps"),
        ("detect", "steps"),
        (["detect"], "steps[0]"),
        ([{"model": "detect"}, None], "steps[1]"),
        ([{"model": "detect", "params": {}}], "steps[0].params"),  # unknown step key
        ([{}], "steps[0].model"),
        ([{"model": "segment"}], "steps[0].model"),
        ([{"model": "Detect"}], "steps[0].model"),
        ([{"model": 1}], "steps[0].model"),
        ([{"model": "ocr"}, {"model": "detect"}], "steps[1].model"),  # detect not first
        ([{"model": "describe"}, {"model": "detect"}], "steps[1].model"),
        ([{"model": "detect"}, {"model": "detect"}], "steps[1].model"),  # duplicates
        ([{"model": "detect"}, {"model": "ocr"}, {"model": "ocr"}], "steps[2].model"),
        ([{"model": "face"}, {"model": "describe"}, {"model": "face"}], "steps[2].model"),
        ([{"model": "feature"}], "steps[0].model"),  # nothing made targets before it
        ([{"model": "describe"}, {"model": "feature"}], "steps[1].model"),
        ([{"model": "detect", "when": {"class_is": ["dog"]}}], "steps[0].when"),  # detect filters with params
        ([{"model": "ocr", "when": {"class_is": ["dog"]}}], "steps[0].when"),  # frame-level step
        ([{"model": "face", "when": {"min_width": 10}}], "steps[0].when"),
        ([{"model": "ocr"}, {"model": "face", "when": {"class_is": ["text"]}}], "steps[1].when"),
    ],
)
def test_step_order_and_shape_errors(steps: object, field: str) -> None:
    assert plan_error(steps).field == field


def test_steps_field_prefix_is_the_callers() -> None:
    with pytest.raises(PlanError) as caught:
        parse_steps([{"model": "detect"}, {"model": "ocr", "when": {"class_is": ["x-wing"]}}], "items[3].steps")
    assert caught.value.field == "items[3].steps[1].when.class_is[0]"


@pytest.mark.parametrize(
    "steps",
    [
        [{"model": "ocr"}, {"model": "feature"}],  # text targets can be embedded
        [{"model": "face"}, {"model": "feature", "when": {"class_is": ["face"]}}],
        [{"model": "detect"}, {"model": "describe"}, {"model": "feature"}],
        [{"model": "describe"}],
        [{"model": "ocr"}, {"model": "describe", "when": {"class_is": ["text"]}}],  # describe chooses targets
    ],
)
def test_valid_orders(steps: list[dict[str, Any]]) -> None:
    assert parse_steps(steps).names == tuple(step["model"] for step in steps)


# ---------------------------------------------------------------------------------------------- on_frame


@pytest.mark.parametrize(
    ("steps", "on_frame"),
    [
        (["ocr"], [True]),
        (["face"], [True]),
        (["detect", "ocr"], [False, False]),
        (["detect", "face"], [False, False]),
        (["ocr", "face"], [True, True]),  # no detect before either: both on the whole frame
        (["face", "ocr", "feature"], [True, True, False]),
        (["detect", "ocr", "face", "feature", "describe"], [False] * 5),
        (["describe"], [False]),  # describe is frame-level, but not a target-creating step
        (["ocr", "describe"], [True, False]),
    ],
)
def test_on_frame(steps: list[str], on_frame: list[bool]) -> None:
    plan = parse_steps([{"model": name} for name in steps])
    assert [step.on_frame for step in plan.steps] == on_frame
    assert [step.index for step in plan.steps] == list(range(len(steps)))


# ---------------------------------------------------------------------------------------------- StepPlan


def test_plan_helpers_with_detect() -> None:
    plan = parse_steps(
        [
            {"model": "detect", "parameters": {"classes": ["pedestrian", "bike"], "min_confidence": 0.35}},
            {"model": "face", "parameters": {"include_vector": True}, "when": {"class_is": ["pedestrian"]}},
            {"model": "feature"},
        ]
    )
    assert plan.names == ("detect", "face", "feature")
    assert plan.labels == {ID["person"]: "pedestrian", ID["bicycle"]: "bike"}
    assert plan.min_confidence == pytest.approx(0.35)
    assert plan.include_vector("face") is True
    assert plan.include_vector("feature") is False
    assert plan.include_vector("ocr") is False  # no such step
    assert plan.include_vector("detect") is False  # a step without the parameter
    assert plan.get("face") is plan.steps[1]
    assert plan.get("ocr") is None
    assert plan.detect is not None and plan.detect.classes == ("pedestrian", "bike")


def test_plan_helpers_without_detect() -> None:
    plan = parse_steps([{"model": "ocr"}, {"model": "feature", "parameters": {"include_vector": True}}])
    assert plan.names == ("ocr", "feature")
    assert plan.detect is None
    assert plan.labels is None
    assert plan.min_confidence is None
    assert plan.include_vector("feature") is True


def test_plan_detect_without_classes_reports_coco_names() -> None:
    plan = parse_steps([{"model": "detect"}])
    assert plan.labels is None and plan.min_confidence is None and plan.detect == DetectParams()


def test_specs_are_immutable() -> None:
    plan = parse_steps([{"model": "detect"}])
    with pytest.raises(AttributeError):
        plan.steps[0].on_frame = True  # type: ignore[misc]


def test_face_class_is_selectable_by_name() -> None:
    faces = Detections(
        np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32),
        np.array([0.9, 0.9], np.float32),
        np.array([FACE_CLASS_ID, TEXT_CLASS_ID]),
    )
    step = parse_steps([{"model": "face"}, {"model": "feature", "when": {"class_is": ["face"]}}]).steps[1]
    assert step.select(faces).tolist() == [True, False]
