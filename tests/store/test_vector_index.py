"""store.vector_index against a real Chroma server (session fixture ``chroma_settings``, its own venv)."""

from __future__ import annotations

import pickle
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.filters import all_of, parse_conditions, parse_where
from store.chroma_where import to_chroma
from store.vector_index import (
    DimensionMismatch,
    FilterError,
    InvalidSpaceName,
    SpaceExists,
    SpaceNotFound,
    VectorIndex,
    VectorInputError,
    VectorStoreUnavailable,
    conditions_to_where,
    score_from_distance,
    validate_where,
)
from tests.chroma import chroma_test_settings
from visiongrid.chroma_server import chroma_answers, start_local_chroma, stop_local_chroma
from visiongrid.settings import Settings

DIM = 16


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def index(chroma_settings: Settings) -> VectorIndex:
    return VectorIndex(chroma_settings)


@pytest.fixture
def space(index: VectorIndex) -> Iterator[str]:
    name = f"vg_test_{uuid.uuid4().hex[:12]}_text"
    index.create_space(name, dim=DIM, metric="cosine")
    yield name
    index.drop_space(name)


@pytest.fixture(scope="module")
def filled(index: VectorIndex) -> Iterator[tuple[str, np.ndarray]]:
    """40 items: n = 0..39, kind = even/odd, flag = n % 3 == 0, score = n / 10."""
    name = f"vg_test_{uuid.uuid4().hex[:12]}_filters"
    index.create_space(name, dim=DIM, metric="cosine")
    vectors = unit(np.random.default_rng(1).normal(size=(40, DIM)))
    metadatas = [
        {"n": n, "kind": "even" if n % 2 == 0 else "odd", "flag": n % 3 == 0, "score": n / 10} for n in range(40)
    ]
    index.upsert(name, [f"id{n}" for n in range(40)], vectors, metadatas, [f"doc {n}" for n in range(40)])
    yield name, vectors
    index.drop_space(name)


def ns(hits: list[Any]) -> set[int]:
    return {int(hit.metadata["n"]) for hit in hits}


def test_upsert_query_nearest_is_itself(index: VectorIndex, space: str) -> None:
    vectors = unit(np.random.default_rng(0).normal(size=(50, DIM)))
    index.upsert(space, [f"v{i}" for i in range(50)], vectors, [{"i": i} for i in range(50)])
    assert index.count(space) == 50
    for i in (0, 17, 49):
        hits = index.query(space, vectors[i], top_k=5)
        assert hits[0].id == f"v{i}"
        assert hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].metadata == {"i": i}
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    both = index.query_many(space, vectors[:2], top_k=1)
    assert [row[0].id for row in both] == ["v0", "v1"]


def test_upsert_is_idempotent_and_replaces(index: VectorIndex, space: str) -> None:
    vectors = unit(np.random.default_rng(2).normal(size=(3, DIM)))
    index.upsert(space, ["a", "b", "c"], vectors, [{"v": 1}, {}, None], ["doc a", None, "doc c"])
    index.upsert(space, ["a", "b", "c"], vectors, [{"v": 1}, {}, None], ["doc a", None, "doc c"])
    assert index.count(space) == 3
    index.upsert(space, ["a"], vectors[2:3], [{"v": 2}], ["new a"])
    assert index.count(space) == 3
    hit = index.query(space, vectors[2], top_k=2)
    assert {h.id for h in hit} == {"a", "c"}
    items, _ = index.get(space, limit=10, ids=["a"], include_vectors=True)
    assert items[0].metadata == {"v": 2} and items[0].document == "new a"
    assert items[0].vector is not None and np.allclose(items[0].vector, vectors[2], atol=1e-6)
    with pytest.raises(VectorInputError):
        index.upsert(space, ["x", "x"], vectors[:2])
    with pytest.raises(VectorInputError):
        index.upsert(space, ["x"], vectors[:2])


