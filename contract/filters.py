"""The filter language of the vectors API, as typed values: ``where`` expressions and ``conditions``.

``where`` is Chroma-style (``{field: scalar}``, ``{field: {"$op": operand}}`` with $eq $ne $gt $gte
$lt $lte $in $nin, ``{"$and" | "$or": [where, ...]}``, one key per object); ``conditions`` is the
contract's ``[{field, operator, value, type}]``, ANDed. Both parse into the same frozen values
(:class:`FieldFilter`, :class:`Junction`), so the store translates one shape into its backend's
syntax and nothing downstream re-checks a dict. A refusal is a :class:`FilterError`
(``invalid_filter``) naming the part (``where.$and[1].n.$regex``, ``conditions[1].operator``); it is
not a ``ValueError``, so raised inside a pydantic validator it passes through with code and path.

Scalars are checked here once, for filters and for the metadata they compare against
(:func:`scalar_problem`): numbers finite (JSON's ``1e400`` parses to infinity, Python accepts
``NaN``), integers within int64 (what Chroma stores; beyond, it answers 500), strings valid Unicode
(a lone surrogate such as ``"\ud800"`` cannot be encoded as UTF-8 and breaks every later read).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeAlias, cast, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from contract.errors import ErrorCode, VisionGridError

Scalar: TypeAlias = str | int | float | bool
Operator = Literal["equals", "not_equals", "gt", "gte", "lt", "lte", "in", "not_in"]
ValueType = Literal["string", "number", "boolean"]
WhereOperator = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]
JunctionOperator = Literal["$and", "$or"]

INT64_MIN: Final[int] = -(2**63)
INT64_MAX: Final[int] = 2**63 - 1
MAX_IN_VALUES: Final[int] = 1000
MAX_DEPTH: Final[int] = 32  # nesting of $and / $or; deeper is an attack, not a query
FIELD_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
_FIELD_RULE: Final[str] = "must be a metadata field name (letters, digits, _ . : -; at most 128 characters)"
#: condition operator -> where operator (the two Literals list them in the same order)
OPERATORS: Final[dict[str, WhereOperator]] = dict(zip(get_args(Operator), get_args(WhereOperator), strict=True))
_TYPE_OPERATORS: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({"equals", "not_equals", "in", "not_in"}),
    "number": frozenset(OPERATORS),
    "boolean": frozenset({"equals", "not_equals", "in", "not_in"}),
}
_WHERE_OPERATORS: Final[frozenset[str]] = frozenset(get_args(WhereOperator))
_CONDITION_KEYS: Final[frozenset[str]] = frozenset({"field", "operator", "value", "type"})


class FilterError(VisionGridError):
    """An invalid filter (400 ``invalid_filter``); ``field_path`` names the offending part."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(ErrorCode.INVALID_FILTER, message, field_path)
        self.field_path = field_path


class MetadataError(VisionGridError, ValueError):
    """Metadata (or a name) that cannot be stored (400 ``invalid_request``), naming the field.

    A ``ValueError``, unlike :class:`FilterError`: inside a pydantic model it becomes a validation
    error at the exact location of the value (``items[3].metadata.year``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message, field)


# --- scalars -------------------------------------------------------------------------------------


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (not valid Unicode)"
    return None


def scalar_problem(value: object) -> str | None:
    """Why ``value`` is not a storable scalar (string, finite number within int64, boolean), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else "integers must fit in 64 bits (-2^63 .. 2^63-1)"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number (no NaN or infinity)"
    return "must be a string, number or boolean"


def scalar_kind(value: object) -> ValueType | None:
    """The type of a storable scalar, or None when it is not one (see :func:`scalar_problem`)."""
    if scalar_problem(value) is not None:
        return None
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def check_text(text: str, field: str) -> str:
    """``text`` if it can be stored, else :class:`MetadataError` naming ``field``."""
    problem = text_problem(text)
    if problem is not None:
        raise MetadataError(field, problem)
    return text


def check_metadata(metadata: Mapping[str, object], field: str = "metadata") -> dict[str, Scalar]:
    """Metadata as stored: string keys, storable scalar values; else :class:`MetadataError`.

    A bad value is named ``<field>.<key>``; a bad key is named by ``field`` (the key itself may not
    be printable into a JSON error body) with the key escaped in the message.
    """
    checked: dict[str, Scalar] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or text_problem(key) is not None:
            raise MetadataError(field, f"key {key!a}: keys must be valid Unicode strings")
        problem = scalar_problem(value)
        if problem is not None:
            raise MetadataError(f"{field}.{key}", problem)
        checked[key] = value  # type: ignore[assignment]  # scalar_problem(value) is None: a Scalar
    return checked


