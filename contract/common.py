"""What every contract model shares: strictness, the error envelope, list envelopes, and the one
translation of a pydantic ``ValidationError`` into a :class:`PlanError` naming the client's field.

The field path is written the way a client writes the request (``input[0].sampling.value``,
``steps[1].when.class_is[0]``): pydantic's location tuples lose the discriminator tag of a step
(``("steps", 1, "ocr", "when", ...)``) and gain the relative path a cross-field validator reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.errors import ErrorCode, PlanError

__all__ = [
    "STEP_TAGS",
    "ErrorBody",
    "ErrorEnvelope",
    "ListEnvelope",
    "RequestBody",
    "Strict",
    "field_path",
    "plan_error",
    "unicode_problem",
]

#: Discriminator tags of ``steps[]``; pydantic puts the tag into an error's location, clients don't.
STEP_TAGS: Final[frozenset[str]] = frozenset({"detect", "ocr", "feature", "face", "describe"})
_LOCATION_ROOTS: Final[frozenset[str]] = frozenset({"body", "query", "path", "header"})
_SCALAR_TAGS: Final[frozenset[str]] = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})
_SURROGATE: Final[re.Pattern[str]] = re.compile("[\ud800-\udfff]")

T = TypeVar("T")


class Strict(BaseModel):
    """A request object: unknown fields are refused (a typo such as ``max_frame`` must not be silently
    ignored) and non-finite numbers (``1e400``, ``NaN``) are refused wherever a float is expected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def unicode_problem(value: Any, path: str = "") -> PlanError | None:
    """The first string (or object key) under ``value`` that is not valid Unicode — a lone UTF-16
    surrogate such as ``"\\ud800"``, which JSON can carry but UTF-8 cannot — as a :class:`PlanError`
    at its relative path. Such a string stored once breaks every later read of what holds it (a
    project's whole collection list answered 500), and it cannot even be echoed in an error."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return PlanError(at, "contains a lone UTF-16 surrogate (not valid Unicode)")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return PlanError(at, "an object key contains a lone UTF-16 surrogate (not valid Unicode)")
                stack.append((child, f"{at}.{key}" if at else str(key)))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{at}[{index}]") for index, child in enumerate(item))
    return None


class RequestBody(Strict):
    """A whole request body: also refuses invalid Unicode anywhere in it, once, before any field is
    validated (a nested model need not look again)."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        problem = unicode_problem(data)
        if problem is not None:
            raise problem
        return data


class ErrorBody(BaseModel):
    code: ErrorCode = Field(description="stable machine-readable code")
    message: str
    field: str | None = Field(None, description="the offending request field, as the client wrote it")

    model_config = ConfigDict(extra="allow")


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ListEnvelope(BaseModel, Generic[T]):
    """A page of a collection resource."""

    object: Literal["list"] = "list"
    data: list[T]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


def field_path(location: Sequence[int | str], relative: str = "") -> str:
    """``("body", "steps", 1, "ocr", "when", "class_is", 0)`` → ``"steps[1].when.class_is[0]"``;
    ``relative`` (a cross-field validator's own path, ``[2].model`` or ``url``) is appended."""
    parts = list(location)
    if parts and parts[0] in _LOCATION_ROOTS:
        parts = parts[1:]
    path = ""
    previous: int | str | None = None
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in STEP_TAGS:
            pass  # a step's discriminator tag
        elif not str(part).startswith("function-"):
            path += f".{part}" if path else str(part)
        previous = part
    if relative:
        path += relative if relative.startswith("[") or not path else f".{relative}"
    return path


def _is_member_tag(part: object) -> bool:
    """A union member's tag pydantic appends to a location (``str``, ``int``, ``list[str]``...)."""
    return isinstance(part, str) and (part in _SCALAR_TAGS or "[" in part)


def _union_error(errors: list[Any]) -> Any | None:
    """One error for a value no member of a union accepts: at the value's own location, with the most
    telling member's message (``finite_number`` says more than ``string_type``)."""
    first = errors[0]
    location = tuple(first.get("loc", ()))
    if not location or not _is_member_tag(location[-1]):
        return None
    members = [e for e in errors if tuple(e.get("loc", ()))[:-1] == location[:-1] and _is_member_tag(e["loc"][-1])]
    telling = [e for e in members if not str(e["type"]).endswith("_type")] or members
    return {**telling[0], "loc": location[:-1]}


def _first(errors: list[Any]) -> Any:
    """The error to report: the first, except that of several unknown keys of one object the
    alphabetically first is named, so the answer does not depend on the client's key order, and
    that a union's per-member errors are reported once, at the value."""
    first = _union_error(errors) or errors[0]
    if first["type"] != "extra_forbidden":
        return first
    siblings = [e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]]
    return min(siblings, key=lambda error: str(error["loc"][-1]))


def plan_error(error: ValidationError | Sequence[Any], prefix: str = "") -> PlanError:
    """The one :class:`PlanError` a client sees for ``error`` (a ``ValidationError`` or its
    ``errors()``); ``prefix`` is where the validated value sits in the request (``items[3].steps``
    when a batch item's steps were validated on their own)."""
    errors = list(error.errors()) if isinstance(error, ValidationError) else list(error)
    if not errors:
        return PlanError(prefix or "body", "invalid value")
    first = _first(errors)
    location: list[int | str] = list(first.get("loc", ()))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, PlanError):
        field = field_path(location, cause.field or "")
        return PlanError(_prefixed(prefix, field), cause.message, cause.code)
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location.append("model")
    field = _prefixed(prefix, field_path(location))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    if first["type"] == "json_invalid":
        return PlanError("body", f"request body is not valid JSON: {message}", ErrorCode.INVALID_JSON)
    return PlanError(field or "body", message)


def _prefixed(prefix: str, field: str) -> str:
    if not prefix:
        return field
    if not field:
        return prefix
    return prefix + field if field.startswith("[") else f"{prefix}.{field}"
