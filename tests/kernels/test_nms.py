"""Greedy NMS: what is kept, in which order, per class, and with max_keep."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.nms import nms

A = [0, 0, 10, 10]
# [1,1,11,11] vs A: intersection 9*9 = 81, union 100 + 100 - 81 = 119 -> IoU 0.68.
A_SHIFTED = [1, 1, 11, 11]


def test_keeps_the_higher_score_of_two_overlapping_boxes() -> None:
    keep = nms(np.array([A, A_SHIFTED]), np.array([0.9, 0.8]), 0.5)
    np.testing.assert_array_equal(keep, [0])
    # Same boxes, scores swapped: now the second one wins.
    keep = nms(np.array([A, A_SHIFTED]), np.array([0.3, 0.8]), 0.5)
    np.testing.assert_array_equal(keep, [1])


def test_keeps_both_when_iou_is_at_or_below_threshold() -> None:
    # A vs [0,0,10,5]: intersection 50, union 100 + 50 - 50 = 100 -> IoU exactly 0.5.
    boxes = np.array([A, [0, 0, 10, 5]])
    scores = np.array([0.9, 0.8])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 1])  # 0.5 is not > 0.5
    np.testing.assert_array_equal(nms(boxes, scores, 0.49), [0])
    # A vs [5,5,15,15]: IoU 25/175 = 0.14 < 0.5.
    np.testing.assert_array_equal(nms(np.array([A, [5, 5, 15, 15]]), scores, 0.5), [0, 1])


def test_result_is_ordered_by_descending_score() -> None:
    boxes = np.array([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]])  # pairwise disjoint
    keep = nms(boxes, np.array([0.1, 0.9, 0.5]), 0.5)
    np.testing.assert_array_equal(keep, [1, 2, 0])
    assert keep.dtype == np.intp


def test_suppressed_boxes_do_not_suppress_others() -> None:
    # Threshold 0.3. B=[4,0,14,10] vs A: 60 / 140 = 0.43 -> B suppressed by A.
    # C=[8,0,18,10] vs A: 20 / 180 = 0.11 -> kept, although C vs B is 60 / 140 = 0.43:
    # B is already gone, so it must not take C with it.
    boxes = np.array([A, [4, 0, 14, 10], [8, 0, 18, 10]])
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.3), [0, 2])


def test_never_suppresses_across_classes() -> None:
    boxes = np.array([A, A_SHIFTED, A])
    scores = np.array([0.9, 0.8, 0.7])
    # Without classes the two lower boxes (IoU 0.68 and 1.0 with A) go.
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0])
    # Same class for 0 and 1, another class for 2 (an identical box): 2 survives.
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, class_id=np.array([0, 0, 3])), [0, 2])
    # All different classes: nothing is suppressed.
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, class_id=np.array([2, 0, 1])), [0, 1, 2])


def test_class_offset_works_with_negative_and_large_coordinates() -> None:
    boxes = np.array(
        [[-100, -100, -90, -90], [-100, -100, -90, -90], [1000, 1000, 3000, 3000], [1000, 1000, 3000, 3000]]
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    keep = nms(boxes, scores, 0.5, class_id=np.array([0, 1, 0, 1]))
    np.testing.assert_array_equal(keep, [0, 1, 2, 3])
    keep = nms(boxes, scores, 0.5, class_id=np.array([79, 79, 79, 0]))
    np.testing.assert_array_equal(keep, [0, 2, 3])


@pytest.mark.parametrize(("max_keep", "expected"), [(1, [1]), (2, [1, 2]), (3, [1, 2, 0]), (10, [1, 2, 0])])
def test_max_keep_limits_the_kept_boxes(max_keep: int, expected: list[int]) -> None:
    boxes = np.array([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]])
    np.testing.assert_array_equal(nms(boxes, np.array([0.1, 0.9, 0.5]), 0.5, max_keep=max_keep), expected)


def test_max_keep_counts_only_survivors() -> None:
    # Scores 0.9 (A), 0.8 (overlaps A, suppressed), 0.7 (far): max_keep=2 keeps A and the far box.
    boxes = np.array([A, A_SHIFTED, [50, 50, 60, 60]])
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5, max_keep=2), [0, 2])


def test_max_keep_zero_keeps_nothing() -> None:
    assert len(nms(np.array([A]), np.array([0.9]), 0.5, max_keep=0)) == 0


@pytest.mark.parametrize("class_id", [None, np.empty(0, dtype=np.int64)])
def test_empty_input(class_id: np.ndarray | None) -> None:
    keep = nms(np.empty((0, 4)), np.empty(0), 0.5, class_id=class_id)
    assert keep.shape == (0,)
    assert keep.dtype == np.intp


def test_single_box_and_degenerate_boxes_are_kept() -> None:
    np.testing.assert_array_equal(nms(np.array([A]), np.array([0.1]), 0.5), [0])
    # Two identical zero-area boxes have IoU 0 (not NaN), so neither suppresses the other.
    points = np.array([[5, 5, 5, 5], [5, 5, 5, 5]])
    np.testing.assert_array_equal(nms(points, np.array([0.9, 0.8]), 0.5), [0, 1])