def _scalar_or_value_error(value: Scalar) -> Scalar:
    problem = scalar_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _text_or_value_error(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


#: A metadata value for pydantic models: a storable scalar (the error sits at the value's location).
MetadataValue = Annotated[Scalar, AfterValidator(_scalar_or_value_error)]
#: Metadata for pydantic models: valid-Unicode keys, storable scalar values.
Metadata = dict[Annotated[str, AfterValidator(_text_or_value_error)], MetadataValue]


# --- where ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldFilter:
    """``{field: {operator: operand}}``; ``$in`` / ``$nin`` take a non-empty tuple of one type."""

    field: str
    operator: WhereOperator
    operand: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class Junction:
    """``{"$and" | "$or": [clauses...]}``, two clauses at least."""

    operator: JunctionOperator
    clauses: tuple[FieldFilter | Junction, ...]


Where: TypeAlias = FieldFilter | Junction


def _check_field(field: object, path: str) -> str:
    if not isinstance(field, str) or not FIELD_RE.match(field):
        raise FilterError(path, _FIELD_RULE)
    return field


def _bad_scalar(value: object) -> str | None:
    """What is wrong with a value of a scalar type that still cannot be stored (surrogate, infinity,
    beyond int64), or None; values of other types are judged by the caller."""
    return scalar_problem(value) if isinstance(value, str | int | float) else None


def _operand(operator: str, operand: object, op_path: str, max_in: int | None) -> Scalar | tuple[Scalar, ...]:
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list | tuple) or not operand or (max_in is not None and len(operand) > max_in):
            bound = "" if max_in is None else f" of at most {max_in} values"
            raise FilterError(op_path, f"needs a non-empty list{bound}")
        for position, element in enumerate(operand):
            problem = _bad_scalar(element)
            if problem is not None:
                raise FilterError(f"{op_path}[{position}]", problem)
        kinds = {scalar_kind(element) for element in operand}
        if None in kinds or len(kinds) != 1:
            raise FilterError(op_path, "values must all be strings, all numbers or all booleans")
        return tuple(operand)
    problem = _bad_scalar(operand)
    if problem is not None:
        raise FilterError(op_path, problem)
    kind = scalar_kind(operand)
    if operator in ("$gt", "$gte", "$lt", "$lte") and kind != "number":
        raise FilterError(op_path, "compares numbers only")
    if kind is None:
        raise FilterError(op_path, "must be a string, number or boolean")
    return operand  # type: ignore[return-value]  # scalar_kind(operand) is not None: a Scalar


def _field_filter(key: str, value: object, path: str, max_in: int | None) -> FieldFilter:
    field_path = f"{path}.{key}"
    _check_field(key, field_path)
    if not isinstance(value, dict):
        problem = _bad_scalar(value)
        if problem is not None:
            raise FilterError(field_path, problem)
        if scalar_kind(value) is None:
            raise FilterError(field_path, "must be a string, number, boolean or an operator expression")
        return FieldFilter(key, "$eq", value)  # type: ignore[arg-type]  # checked scalar
    if len(value) != 1:
        raise FilterError(field_path, "an operator expression has exactly one operator")
    ((operator, operand),) = value.items()
    op_path = f"{field_path}.{operator}"
    if operator not in _WHERE_OPERATORS:
        raise FilterError(op_path, f"unknown operator (allowed: {', '.join(sorted(_WHERE_OPERATORS))})")
    return FieldFilter(key, operator, _operand(operator, operand, op_path, max_in))


def parse_where(where: object, path: str = "where", *, max_in: int | None = MAX_IN_VALUES, depth: int = 0) -> Where:
    """A Chroma-style where as a typed value; :class:`FilterError` naming the bad part.

    ``max_in`` bounds the values of one $in / $nin (user input); None lifts it (internal lookups by id).
    """
    if not isinstance(where, dict):
        raise FilterError(path, "must be an object")
    if len(where) != 1:
        raise FilterError(path, "must have exactly one key (combine several with $and / $or)")
    ((key, value),) = where.items()
    if key in ("$and", "$or"):
        if not isinstance(value, list) or len(value) < 2:
            raise FilterError(f"{path}.{key}", "must be a list of at least two where expressions")
        if depth >= MAX_DEPTH:
            raise FilterError(f"{path}.{key}", f"nests $and / $or more than {MAX_DEPTH} levels deep")
        clauses = tuple(
            parse_where(expression, f"{path}.{key}[{index}]", max_in=max_in, depth=depth + 1)
            for index, expression in enumerate(value)
        )
        return Junction(key, clauses)
    if not isinstance(key, str) or key.startswith("$"):
        raise FilterError(f"{path}.{key}", "unknown operator (allowed at this level: $and, $or, or a field name)")
    return _field_filter(key, value, path, max_in)


def validate_where(where: object, path: str = "where", *, max_in: int | None = MAX_IN_VALUES) -> None:
    """Check a Chroma-style where (see :func:`parse_where`), raising :class:`FilterError`."""
    parse_where(where, path, max_in=max_in)


def where_to_json(where: Where | None) -> dict[str, Any] | None:
    """The wire form of a typed where (``{field: {"$op": operand}}``, lists for $in / $nin)."""
    if where is None:
        return None
    if isinstance(where, Junction):
        return {where.operator: [where_to_json(clause) for clause in where.clauses]}
    operand = list(where.operand) if isinstance(where.operand, tuple) else where.operand
    return {where.field: {where.operator: operand}}


