"""Vector collections of every project: names, bundles and ownership (the vectors are in Chroma).

Another project's collection answers exactly like a missing one (``None``), so ids leak nothing.
"""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from ulid import ULID

from store.db import write_transaction
from store.records import CollectionRecord
from store.tables import VectorCollection, utcnow

__all__ = ["CollectionExistsError", "CollectionStore"]


class CollectionExistsError(ValueError):
    """The project already has a collection of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a collection named {name!r} already exists in this project")
        self.name = name


def _record(row: Row[Any]) -> CollectionRecord:
    m = row._mapping
    return CollectionRecord(
        id=m["id"],
        project=m["project"],
        name=m["name"],
        model=m["model"],
        metric=m["metric"],
        spaces=tuple(m["spaces"]),
        metadata=dict(m["metadata"] or {}),
        created_at=m["created_at"],
    )


class CollectionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, project: str, name: str, model: str, metric: str, spaces: builtins.list[str], metadata: dict[str, Any]
    ) -> CollectionRecord:
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