def test_dimension_mismatch(index: VectorIndex, space: str) -> None:
    with pytest.raises(DimensionMismatch) as raised:  # checked before Chroma has fixed a dimension
        index.upsert(space, ["a"], np.ones((1, DIM + 1)))
    assert (raised.value.expected, raised.value.got) == (DIM, DIM + 1)
    index.upsert(space, ["a"], np.ones((1, DIM)))
    with pytest.raises(DimensionMismatch):
        index.query(space, np.ones(DIM - 1), top_k=1)
    assert index.space(space).dim == DIM
    assert VectorIndex(index_settings(index)).space(space).dim == DIM  # read back from the server


def index_settings(index: VectorIndex) -> Settings:
    return Settings(chroma_url=index._url, chroma_timeout_s=5.0)


def test_space_lifecycle(index: VectorIndex) -> None:
    name = f"vg_test_{uuid.uuid4().hex[:12]}_life"
    info = index.create_space(name, dim=8, metric="ip")
    assert (info.dim, info.metric) == (8, "ip")
    with pytest.raises(SpaceExists):
        index.create_space(name, dim=8, metric="ip")
    assert index.create_space(name, dim=8, metric="ip", exist_ok=True) == info
    with pytest.raises(SpaceExists):
        index.create_space(name, dim=9, metric="ip", exist_ok=True)
    index.upsert(name, ["a"], np.ones((1, 8)))
    index.drop_space(name)
    index.drop_space(name)  # missing: no error
    with pytest.raises(SpaceNotFound):
        index.count(name)
    with pytest.raises(SpaceNotFound):
        index.query(name, np.ones(8), top_k=1)
    for bad in ("ab", "-abc", "abc-", "a b c", "x" * 513, "vg/1"):
        with pytest.raises(InvalidSpaceName):
            index.create_space(bad, dim=8, metric="cosine")
    index.check_space_name("vg_01JABCDEF0123456789ABCDEFG_text")


def test_space_recreated_elsewhere_is_refetched(index: VectorIndex, chroma_settings: Settings) -> None:
    """A cached handle whose id the server no longer knows (dropped and re-created by another process)."""
    name = f"vg_test_{uuid.uuid4().hex[:12]}_stale"
    index.create_space(name, dim=4, metric="cosine")
    index.upsert(name, ["old"], np.ones((1, 4)))
    other = VectorIndex(chroma_settings)
    other.drop_space(name)
    other.create_space(name, dim=4, metric="cosine")
    other.upsert(name, ["new"], np.ones((1, 4)))
    assert [h.id for h in index.query(name, np.ones(4), top_k=5)] == ["new"]
    index.drop_space(name)


def test_scores_per_metric(index: VectorIndex) -> None:
    a, q = unit(np.array([[1.0, 2.0, 0.5, 0.0]])), unit(np.array([[0.3, -1.0, 2.0, 0.2]]))
    cosine = float(a[0] @ q[0])
    for metric in ("cosine", "l2", "ip"):
        name = f"vg_test_{uuid.uuid4().hex[:12]}_{metric}"
        index.create_space(name, dim=4, metric=metric)  # type: ignore[arg-type]
        try:
            index.upsert(name, ["a"], a)
            (hit,) = index.query(name, q[0], top_k=1)
            assert hit.score == pytest.approx(cosine, abs=1e-5), metric
            assert score_from_distance(metric, hit.distance) == hit.score  # type: ignore[arg-type]
        finally:
            index.drop_space(name)


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("equals", 7, {7}),
        ("not_equals", 7, set(range(40)) - {7}),
        ("gt", 36, {37, 38, 39}),
        ("gte", 37, {37, 38, 39}),
        ("lt", 2, {0, 1}),
        ("lte", 1, {0, 1}),
        ("in", [3, 5, 99], {3, 5}),
        ("not_in", list(range(3, 40)), {0, 1, 2}),
    ],
)
def test_every_operator(
    index: VectorIndex, filled: tuple[str, np.ndarray], operator: str, value: object, expected: set[int]
) -> None:
    name, vectors = filled
    where = conditions_to_where([{"field": "n", "operator": operator, "value": value, "type": "number"}])
    assert ns(index.query(name, vectors[0], top_k=40, where=where)) == expected
    items, _ = index.get(name, limit=100, where=where)
    assert {int(i.metadata["n"]) for i in items} == expected


