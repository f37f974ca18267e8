"""The video contract validates what the decoder's dataclasses used to: every bad sampling or range
is refused naming its field (the cases tests/pipelines/test_decode.py checked before), and a stored
request is re-validated with the same model."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from contract.common import plan_error
from contract.video import ProcessRequest, Range, Sampling


def field_of(model: type[Sampling] | type[Range], **values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model(**values)
    error = plan_error(caught.value)
    assert str(error).startswith(f"{error.field}: ")
    return str(error.field)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"mode": "fps", "value": 0}, "value"),
        ({"mode": "fps", "value": -2.5}, "value"),
        ({"mode": "fps", "value": math.inf}, "value"),
        ({"mode": "fps", "value": math.nan}, "value"),
        ({"mode": "fps", "value": True}, "value"),
        ({"mode": "fps", "value": "5"}, "value"),
        ({"mode": "interval", "value": 0}, "value"),
        ({"mode": "interval", "value": 2.5}, "value"),
        ({"mode": "interval", "value": None}, "value"),
        ({"mode": "every"}, "mode"),
    ],
)
def test_bad_sampling_names_its_field(values: dict[str, Any], field: str) -> None:
    assert field_of(Sampling, **values) == field


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"start": -1.0}, "start"),
        ({"end": math.nan}, "end"),
        ({"start": 5, "end": 2}, "end"),
        ({"start": 3, "end": 3}, "end"),
        ({"start": 1.5, "unit": "frames"}, "start"),
        ({"start": 1, "unit": "minutes"}, "unit"),
        ({"start": False}, "start"),
    ],
)
def test_bad_range_names_its_field(values: dict[str, Any], field: str) -> None:
    assert field_of(Range, **values) == field


def test_good_values_pass_unchanged() -> None:
    assert Sampling(mode="interval", value=3).value == 3
    assert Sampling(mode="keyframe").value is None
    assert Sampling().mode == "fps" and Sampling().value is None  # the server fills in its default rate
    assert Range(start=10, end=20, unit="frames").end == 20
    assert Range(start=0.5).end is None


def _request(**source: Any) -> dict[str, Any]:
    return {"input": [{"type": "video_base64", **source}], "steps": [{"model": "detect"}]}


def test_submitted_and_stored_forms_differ_only_in_where_the_media_is() -> None:
    """At submit a base64 input carries its data; once stored it has been staged and carries a URL."""
    ProcessRequest.model_validate(_request(data="AAAA"))
    ProcessRequest.model_validate(_request(url="storage://staged/x.mp4"), context={"stored": True})
    with pytest.raises(ValidationError) as caught:
        ProcessRequest.model_validate(_request(url="storage://staged/x.mp4"))
    assert plan_error(caught.value).field == "input[0]"
    with pytest.raises(ValidationError) as caught:
        ProcessRequest.model_validate(_request(data="AAAA"), context={"stored": True})
    assert plan_error(caught.value).field == "input[0].url"


@pytest.mark.parametrize("max_frames", [0, -1, 2**31 + 1, 2**63, 2.5, "10", True])
def test_max_frames_is_a_bounded_integer(max_frames: object) -> None:
    body = {
        "input": [{"type": "video_url", "url": "https://x/a.mp4", "max_frames": max_frames}],
        "steps": [{"model": "detect"}],
    }
    with pytest.raises(ValidationError) as caught:
        ProcessRequest.model_validate(body)
    assert plan_error(caught.value).field == "input[0].max_frames"
