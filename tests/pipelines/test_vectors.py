"""pipelines.vectors: bundles, space names, normalisation and the weighted fusion of search hits."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from contract.errors import PlanError, VisionGridError
from pipelines.vectors import (
    BUNDLES,
    ITEM_KEY,
    KIND_KEY,
    SPACES,
    FusedHit,
    ItemError,
    check_bundle,
    checked_vector,
    fuse,
    fuse_hits,
    item_metadata,
    space_name,
    unit_vector,
)


@dataclass
class Hit:
    id: str
    score: float
    metadata: dict[str, Any]
    document: str | None = None


def hit(item: str, score: float, vector_id: str | None = None, **metadata: Any) -> Hit:
    return Hit(vector_id or item, score, {ITEM_KEY: item, KIND_KEY: "image", **metadata}, f"about {item}")


def test_bundles_name_known_spaces_and_dimensions() -> None:
    assert all(space in SPACES for spaces in BUNDLES.values() for space in spaces)
    assert (SPACES["text"].dim, SPACES["image"].dim, SPACES["face"].dim) == (384, 960, 1024)
    assert check_bundle("multimodal") == ("text", "image")
    with pytest.raises(PlanError) as caught:
        check_bundle("audio")
    assert caught.value.field == "model" and "audio" in caught.value.message
    with pytest.raises(PlanError):
        check_bundle("clip")


def test_space_names_are_chroma_safe() -> None:
    name = space_name("vc_01jabc", "image")
    assert name == "vg_vc_01jabc_image" and name.replace("_", "").isalnum()


def test_unit_vector() -> None:
    assert np.allclose(unit_vector([3, 4]), [0.6, 0.8])
    assert np.allclose(unit_vector([0, 0]), [0, 0])


def test_weights_decide_the_order() -> None:
    hits = {"text": [hit("horses", 0.9), hit("dog", 0.2)], "image": [hit("dog", 0.95), hit("horses", 0.3)]}
    text_heavy = fuse(hits, {"text": 1.0, "image": 0.1}, 2)
    image_heavy = fuse(hits, {"text": 0.1, "image": 1.0}, 2)
    assert [entry["id"] for entry in text_heavy] == ["horses", "dog"]
    assert [entry["id"] for entry in image_heavy] == ["dog", "horses"]
    assert text_heavy[0]["score"] == pytest.approx(0.9 + 0.1 * 0.3)
    assert text_heavy[0]["scores"] == {"text": 0.9, "image": 0.3}


def test_an_item_missing_from_a_space_scores_zero_there_and_top_k_cuts() -> None:
    ranked = fuse({"text": [hit("a", 0.5)], "image": [hit("b", 0.6), hit("c", 0.1)]}, {"text": 1, "image": 1}, 2)
    assert [entry["id"] for entry in ranked] == ["b", "a"]
    assert ranked[1]["scores"] == {"text": 0.5}


def test_several_faces_of_one_image_count_once_with_the_best() -> None:
    faces = [hit("team", 0.4, "team#face0"), hit("team", 0.9, "team#face1"), hit("solo", 0.7, "solo#face0")]
    ranked = fuse({"face": faces}, {"face": 1.0}, 5)
    assert [(entry["id"], entry["score"]) for entry in ranked] == [("team", 0.9), ("solo", 0.7)]


def test_private_metadata_is_hidden_and_kind_reported() -> None:
    [entry] = fuse({"text": [hit("a", 0.5, team="x")]}, {"text": 1}, 1)
    assert entry["metadata"] == {"team": "x"} and entry["kind"] == "image" and entry["text"] == "about a"


def test_item_errors_survive_pickling_across_replicas() -> None:
    error = pickle.loads(pickle.dumps(ItemError("items[2].image", "not_an_image", "bad")))
    assert (error.field, error.code, error.message) == ("items[2].image", "not_an_image", "bad")


def test_item_errors_are_visiongrid_errors() -> None:
    error = ItemError("items[0].image", "image_too_large", "big")
    assert isinstance(error, VisionGridError) and isinstance(error, ValueError)
    assert (error.status, str(error)) == (413, "items[0].image: big")


def test_fused_hits_are_typed_and_match_the_dicts() -> None:
    hits = {"text": [hit("a", 0.5, team="x")], "image": [hit("a", 0.25)]}
    [typed] = fuse_hits(hits, {"text": 1, "image": 2}, 1)
    assert isinstance(typed, FusedHit) and (typed.id, typed.score, typed.kind) == ("a", 1.0, "image")
    assert fuse(hits, {"text": 1, "image": 2}, 1) == [typed.to_dict()]
    assert list(typed.to_dict()) == ["id", "score", "scores", "metadata", "text", "kind"]


def test_checked_vector_names_the_field() -> None:
    space, vector = checked_vector([3.0, 4.0] + [0.0] * 382, None, ("text", "image"), "vector", "space")
    assert space == "text" and np.isclose(np.linalg.norm(vector), 1.0) and unit_vector([3, 4])[0] == np.float32(0.6)
    for values, space_name_, code, field in (
        ([1.0] * 384, "face", "model_mismatch", "space"),
        ([1.0] * 3, None, "dimension_mismatch", "items[0].vector"),
        ([float("inf")] + [0.0] * 383, None, "invalid_request", "items[0].vector"),
        ([float("nan")] * 384, None, "invalid_request", "items[0].vector"),
        ([1e39] * 384, None, "invalid_request", "items[0].vector"),
        ([10**400] * 384, None, "invalid_request", "items[0].vector"),
    ):
        with pytest.raises(ItemError) as caught:
            checked_vector(values, space_name_, ("text", "image"), "items[0].vector", "space")
        assert (caught.value.code, caught.value.field) == (code, field)


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"n": float("inf")}, "items[1].metadata.n"),
        ({"n": 2**63}, "items[1].metadata.n"),
        ({"s": "\ud800"}, "items[1].metadata.s"),
        ({"\ud800": "x"}, "items[1].metadata"),
    ],
)
def test_item_metadata_refuses_what_cannot_be_stored(metadata: dict[str, Any], field: str) -> None:
    with pytest.raises(ItemError) as caught:
        item_metadata(metadata, "items[1].metadata")
    assert (caught.value.code, caught.value.field) == ("invalid_request", field)
    assert item_metadata({"n": 2**63 - 1, "f": 1.5, "b": True}, "m") == {"n": 2**63 - 1, "f": 1.5, "b": True}