def test_conditions_are_anded_across_types(index: VectorIndex, filled: tuple[str, np.ndarray]) -> None:
    name, vectors = filled
    where = conditions_to_where(
        [
            {"field": "kind", "operator": "equals", "value": "even", "type": "string"},
            {"field": "flag", "operator": "equals", "value": True, "type": "boolean"},
            {"field": "score", "operator": "lt", "value": 2.5, "type": "number"},
        ]
    )
    assert where == {"$and": [{"kind": {"$eq": "even"}}, {"flag": {"$eq": True}}, {"score": {"$lt": 2.5}}]}
    assert ns(index.query(name, vectors[5], top_k=40, where=where)) == {0, 6, 12, 18, 24}
    strings = conditions_to_where([{"field": "kind", "operator": "in", "value": ["odd"], "type": "string"}])
    assert ns(index.query(name, vectors[0], top_k=40, where=strings)) == set(range(1, 40, 2))
    # a Chroma-style where passed straight through
    direct = {"$or": [{"n": 3}, {"kind": {"$eq": "odd"}, "x": 1}]}
    with pytest.raises(FilterError) as raised:
        index.query(name, vectors[0], top_k=5, where=direct)
    assert raised.value.field_path == "where.$or[1]"
    direct = {"$or": [{"n": 2}, {"n": {"$gte": 38}}]}
    assert ns(index.query(name, vectors[0], top_k=40, where=direct)) == {2, 38, 39}
    assert conditions_to_where([]) == {}
    assert len(index.query(name, vectors[0], top_k=3, where={})) == 3


@pytest.mark.parametrize(
    ("conditions", "path"),
    [
        (
            [{"field": "n", "operator": "equals", "value": 1}, {"field": "n", "operator": "like", "value": 1}],
            "conditions[1].operator",
        ),
        ([{"field": "kind", "operator": "gt", "value": "a", "type": "string"}], "conditions[0].operator"),
        ([{"field": "flag", "operator": "lte", "value": True, "type": "boolean"}], "conditions[0].operator"),
        ([{"field": "n", "operator": "equals", "value": "7", "type": "number"}], "conditions[0].value"),
        ([{"field": "n", "operator": "equals", "value": True, "type": "number"}], "conditions[0].value"),
        ([{"field": "n", "operator": "equals", "value": 1, "type": "date"}], "conditions[0].type"),
        ([{"field": "n", "operator": "in", "value": [], "type": "number"}], "conditions[0].value"),
        ([{"field": "n", "operator": "in", "value": [1, "2"], "type": "number"}], "conditions[0].value[1]"),
        ([{"field": "n", "operator": "in", "value": 3, "type": "number"}], "conditions[0].value"),
        ([{"field": "$and", "operator": "equals", "value": 1}], "conditions[0].field"),
        ([{"operator": "equals", "value": 1}], "conditions[0].field"),
        ([{"field": "n", "operator": "equals", "value": 1, "extra": 1}], "conditions[0].extra"),
        (["n = 1"], "conditions[0]"),
    ],
)
def test_bad_conditions_name_the_path(conditions: list[Any], path: str) -> None:
    with pytest.raises(FilterError) as raised:
        conditions_to_where(conditions)
    assert raised.value.field_path == path


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ({"n": {"$foo": 1}}, "where.n.$foo"),
        ({"$not": [{"n": 1}, {"n": 2}]}, "where.$not"),
        ({"$and": [{"n": 1}]}, "where.$and"),
        ({"$and": [{"n": 1}, {"n": {"$regex": "x"}}]}, "where.$and[1].n.$regex"),
        ({"n": {"$gt": "a"}}, "where.n.$gt"),
        ({"n": {"$in": [1, "a"]}}, "where.n.$in"),
        ({"n": [1, 2]}, "where.n"),
        ({"n": 1, "m": 2}, "where"),
    ],
)
def test_validate_where_names_the_path(where: dict[str, Any], path: str) -> None:
    with pytest.raises(FilterError) as raised:
        validate_where(where)
    assert raised.value.field_path == path


