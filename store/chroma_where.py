"""The contract's typed filter (:mod:`contract.filters`) in Chroma's ``where`` syntax.

The API's ``where`` happens to be Chroma's syntax, but it is parsed and checked by the contract
(typed, finite, int64, valid Unicode) and translated here, so the index never receives an unchecked
dict and a change of backend changes only this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.filters import FieldFilter, Junction, Where, all_of, parse_conditions, parse_where

__all__ = ["conditions_to_where", "to_chroma"]


def _clause(where: Where) -> dict[str, Any]:
    if isinstance(where, Junction):
        return {where.operator: [_clause(clause) for clause in where.clauses]}
    assert isinstance(where, FieldFilter)
    operand = list(where.operand) if isinstance(where.operand, tuple) else where.operand
    return {where.field: {where.operator: operand}}


def to_chroma(where: Where | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chroma's ``where`` for a typed filter, or for a raw Chroma-style dict (internal lookups: it is
    parsed without the user bound on ``$in``); None or ``{}`` mean no filter."""
    if where is None:
        return None
    if isinstance(where, Mapping):
        if not where:
            return None
        where = parse_where(dict(where), max_in=None)
    return _clause(where)


def conditions_to_where(conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The contract's ``[{field, operator, value, type}]`` (ANDed) as a Chroma where; ``[]`` gives ``{}``.

    Kept for callers of the dict API; new code parses with :func:`contract.filters.parse_conditions`
    and passes the typed value to the index. Raises :class:`contract.filters.FilterError`.
    """
    where = all_of([condition.to_where() for condition in parse_conditions(conditions)])
    return {} if where is None else _clause(where)
