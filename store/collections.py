"""Vector collections of every project: names, bundles and ownership (the vectors are in Chroma).

Another project's collection answers exactly like a missing one (``None``), so ids leak nothing.
Names and metadata are checked on the way in (:func:`contract.filters.check_metadata`: valid Unicode,
finite numbers within int64), because one unencodable value stored would make every listing of the
project fail; and rows are made safe again on the way out (:func:`_safe`), so a row written before
these checks, or by hand, cannot break a listing either.
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from ulid import ULID

from contract.errors import ErrorCode, VisionGridError
from contract.filters import check_metadata, check_text, scalar_problem, text_problem
from store.db import write_transaction
from store.records import CollectionRecord
from store.tables import VectorCollection, utcnow

__all__ = ["CollectionExistsError", "CollectionStore"]


class CollectionExistsError(VisionGridError, ValueError):
    """The project already has a collection of that name: 409 ``collection_exists`` on ``name``."""

    def __init__(self, name: str) -> None:
        super().__init__(
            ErrorCode.COLLECTION_EXISTS, f"a collection named {name!r} already exists in this project", "name"
        )
        self.name = name


_SURROGATE: Final[re.Pattern[str]] = re.compile("[\ud800-\udfff]")


def _safe(value: Any) -> Any:
    """A stored value as it can be sent: lone surrogates replaced, non-finite or oversized numbers None."""
    if isinstance(value, str):
        return value if text_problem(value) is None else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_safe(str(key)): _safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    return value if scalar_problem(value) is None else None


def _record(row: Row[Any]) -> CollectionRecord:
    m = row._mapping
    return CollectionRecord(
        id=m["id"],
        project=m["project"],
        name=_safe(m["name"]),
        model=m["model"],
        metric=m["metric"],
        spaces=tuple(m["spaces"]),
        metadata=dict(_safe(m["metadata"] or {})),
        created_at=m["created_at"],
    )


class CollectionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, project: str, name: str, model: str, metric: str, spaces: builtins.list[str], metadata: dict[str, Any]
    ) -> CollectionRecord:
        check_text(name, "name")
        metadata = check_metadata(metadata, "metadata")
        collection_id = f"vc_{ULID()}".lower()  # lower case: it is part of Chroma collection names
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    sa.insert(VectorCollection).values(
                        id=collection_id,
                        project=project,
                        name=name,
                        model=model,
                        metric=metric,
                        spaces=list(spaces),
                        meta=metadata,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            raise CollectionExistsError(name) from None
        record = self.get(project, collection_id)
        assert record is not None
        return record

    def get(self, project: str, collection_id: str) -> CollectionRecord | None:
        query = sa.select(VectorCollection).where(
            VectorCollection.id == collection_id, VectorCollection.project == project
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def list(self, project: str) -> builtins.list[CollectionRecord]:
        query = (
            sa.select(VectorCollection)
            .where(VectorCollection.project == project)
            .order_by(VectorCollection.created_at, VectorCollection.id)
        )
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def delete(self, project: str, collection_id: str) -> CollectionRecord | None:
        record = self.get(project, collection_id)
        if record is None:
            return None
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.delete(VectorCollection).where(
                    VectorCollection.id == collection_id, VectorCollection.project == project
                )
            )
        return record