def test_listing_with_cursor_and_delete(index: VectorIndex, space: str) -> None:
    vectors = unit(np.random.default_rng(3).normal(size=(25, DIM)))
    ids = [f"item{i:02d}" for i in range(25)]
    index.upsert(space, ids, vectors, [{"i": i} for i in range(25)])
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        items, offset = index.get(space, limit=10, offset=offset)
        seen += [item.id for item in items]
        pages += 1
    assert pages == 3 and sorted(seen) == ids
    items, cursor = index.get(space, limit=25)
    assert len(items) == 25 and cursor is None
    index.delete(space, [*ids[:5], "missing"])
    assert index.count(space) == 20
    assert all(hit.id not in ids[:5] for hit in index.query(space, vectors[0], top_k=10))
    filtered, cursor = index.get(space, limit=3, where={"i": {"$gte": 20}})
    assert len(filtered) == 3 and cursor == 3
    rest, cursor = index.get(space, limit=3, offset=3, where={"i": {"$gte": 20}})
    assert len(rest) == 2 and cursor is None


def test_unavailable_then_recovers(tmp_path: Path) -> None:
    """Chroma stopped → VectorStoreUnavailable; restarted on the same port and data dir → same object works."""
    settings = chroma_test_settings(tmp_path / "data").model_copy(update={"chroma_timeout_s": 2.0})
    proc = start_local_chroma(settings)
    assert proc is not None
    try:
        index = VectorIndex(settings)
        index.create_space("vg_restart_text", dim=4, metric="cosine")
        index.upsert("vg_restart_text", ["a", "b"], np.eye(4)[:2], [{"n": 1}, {"n": 2}])
        stop_local_chroma(proc)
        assert not chroma_answers(settings.chroma_url)
        with pytest.raises(VectorStoreUnavailable):
            index.query("vg_restart_text", np.eye(4)[0], top_k=1)
        with pytest.raises(VectorStoreUnavailable):
            index.count("vg_restart_text")
        with pytest.raises(VectorStoreUnavailable):  # a new client cannot even be created
            VectorIndex(settings).count("vg_restart_text")
        proc = start_local_chroma(settings)
        assert proc is not None
        assert [h.id for h in index.query("vg_restart_text", np.eye(4)[0], top_k=1)] == ["a"]
        assert index.count("vg_restart_text") == 2
        assert VectorIndex(settings).count("vg_restart_text") == 2
    finally:
        stop_local_chroma(proc)


def test_start_is_a_no_op_when_remote_or_running(chroma_settings: Settings, tmp_path: Path) -> None:
    assert start_local_chroma(chroma_settings.model_copy(update={"chroma_local_server": True})) is None
    remote = chroma_settings.model_copy(update={"chroma_url": "http://10.1.2.3:8100", "chroma_local_server": True})
    assert start_local_chroma(remote) is None
    missing = chroma_test_settings(tmp_path).model_copy(update={"chroma_server_venv": tmp_path / "no-venv"})
    with pytest.raises(RuntimeError, match=re.escape("pip install 'chromadb==1.5.9'")):
        start_local_chroma(missing)


# --- typed filters and bad input --------------------------------------------------------------------


