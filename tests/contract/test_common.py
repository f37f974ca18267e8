"""The one translation of validation errors to the client's field, invalid Unicode anywhere in a
body, and the error model's code → status table and pickling."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from contract.common import field_path, plan_error, unicode_problem
from contract.errors import STATUS, ErrorCode, PlanError, VisionGridError, status_of
from contract.vectors import CollectionCreate
from contract.video import ProcessRequest


@pytest.mark.parametrize(
    ("location", "relative", "path"),
    [
        (("body", "input", 0, "sampling", "value"), "", "input[0].sampling.value"),
        (("body", "steps", 1, "ocr", "when", "class_is", 0), "", "steps[1].when.class_is[0]"),
        (("steps",), "[2].model", "steps[2].model"),
        (("input", 0), "url", "input[0].url"),
        ((), "", ""),
    ],
)
def test_field_path(location: tuple[Any, ...], relative: str, path: str) -> None:
    assert field_path(location, relative) == path


def test_a_union_value_is_named_once_at_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        CollectionCreate.model_validate({"name": "c", "metadata": {"x": [1]}})
    assert plan_error(caught.value).field == "metadata.x"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": ["ok", "\ud800"]}, "a[1]"),
        ({"a": {"\udfff": 1}}, "a"),
        ("x\udc00y", ""),
    ],
)
def test_lone_surrogates_are_found_wherever_they_are(value: object, path: str) -> None:
    problem = unicode_problem(value)
    assert problem is not None and problem.field == path
    assert "\ud800" not in problem.message and "\udfff" not in problem.message  # never echoed


def test_valid_unicode_passes() -> None:
    assert unicode_problem({"😀 emoji": ["é", "日本語", "😀"]}) is None


def test_a_request_body_with_a_surrogate_names_the_field() -> None:
    body = {"input": [{"type": "video_url", "url": "https://x/\ud800"}], "steps": [{"model": "detect"}]}
    with pytest.raises(ValidationError) as caught:
        ProcessRequest.model_validate(body)
    assert plan_error(caught.value).field == "input[0].url"


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(ErrorCode)
    assert STATUS[ErrorCode.INVALID_REQUEST] == 400 and STATUS[ErrorCode.NOT_FOUND] == 404
    assert STATUS[ErrorCode.MEDIA_TOO_LARGE] == 413 and STATUS[ErrorCode.VECTORS_UNAVAILABLE] == 503
    assert STATUS[ErrorCode.DESCRIBE_FAILED] == 502 and STATUS[ErrorCode.DETECTOR_ERROR] == 500
    assert status_of("a_code_from_the_future") == 500


def test_errors_pickle_with_everything_they_carry() -> None:
    """Raised in a Ray replica, re-raised in the ingress."""
    error = VisionGridError(ErrorCode.TASK_NOT_SUCCEEDED, "task is running", None, status="running")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.field, copy.extra, copy.status) == (
        "task_not_succeeded",
        "task is running",
        None,
        {"status": "running"},
        404,
    )
    plan = pickle.loads(pickle.dumps(PlanError("steps[0].model", "unknown")))
    assert isinstance(plan, PlanError) and isinstance(plan, ValueError) and str(plan) == "steps[0].model: unknown"
