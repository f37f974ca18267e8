"""The Detections struct of arrays: construction, row selection, merge and derived columns."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.detections import NO_TRACK, Detections

BOXES = [[0, 0, 10, 5], [2, 2, 1, 1], [10, 10, 20, 30]]


def _three() -> Detections:
    return Detections(
        xyxy=BOXES,
        confidence=[0.9, 0.5, 0.7],
        class_id=[0, 2, 7],
        track_id=[11, 12, 13],
        data={"text": ["a", "b", "c"], "feature": np.arange(6, dtype=np.float32).reshape(3, 2)},
    )


def test_construction_coerces_dtypes_and_fills_track_ids() -> None:
    dets = Detections(xyxy=BOXES, confidence=[0.9, 0.5, 0.7], class_id=[0, 2, 7])
    assert len(dets) == 3
    assert dets.xyxy.dtype == np.float32 and dets.xyxy.shape == (3, 4)
    assert dets.confidence.dtype == np.float32 and dets.confidence.shape == (3,)
    assert dets.class_id.dtype == np.int64
    assert dets.track_id.dtype == np.int64
    np.testing.assert_array_equal(dets.track_id, [NO_TRACK] * 3)
    assert dets.data == {}


def test_flat_boxes_are_reshaped() -> None:
    dets = Detections(xyxy=[0, 0, 1, 1, 2, 2, 3, 3], confidence=[0.1, 0.2], class_id=[1, 1])
    assert dets.xyxy.shape == (2, 4)
    np.testing.assert_array_equal(dets.xyxy[1], [2, 2, 3, 3])


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"confidence": [0.9, 0.5], "class_id": [0, 2, 7]}, id="confidence"),
        pytest.param({"confidence": [0.9, 0.5, 0.7], "class_id": [0]}, id="class_id"),
        pytest.param({"confidence": [0.9, 0.5, 0.7], "class_id": [0, 2, 7], "track_id": [1, 2]}, id="track_id"),
        pytest.param(
            {"confidence": [0.9, 0.5, 0.7], "class_id": [0, 2, 7], "data": {"text": ["a", "b"]}}, id="data list"
        ),
        pytest.param(
            {"confidence": [0.9, 0.5, 0.7], "class_id": [0, 2, 7], "data": {"f": np.zeros((4, 8))}}, id="data array"
        ),
    ],
)
def test_mismatched_column_lengths_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="disagree in length"):
        Detections(xyxy=BOXES, **kwargs)  # type: ignore[arg-type]


def test_no_boxes_but_other_rows_is_rejected() -> None:
    with pytest.raises(ValueError):
        Detections(xyxy=np.empty((0, 4)), confidence=[0.5], class_id=[1])
    with pytest.raises(ValueError):
        Detections(xyxy=np.empty((0, 4)), confidence=[], class_id=[], data={"text": ["x"]})


def test_empty() -> None:
    dets = Detections.empty()
    assert len(dets) == 0
    assert dets.xyxy.shape == (0, 4)
    assert dets.confidence.shape == dets.class_id.shape == dets.track_id.shape == (0,)
    assert dets.area.shape == (0,)


def test_area() -> None:
    # 10 * 5 = 50; [2,2,1,1] is inverted -> 0; 10 * 20 = 200.
    area = _three().area
    np.testing.assert_array_equal(area, [50, 0, 200])
    assert area.dtype == np.float32


def _assert_rows(dets: Detections, rows: list[int]) -> None:
    full = _three()
    assert len(dets) == len(rows)
    np.testing.assert_array_equal(dets.xyxy, full.xyxy[rows])
    np.testing.assert_array_equal(dets.confidence, full.confidence[rows])
    np.testing.assert_array_equal(dets.class_id, full.class_id[rows])
    np.testing.assert_array_equal(dets.track_id, full.track_id[rows])
    assert dets.data["text"] == [full.data["text"][i] for i in rows]
    np.testing.assert_array_equal(dets.data["feature"], full.data["feature"][rows])


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        pytest.param(1, [1], id="int"),
        pytest.param(-1, [2], id="negative int"),
        pytest.param(slice(1, None), [1, 2], id="slice"),
        pytest.param(slice(None, None, -1), [2, 1, 0], id="reversed slice"),
        pytest.param(np.array([True, False, True]), [0, 2], id="bool mask"),
        pytest.param(np.array([2, 0]), [2, 0], id="index array keeps order"),
        pytest.param([2, 0, 2], [2, 0, 2], id="list with repeat"),
        pytest.param([], [], id="empty list"),
        pytest.param(np.zeros(3, dtype=bool), [], id="all-false mask"),
    ],
)
def test_getitem_keeps_columns_aligned(index: object, rows: list[int]) -> None:
    _assert_rows(_three()[index], rows)  # type: ignore[index]


def test_getitem_int_gives_a_one_row_detections() -> None:
    row = _three()[0]
    assert isinstance(row, Detections)
    assert row.xyxy.shape == (1, 4)
    assert row.data["feature"].shape == (1, 2)


def test_getitem_numpy_integer() -> None:
    _assert_rows(_three()[np.int64(1)], [1])  # type: ignore[index]


def test_selection_is_a_copy() -> None:
    dets = _three()
    part = dets[np.array([True, False, True])]
    part.xyxy[0, 0] = 99
    part.data["text"][0] = "changed"
    assert dets.xyxy[0, 0] == 0
    assert dets.data["text"][0] == "a"


def test_merge_concatenates_and_keeps_data_aligned() -> None:
    dets = _three()
    merged = Detections.merge([dets[[2]], dets[[0, 1]]])
    _assert_rows(merged, [2, 0, 1])
    assert isinstance(merged.data["feature"], np.ndarray)
    assert isinstance(merged.data["text"], list)


def test_merge_of_array_and_list_column_gives_a_list() -> None:
    a = Detections([[0, 0, 1, 1]], [0.5], [0], data={"v": np.array([1])})
    b = Detections([[0, 0, 2, 2]], [0.6], [1], data={"v": [2]})
    assert list(Detections.merge([a, b]).data["v"]) == [1, 2]


def test_merge_skips_empty_parts_and_of_nothing_is_empty() -> None:
    dets = _three()
    # Detections.empty() has no data columns; as an empty part it must not clash with "text"/"feature".
    merged = Detections.merge([Detections.empty(), dets, dets[[]]])
    _assert_rows(merged, [0, 1, 2])
    assert len(Detections.merge([])) == 0
    assert len(Detections.merge([Detections.empty(), Detections.empty()])) == 0


def test_merge_of_parts_with_different_data_columns_raises() -> None:
    a = Detections([[0, 0, 1, 1]], [0.5], [0], data={"text": ["x"]})
    b = Detections([[0, 0, 2, 2]], [0.6], [1], data={"face": ["y"]})
    c = Detections([[0, 0, 2, 2]], [0.6], [1])
    with pytest.raises(ValueError, match="different data columns"):
        Detections.merge([a, b])
    with pytest.raises(ValueError, match="different data columns"):
        Detections.merge([a, c])


def test_with_track_ids_replaces_only_track_id() -> None:
    dets = _three()
    tracked = dets.with_track_ids(np.array([7, NO_TRACK, 9]))
    np.testing.assert_array_equal(tracked.track_id, [7, -1, 9])
    np.testing.assert_array_equal(dets.track_id, [11, 12, 13])  # original unchanged
    assert np.shares_memory(tracked.xyxy, dets.xyxy)  # shares the other columns (no copy)
    assert np.shares_memory(tracked.confidence, dets.confidence)
    assert tracked.data["text"] is dets.data["text"]
    tracked.data["extra"] = [1, 2, 3]
    assert "extra" not in dets.data  # but not the dict itself


def test_with_track_ids_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        _three().with_track_ids(np.array([1, 2]))
