"""CollectionStore: per-project vector collections (names unique per project, no leaks across projects)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contract.errors import VisionGridError
from store.collections import CollectionExistsError, CollectionStore
from store.tables import VectorCollection


@pytest.fixture
def collections(engine: Engine) -> CollectionStore:
    return CollectionStore(engine)


def test_create_get_list_delete(collections: CollectionStore) -> None:
    made = collections.create("a", "photos", "multimodal", "cosine", ["text", "image"], {"team": "x", "n": 2})
    assert made.id.startswith("vc_") and made.id == made.id.lower()
    assert (made.name, made.model, made.metric, made.spaces) == ("photos", "multimodal", "cosine", ("text", "image"))
    assert made.metadata == {"team": "x", "n": 2}
    assert collections.get("a", made.id) == made
    second = collections.create("a", "faces", "face", "cosine", ["face"], {})
    assert [record.id for record in collections.list("a")] == [made.id, second.id]
    assert collections.delete("a", made.id) == made
    assert collections.get("a", made.id) is None
    assert collections.delete("a", made.id) is None


def test_names_are_unique_per_project_only(collections: CollectionStore) -> None:
    collections.create("a", "photos", "text", "cosine", ["text"], {})
    with pytest.raises(CollectionExistsError) as caught:
        collections.create("a", "photos", "image", "l2", ["image"], {})
    assert caught.value.name == "photos"
    assert collections.create("b", "photos", "text", "cosine", ["text"], {}).project == "b"


def test_another_projects_collection_does_not_exist(collections: CollectionStore) -> None:
    made = collections.create("a", "photos", "text", "cosine", ["text"], {})
    assert collections.get("b", made.id) is None
    assert collections.list("b") == []
    assert collections.delete("b", made.id) is None
    assert collections.get("a", made.id) is not None


@pytest.mark.parametrize(
    ("name", "metadata", "field"),
    [
        ("bad\ud800", {}, "name"),
        ("photos", {"k": "v\udfff"}, "metadata.k"),
        ("photos", {"\ud800": 1}, "metadata"),
        ("photos", {"n": float("inf")}, "metadata.n"),
        ("photos", {"n": float("nan")}, "metadata.n"),
        ("photos", {"n": 2**63}, "metadata.n"),
        ("photos", {"n": -(2**63) - 1}, "metadata.n"),
    ],
)
def test_unstorable_names_and_metadata_are_refused(
    collections: CollectionStore, name: str, metadata: dict[str, object], field: str
) -> None:
    """A lone surrogate, a non-finite number or an integer beyond int64: 400 naming the field, nothing stored."""
    with pytest.raises(VisionGridError) as caught:
        collections.create("a", name, "text", "cosine", ["text"], metadata)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field, caught.value.status) == ("invalid_request", field, 400)
    assert collections.list("a") == []
    assert collections.create("a", "photos", "text", "cosine", ["text"], {"n": 2**63 - 1}).metadata == {"n": 2**63 - 1}


def test_a_bad_row_already_stored_cannot_break_the_listing(collections: CollectionStore, engine: Engine) -> None:
    """Rows written before the checks (or by hand) are made sendable when read."""
    good = collections.create("a", "photos", "text", "cosine", ["text"], {"k": "v"})
    with engine.begin() as conn:
        conn.execute(sa.update(VectorCollection).values(meta={"k": "v\ud800", "n": float("nan"), "m": 2**70}))
    (record,) = collections.list("a")
    assert record.id == good.id and record.metadata == {"k": "v\ufffd", "n": None, "m": None}
    json.dumps(record.metadata, allow_nan=False).encode("utf-8")


def test_collection_exists_error_is_a_409_on_name(collections: CollectionStore) -> None:
    collections.create("a", "photos", "text", "cosine", ["text"], {})
    with pytest.raises(CollectionExistsError) as caught:
        collections.create("a", "photos", "text", "cosine", ["text"], {})
    assert (caught.value.code, caught.value.field, caught.value.status) == ("collection_exists", "name", 409)
    assert caught.value.message == "a collection named 'photos' already exists in this project"