def all_of(clauses: Sequence[Where | None]) -> Where | None:
    """The AND of the given clauses (None ones skipped): None, the one clause, or a ``$and``."""
    present = tuple(clause for clause in clauses if clause is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else Junction("$and", present)


# --- conditions ----------------------------------------------------------------------------------


class Condition(BaseModel):
    """One condition of ``conditions`` (all are ANDed). ``type`` defaults to the value's type;
    ``gt``/``gte``/``lt``/``lte`` apply to numbers only; ``in``/``not_in`` take a non-empty list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    operator: Operator
    value: Scalar | list[Scalar]
    type: ValueType | None = None

    def to_where(self) -> FieldFilter:
        """The same test as a where clause."""
        value = tuple(self.value) if isinstance(self.value, list) else self.value
        return FieldFilter(self.field, OPERATORS[self.operator], value)


def _value_of_type(value: object, kind: str, path: str) -> None:
    if kind == "string":
        matches = isinstance(value, str)
    elif kind == "boolean":
        matches = isinstance(value, bool)
    else:
        matches = isinstance(value, int | float) and not isinstance(value, bool)
    if not matches:
        raise FilterError(path, f"must be a {kind}; got {value!r}")
    problem = scalar_problem(value)
    if problem is not None:
        raise FilterError(path, problem)


def _condition(condition: object, path: str) -> Condition:
    if isinstance(condition, Condition):
        condition = condition.model_dump()
    if not isinstance(condition, Mapping):
        raise FilterError(path, "must be an object with field, operator and value")
    unknown = sorted(set(condition) - _CONDITION_KEYS)
    if unknown:
        raise FilterError(f"{path}.{unknown[0]}", "unknown key (allowed: field, operator, value, type)")
    for key in ("field", "operator", "value"):
        if key not in condition:
            raise FilterError(f"{path}.{key}", "is required")
    field = _check_field(condition["field"], f"{path}.field")
    operator = condition["operator"]
    if operator not in OPERATORS:
        raise FilterError(f"{path}.operator", f"must be one of {', '.join(OPERATORS)}; got {operator!r}")
    value = condition["value"]
    listed = operator in ("in", "not_in")
    kind = condition.get("type")
    if kind is None:
        sample = value[0] if listed and isinstance(value, list) and value else value
        kind = "boolean" if isinstance(sample, bool) else "string" if isinstance(sample, str) else "number"
    if kind not in _TYPE_OPERATORS:
        raise FilterError(f"{path}.type", f"must be string, number or boolean; got {kind!r}")
    if operator not in _TYPE_OPERATORS[kind]:
        raise FilterError(f"{path}.operator", f"{operator} does not apply to a {kind}")
    if listed:
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise FilterError(f"{path}.value", f"{operator} needs a list of 1 to {MAX_IN_VALUES} values")
        for position, element in enumerate(value):
            _value_of_type(element, kind, f"{path}.value[{position}]")
    else:
        _value_of_type(value, kind, f"{path}.value")
    return Condition.model_construct(field=field, operator=operator, value=value, type=cast(ValueType, kind))


def parse_conditions(conditions: object, path: str = "conditions") -> tuple[Condition, ...]:
    """The contract's ``[{field, operator, value, type}]`` as typed conditions (``type`` resolved).

    ``type`` (string | number | boolean, default: inferred from the value) must match the value, and
    the operator must suit the type. Raises :class:`FilterError` with a path such as
    ``conditions[1].operator``.
    """
    if not isinstance(conditions, list | tuple):
        raise FilterError(path, "must be a list of conditions")
    return tuple(_condition(condition, f"{path}[{index}]") for index, condition in enumerate(conditions))


# --- pydantic field types ------------------------------------------------------------------------


def _where_field(value: object) -> Where | None:
    if value is None or value == {}:  # an empty where means no filter
        return None
    if isinstance(value, FieldFilter | Junction):
        return value
    return parse_where(value)


def _conditions_field(value: object) -> tuple[Condition, ...] | None:
    return None if value is None else parse_conditions(value)


_WHERE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": 'Chroma-style filter: {"field": value}, {"field": {"$op": operand}} with $eq $ne $gt '
    '$gte $lt $lte $in $nin, or {"$and" | "$or": [where, where, ...]}; one key per object',
    "additionalProperties": True,
    "examples": [{"$and": [{"kind": "photo"}, {"year": {"$gte": 2020}}]}],
}

#: ``where`` in a request model: parsed into a typed :data:`Where` (None when absent or ``{}``).
WhereField = Annotated[
    Where | None,
    PlainValidator(_where_field),
    PlainSerializer(where_to_json),
    WithJsonSchema({"anyOf": [_WHERE_SCHEMA, {"type": "null"}]}),
]
#: ``conditions`` in a request model: typed conditions with ``type`` resolved (FilterError names
#: ``conditions[i]...``; the schema is the list of :class:`Condition`).
Conditions = Annotated[tuple[Condition, ...] | None, BeforeValidator(_conditions_field)]
