"""CollectionStore: per-project vector collections (names unique per project, no leaks across projects)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from store.collections import CollectionExistsError, CollectionStore


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