def test_typed_filters_query_like_their_dicts(index: VectorIndex, filled: tuple[str, np.ndarray]) -> None:
    """The contract's typed where and conditions reach Chroma through one translation (store.chroma_where)."""
    name, vectors = filled
    where = parse_where({"$or": [{"n": 2}, {"n": {"$gte": 38}}]})
    assert to_chroma(where) == {"$or": [{"n": {"$eq": 2}}, {"n": {"$gte": 38}}]}
    assert ns(index.query(name, vectors[0], top_k=40, where=where)) == {2, 38, 39}
    conditions = parse_conditions(
        [{"field": "kind", "operator": "in", "value": ["odd"]}, {"field": "n", "operator": "lt", "value": 6}]
    )
    both = all_of([where, *(condition.to_where() for condition in conditions)])
    assert ns(index.query(name, vectors[0], top_k=40, where=both)) == set()
    items, _ = index.get(name, limit=100, where=all_of([c.to_where() for c in conditions]))
    assert {int(i.metadata["n"]) for i in items} == {1, 3, 5}


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ({"n": float("inf")}, "where.n"),
        ({"n": {"$gt": float("nan")}}, "where.n.$gt"),
        ({"n": 2**63}, "where.n"),
        ({"n": {"$in": [1, -(2**63) - 1]}}, "where.n.$in[1]"),
        ({"kind": "odd\ud800"}, "where.kind"),
        ({"$and": [{"n": 1}, {"kind": {"$ne": "\udc00"}}]}, "where.$and[1].kind.$ne"),
    ],
)
def test_unstorable_filter_values_are_refused(where: dict[str, Any], path: str) -> None:
    with pytest.raises(FilterError) as raised:
        validate_where(where)
    assert (raised.value.field_path, raised.value.code, raised.value.status) == (path, "invalid_filter", 400)


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"field": "n", "operator": "equals", "value": float("inf")}, "conditions[0].value"),
        ({"field": "n", "operator": "gt", "value": float("nan"), "type": "number"}, "conditions[0].value"),
        ({"field": "n", "operator": "equals", "value": 2**64}, "conditions[0].value"),
        ({"field": "n", "operator": "in", "value": [1, 2**63]}, "conditions[0].value[1]"),
        ({"field": "kind", "operator": "equals", "value": "\ud800"}, "conditions[0].value"),
    ],
)
def test_unstorable_condition_values_are_refused(condition: dict[str, Any], path: str) -> None:
    with pytest.raises(FilterError) as raised:
        conditions_to_where([condition])
    assert raised.value.field_path == path and raised.value.code == "invalid_filter"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"n": float("inf")}, "metadatas[1].n"),
        ({"n": float("nan")}, "metadatas[1].n"),
        ({"n": 2**63}, "metadatas[1].n"),
        ({"s": "\ud800"}, "metadatas[1].s"),
        ({"\ud800": 1}, "metadatas[1]"),
    ],
)
def test_unstorable_metadata_is_refused_and_nothing_is_stored(
    index: VectorIndex, space: str, metadata: dict[str, Any], field: str
) -> None:
    vectors = unit(np.random.default_rng(4).normal(size=(2, DIM)))
    with pytest.raises(VectorInputError) as raised:
        index.upsert(space, ["ok", "bad"], vectors, [{"n": 1}, metadata])
    assert (raised.value.code, raised.value.field, raised.value.status) == ("invalid_request", field, 400)
    assert index.count(space) == 0


def test_unstorable_vectors_ids_and_documents_are_refused(index: VectorIndex, space: str) -> None:
    vectors = unit(np.random.default_rng(5).normal(size=(2, DIM)))
    for bad in (np.full((2, DIM), np.inf), np.full((2, DIM), np.nan), [[1e39] * DIM] * 2, [[10**400] * DIM] * 2):
        with pytest.raises(VectorInputError, match=r"finite|numbers"):
            index.upsert(space, ["a", "b"], bad)
    with pytest.raises(VectorInputError) as raised:
        index.upsert(space, ["a", "b\ud800"], vectors)
    assert raised.value.field == "ids[1]"
    with pytest.raises(VectorInputError) as raised:
        index.upsert(space, ["a", "b"], vectors, None, ["fine", "not\udfff"])
    assert raised.value.field == "documents[1]"
    with pytest.raises(VectorInputError):
        index.query(space, np.full(DIM, np.nan), top_k=1)
    assert index.count(space) == 0


def test_errors_are_visiongrid_errors_that_pickle() -> None:
    for error, code, status in (
        (VectorStoreUnavailable("down"), "vectors_unavailable", 503),
        (SpaceNotFound("vg_x_text"), "not_found", 404),
        (DimensionMismatch(3, 4), "dimension_mismatch", 400),
        (FilterError("where.n", "bad"), "invalid_filter", 400),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and (copy.code, copy.status) == (code, status) and str(copy) == str(error)
    assert pickle.loads(pickle.dumps(FilterError("where.n", "bad"))).field_path == "where.n"
    assert isinstance(SpaceNotFound("x"), LookupError) and isinstance(DimensionMismatch(1, 2), ValueError)
