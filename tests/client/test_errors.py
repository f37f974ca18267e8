"""One exception type per error code, in sync with the contract, chosen by code then by status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from contract.errors import STATUS, ErrorCode
from tools.gen_client_errors import render
from visiongrid.client import errors


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", "http://vg.test/v1/x")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_every_code_has_its_own_class_under_its_status_class() -> None:
    assert set(errors.BY_CODE) == {code.value for code in ErrorCode}
    assert len(set(errors.BY_CODE.values())) == len(ErrorCode), "one type per code"
    for code, cls in errors.BY_CODE.items():
        assert issubclass(cls, errors.BY_STATUS[STATUS[ErrorCode(code)]]) and cls.code_name == code


def test_the_module_is_what_the_generator_writes() -> None:
    """``tools/gen_client_errors.py`` rewrites it from the contract; a new code without a rerun fails."""
    generated = {line.split("(")[0] for line in render().splitlines() if line.startswith("class ")}
    lines = Path(errors.__file__).read_text().splitlines()
    written = {line.split("(")[0] for line in lines if line.startswith("class ")}
    assert generated == written


def test_an_error_answer_becomes_the_class_of_its_code() -> None:
    body = {"error": {"code": "url_not_allowed", "message": "private address", "field": "input[0].url"}}
    error = errors.error_for(_response(400, body))
    assert isinstance(error, errors.UrlNotAllowedError) and isinstance(error, errors.HTTPBadRequestError)
    assert (error.code, error.field, error.message, error.status_code) == (
        "url_not_allowed",
        "input[0].url",
        "private address",
        400,
    )
    limited = errors.error_for(_response(429, {"error": {"code": "rate_limited"}}, {"Retry-After": "7"}))
    assert isinstance(limited, errors.RateLimitedError) and limited.retry_after == "7"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"error": {"code": "a_code_from_a_newer_server"}}, errors.HTTPNotFoundError),
        (502, "<html>bad gateway</html>", errors.HTTPBadGatewayError),
        (418, [], errors.HTTPBadRequestError),
        (504, {}, errors.HTTPInternalServerError),
    ],
)
def test_an_unknown_code_or_body_falls_back_to_its_status(status: int, body: object, expected: type) -> None:
    error = errors.error_for(_response(status, body))
    assert type(error) is expected and error.status_code == status
