"""Schema conformance and fuzzing of every route against the live service (schemathesis, bounded).

Positive cases (valid by the document) must get a declared status, a declared content type and a
body matching the declared schema; negative cases (invalid by the document) must be refused with a
4xx error envelope. Nothing may ever answer 5xx. Bounded per operation so the run stays within
about two minutes on 2 cores; hypothesis is derandomised, so a failure reproduces.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Service

EXAMPLES_PER_OPERATION = 8
#: What the HTTP server (not the app) answers to bytes that are not HTTP, e.g. a control char in a header.
_UVICORN_BAD_REQUEST = "Invalid HTTP request received."
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


#: Routes a generated call cannot finish: the lifecycle events stream is endless by design (its
#: validation and framing are tested in tests/api/test_webhooks_routes.py).
ENDLESS = {("GET", "/v1/processing/events/stream")}


@pytest.fixture(scope="module")
def operations(service: Service) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if (op.method.upper(), op.path) not in ENDLESS]


def _exercise(operation: Any, mode: GenerationMode, service: Service) -> None:
    headers = {"Authorization": f"Bearer {service.key_a}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers, timeout=30, allow_redirects=False)
        if mode is GenerationMode.POSITIVE:
            case.validate_response(response, checks=CONFORMANCE)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
        if response.status_code >= 400 and response.text != _UVICORN_BAD_REQUEST:  # h11 refused the bytes
            error = response.json()["error"]
            assert error["code"] and isinstance(error["message"], str), response.text

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_every_route_conforms_and_never_answers_5xx(
    operations: list[Any], mode: GenerationMode, service: Service
) -> None:
    assert len(operations) >= 36, "every route is in the document"
    failures = []
    for operation in operations:
        try:
            _exercise(operation, mode, service)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # a route without inputs has no invalid request
        except Exception as error:  # collect every operation's failure, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)
