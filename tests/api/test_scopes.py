"""Scopes on every route: the scope matrix (each scope × every operation: 403 or through), the
table's completeness, its publication in OpenAPI and the README."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.scopes import ROUTE_SCOPES, check_table
from contract.keys import Scope, granted
from tests.api.conftest import Api, assert_error

README = Path(__file__).resolve().parents[2] / "README.md"
_PLACEHOLDERS = {"path": "missing.txt", "n": "0"}


def _operations() -> Iterator[tuple[str, str, str]]:
    """(method, path, operation id) of every operation of the document."""
    for path, item in create_app().openapi()["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation["operationId"]


OPERATIONS = sorted(op for op in _operations() if op[2] in ROUTE_SCOPES)


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: _PLACEHOLDERS.get(m.group(1), f"missing_{m.group(1)}"), path)


@pytest.mark.parametrize("scope", list(Scope))
def test_scope_matrix(client: TestClient, api: Api, scope: Scope) -> None:
    """Every operation with a key of each scope: a 403 ``insufficient_scope`` naming the required scope
    exactly when the hierarchy does not grant it, anything but 401/403 otherwise."""
    _, secret = api.services.keys.create(api.project, (scope.value,), f"matrix-{scope}")
    headers = {"Authorization": f"Bearer {secret}"}
    for method, path, operation in OPERATIONS:
        needed = ROUTE_SCOPES[operation]
        # an endless stream would never answer: a bad Last-Event-ID is refused right after the scope check
        extra = {"Last-Event-ID": "not-an-id"} if operation == "events_stream_events" else {}
        kwargs: dict[str, Any] = {"headers": {**headers, **extra}}
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {}
        response = client.request(method, _concrete(path), **kwargs)
        if granted((scope.value,), needed):
            assert response.status_code not in (401, 403), (operation, scope, response.text)
        else:
            error = assert_error(response, 403, "insufficient_scope")
            assert error["required_scope"] == needed.value, operation


def test_the_hierarchy() -> None:
    assert granted(("admin",), Scope.SEARCH) and granted(("write",), Scope.READ)
    assert not granted(("search",), Scope.READ) and not granted(("read",), Scope.WRITE)
    assert granted(("search", "write"), Scope.WRITE)
    assert granted(("*",), Scope.ADMIN)  # keys made before scopes existed
    assert not granted(("tasks:read", "bogus"), Scope.SEARCH) and not granted((), Scope.SEARCH)


def test_every_authenticated_operation_is_in_the_table() -> None:
    documented = {op for _, _, op in _operations()}
    assert set(ROUTE_SCOPES) <= documented
    secured = {
        item["operationId"]
        for path in create_app().openapi()["paths"].values()
        for item in path.values()
        if item.get("security")
    }
    assert secured == set(ROUTE_SCOPES)
    with pytest.raises(RuntimeError, match="missing \\['video_new'\\]"):
        check_table([*ROUTE_SCOPES, "video_new"])


def test_openapi_publishes_each_operations_scope() -> None:
    for item in create_app().openapi()["paths"].values():
        for operation in item.values():
            if operation["operationId"] in ROUTE_SCOPES:
                assert operation["x-required-scope"] == ROUTE_SCOPES[operation["operationId"]].value
                assert "403" in operation["responses"]


def test_the_readme_publishes_the_table() -> None:
    text = README.read_text()
    for method, path, operation in OPERATIONS:
        row = f"| `{method}` | `{path}` | {ROUTE_SCOPES[operation].value} |"
        assert row in text, row
