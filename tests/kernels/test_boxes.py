"""Box geometry: IoU, area, clipping and the xyxy <-> cxcyah conversion, on hand-computed boxes."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.boxes import box_area, box_iou, clip_boxes, cxcyah_to_xyxy, xyxy_to_cxcyah


def test_iou_of_partially_overlapping_boxes() -> None:
    # [0,0,10,10] vs [5,5,15,15]: intersection 5*5 = 25, union 100 + 100 - 25 = 175.
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 5, 15, 15]]))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(25 / 175)


def test_iou_of_disjoint_and_edge_touching_boxes_is_zero() -> None:
    a = np.array([[0, 0, 10, 10]])
    # Disjoint: no overlap at all. Touching along x = 10: the shared edge has zero area.
    iou = box_iou(a, np.array([[20, 20, 30, 30], [10, 0, 20, 10]]))
    np.testing.assert_array_equal(iou, [[0.0, 0.0]])


def test_iou_of_identical_boxes_is_one() -> None:
    box = np.array([[3.5, 1.0, 9.0, 7.25]])
    assert box_iou(box, box)[0, 0] == pytest.approx(1.0)


def test_iou_of_contained_box() -> None:
    # [2,2,4,4] lies inside [0,0,10,10]: intersection 2*2 = 4, union = 100.
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[2, 2, 4, 4]]))[0, 0] == pytest.approx(0.04)


def test_iou_is_pairwise_n_by_m_and_symmetric() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [100, 100, 110, 110]], dtype=np.float32)
    iou = box_iou(a, b)
    # Row 0: 25/175, 1, 0.
    # Row 1 ([0,0,10,5], area 50): vs [5,5,15,15] shares only the edge y=5 -> 0;
    #   vs [0,0,10,10]: intersection 50, union 100 + 50 - 50 = 100 -> 0.5; vs far box -> 0.
    expected = np.array([[25 / 175, 1.0, 0.0], [0.0, 0.5, 0.0]])
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou, expected, rtol=1e-12)
    np.testing.assert_allclose(box_iou(b, a), expected.T, rtol=1e-12)


def test_iou_of_zero_area_boxes_is_zero_not_nan() -> None:
    point = np.array([[5, 5, 5, 5]])
    line = np.array([[0, 5, 10, 5]])
    inverted = np.array([[10, 10, 0, 0]])
    with np.errstate(all="raise"):  # no division warning may leak either
        iou = box_iou(np.concatenate([point, line, inverted]), np.concatenate([point, line, [[0, 0, 10, 10]]]))
    assert not np.isnan(iou).any()
    np.testing.assert_array_equal(iou, np.zeros((3, 3)))


def test_iou_accepts_single_flat_box_and_empty_sets() -> None:
    assert box_iou([0, 0, 10, 10], [5, 5, 15, 15]).shape == (1, 1)
    assert box_iou(np.empty((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)
    assert box_iou(np.array([[0, 0, 1, 1]]), np.empty((0, 4))).shape == (1, 0)


def test_box_area_and_degenerate_boxes() -> None:
    boxes = np.array([[0, 0, 10, 5], [2, 3, 2, 9], [10, 10, 0, 0], [0, 0, -2, 5], [1.5, 2.0, 4.0, 6.0]])
    # 10*5 = 50; zero width; inverted -> 0 (not +100); negative width -> 0; 2.5*4 = 10.
    np.testing.assert_allclose(box_area(boxes), [50.0, 0.0, 0.0, 0.0, 10.0])


def test_clip_boxes_to_frame_returns_float32_copy() -> None:
    boxes = np.array([[-5, -5, 30, 30], [2, 3, 4, 5]], dtype=np.float64)
    clipped = clip_boxes(boxes, width=20, height=10)
    # x clipped to [0, 20], y to [0, 10]; the inside box is untouched.
    np.testing.assert_array_equal(clipped, [[0, 0, 20, 10], [2, 3, 4, 5]])
    assert clipped.dtype == np.float32
    assert boxes[0, 0] == -5  # input not modified


def test_clip_boxes_reshapes_a_flat_box() -> None:
    np.testing.assert_array_equal(clip_boxes([-1, 5, 50, 50], width=40, height=30), [[0, 5, 40, 30]])


def test_xyxy_to_cxcyah_hand_computed() -> None:
    # [10,20,30,60]: w = 20, h = 40 -> centre (20, 40), aspect 20/40 = 0.5, height 40.
    np.testing.assert_allclose(xyxy_to_cxcyah(np.array([[10, 20, 30, 60]])), [[20, 40, 0.5, 40]])


def test_cxcyah_to_xyxy_hand_computed() -> None:
    # centre (20, 40), aspect 0.5, height 40 -> w = 20 -> [20-10, 40-20, 20+10, 40+20].
    np.testing.assert_allclose(cxcyah_to_xyxy(np.array([[20, 40, 0.5, 40]])), [[10, 20, 30, 60]])


def test_cxcyah_round_trip() -> None:
    boxes = np.array([[10, 20, 30, 60], [-5.5, 0, 100, 3], [0, 0, 1, 1000]], dtype=np.float64)
    np.testing.assert_allclose(cxcyah_to_xyxy(xyxy_to_cxcyah(boxes)), boxes, rtol=1e-9, atol=1e-9)


def test_xyxy_to_cxcyah_zero_height_stays_finite() -> None:
    out = xyxy_to_cxcyah(np.array([[0, 5, 10, 5]]))
    assert np.isfinite(out).all()
    assert out[0, 0] == pytest.approx(5.0)  # centre x = 0 + 10/2
