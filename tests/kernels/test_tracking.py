"""ByteTrack tracker: ids over synthetic scenes, association stages, column handling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from kernels.detections import NO_TRACK, Detections
from kernels.tracking import ByteTracker, TrackerConfig, match_by_iou


def box(x: float, y: float, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [x, y, x + w, y + h]


def dets(
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float] | None = None,
    classes: Sequence[int] | None = None,
    **data: object,
) -> Detections:
    count = len(boxes)
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray(scores if scores is not None else [0.9] * count, dtype=np.float32),
        class_id=np.asarray(classes if classes is not None else [0] * count, dtype=np.int64),
        data=dict(data),
    )


# --- match_by_iou --------------------------------------------------------------------------


def test_match_by_iou_gates_and_prefers_one_strong_match_over_two_weak_ones() -> None:
    # Track 0 overlaps detection 0 strongly and detection 1 weakly; track 1 overlaps
    # detection 0 weakly. Maximising the match count would pair (0,1) and (1,0); the
    # gated optimum keeps the strong pair and leaves the rest unmatched.
    iou = np.array([[0.9, 0.25], [0.25, 0.0]])
    rows, cols = match_by_iou(iou, 0.2)
    assert rows.tolist() == [0] and cols.tolist() == [0]


def test_match_by_iou_rejects_pairs_below_the_gate() -> None:
    iou = np.array([[0.19, 0.0], [0.0, 0.6]])
    rows, cols = match_by_iou(iou, 0.2)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(1, 1)]
    rows, cols = match_by_iou(iou, 0.7)
    assert len(rows) == 0 and len(cols) == 0


def test_match_by_iou_finds_the_optimal_assignment() -> None:
    # Greedy on the best pair (0,0)=0.8 would force (1,1)=0.2; the optimum is the swap.
    iou = np.array([[0.8, 0.7], [0.75, 0.2]])
    rows, cols = match_by_iou(iou, 0.1)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 1: 0}


def test_match_by_iou_empty() -> None:
    rows, cols = match_by_iou(np.zeros((0, 3)), 0.2)
    assert rows.shape == (0,) and cols.shape == (0,)


# --- tracker -------------------------------------------------------------------------------


def test_one_moving_object_keeps_one_id() -> None:
    tracker = ByteTracker()
    for t in range(20):
        frame = dets([box(100 + 8 * t, 50 + 3 * t)])
        out = tracker.update(frame)
        assert out.track_id.tolist() == [1]
        # Output boxes are the detector's, not the Kalman-smoothed ones.
        np.testing.assert_array_equal(out.xyxy, frame.xyxy)
    assert tracker.track_ids.tolist() == [1]


def test_first_frame_tracks_are_confirmed_later_ones_need_a_second_match() -> None:
    tracker = ByteTracker()
    assert tracker.update(dets([box(0, 0)])).track_id.tolist() == [1]
    # A new object appearing later is unconfirmed on its first frame ...
    out = tracker.update(dets([box(0, 0), box(300, 0)]))
    assert out.track_id.tolist() == [1]
    # ... and confirmed (with the next id) when matched on the following frame.
    out = tracker.update(dets([box(0, 0), box(302, 0)]))
    assert out.track_id.tolist() == [1, 2]


def test_one_frame_false_positive_does_not_consume_an_id() -> None:
    tracker = ByteTracker()
    tracker.update(dets([box(0, 0)]))
    tracker.update(dets([box(0, 0), box(500, 500)]))  # unconfirmed, then gone
    tracker.update(dets([box(0, 0)]))
    tracker.update(dets([box(0, 0), box(300, 0)]))
    out = tracker.update(dets([box(0, 0), box(300, 0)]))
    assert out.track_id.tolist() == [1, 2]


def _moving(t: int) -> Detections:
    return dets([box(100 + 10 * t, 100)])


def test_short_miss_keeps_the_id() -> None:
    tracker = ByteTracker(TrackerConfig(lost_buffer=30))
    for t in range(10):
        assert tracker.update(_moving(t)).track_id.tolist() == [1]
    for _ in range(3):
        assert len(tracker.update(Detections.empty())) == 0
    for t in range(13, 20):
        # The Kalman prediction coasted the lost track along, so it is re-found.
        assert tracker.update(_moving(t)).track_id.tolist() == [1]


@pytest.mark.parametrize(("missed", "expected_id"), [(5, 1), (6, 2)])
def test_lost_track_survives_exactly_lost_buffer_missed_frames(missed: int, expected_id: int) -> None:
    tracker = ByteTracker(TrackerConfig(lost_buffer=5))
    still = dets([box(200, 200)])
    for _ in range(5):
        tracker.update(still)
    for _ in range(missed):
        tracker.update(Detections.empty())
    out = tracker.update(still)
    if expected_id == 1:
        assert out.track_id.tolist() == [1]  # re-found at once
    else:
        assert len(out) == 0  # a brand-new track, unconfirmed on its first frame
        assert tracker.update(still).track_id.tolist() == [2]


def test_crossing_objects_keep_their_ids() -> None:
    # A moves right, B moves left, 20 px below; the boxes overlap heavily around t = 9..10.
    # Matching against last frame's boxes (no motion model) would swap them at t = 10.
    tracker = ByteTracker()
    ids_a, ids_b = set(), set()
    for t in range(20):
        a, b = box(20 * t, 100), box(380 - 20 * t, 120)
        out = tracker.update(dets([a, b]))
        assert len(out) == 2
        ids_a.add(int(out.track_id[0]))
        ids_b.add(int(out.track_id[1]))
    assert ids_a == {1}
    assert ids_b == {2}


def test_low_score_detection_continues_a_track_but_does_not_start_one() -> None:
    tracker = ByteTracker()
    for t in range(5):
        tracker.update(_moving(t))
    for t in range(5, 10):
        # Stage 2: the 0.3 detection continues track 1; the far 0.3 one is ignored.
        frame = dets([box(100 + 10 * t, 100), box(600, 600)], scores=[0.3, 0.3])
        out = tracker.update(frame)
        assert out.track_id.tolist() == [1]
        np.testing.assert_array_equal(out.xyxy, frame.xyxy[:1])
    assert len(tracker) == 1


def test_detection_below_new_track_threshold_matches_but_does_not_start() -> None:
    tracker = ByteTracker(TrackerConfig(high_threshold=0.5, new_track_threshold=0.6))
    tracker.update(dets([box(0, 0)]))
    for _ in range(3):
        out = tracker.update(dets([box(0, 0), box(400, 0)], scores=[0.55, 0.55]))
        assert out.track_id.tolist() == [1]
    assert len(tracker) == 1


def test_detection_below_low_threshold_is_ignored() -> None:
    tracker = ByteTracker()
    tracker.update(dets([box(0, 0)]))
    out = tracker.update(dets([box(0, 0)], scores=[0.05]))
    assert len(out) == 0
    # The track was not continued by it: it is lost now, and re-found by a real detection.
    assert tracker.update(dets([box(0, 0)])).track_id.tolist() == [1]


def test_stage_two_does_not_revive_lost_tracks() -> None:
    tracker = ByteTracker()
    tracker.update(dets([box(0, 0)]))
    tracker.update(Detections.empty())  # track 1 is lost now
    assert len(tracker.update(dets([box(0, 0)], scores=[0.3]))) == 0
    assert tracker.update(dets([box(0, 0)], scores=[0.9])).track_id.tolist() == [1]


def test_other_class_does_not_steal_a_track() -> None:
    tracker = ByteTracker(TrackerConfig(class_aware=True))
    tracker.update(dets([box(0, 0)], classes=[0]))
    # Same place, other class: a new (unconfirmed) track, not a continuation of track 1.
    assert len(tracker.update(dets([box(0, 0)], classes=[1]))) == 0
    out = tracker.update(dets([box(0, 0), box(0, 0)], classes=[0, 1]))
    assert out.track_id.tolist() == [1, 2]
    assert out.class_id.tolist() == [0, 1]


def test_class_agnostic_mode_lets_other_classes_continue_a_track() -> None:
    tracker = ByteTracker(TrackerConfig(class_aware=False))
    tracker.update(dets([box(0, 0)], classes=[0]))
    out = tracker.update(dets([box(0, 0)], classes=[1]))
    assert out.track_id.tolist() == [1]
    assert out.class_id.tolist() == [1]  # the detection's own class is reported


def test_tracker_instances_are_independent_and_reset_restarts_ids() -> None:
    first = ByteTracker()
    first.update(dets([box(0, 0), box(200, 0), box(400, 0)]))
    assert first.update(dets([box(0, 0), box(200, 0), box(400, 0)])).track_id.tolist() == [1, 2, 3]
    second = ByteTracker()
    assert second.update(dets([box(50, 50)])).track_id.tolist() == [1]
    # The first one carries on from its own counter.
    first.update(dets([box(0, 0), box(200, 0), box(400, 0), box(600, 0)]))
    assert first.update(dets([box(600, 0)])).track_id.tolist() == [4]
    first.reset()
    assert len(first) == 0
    assert first.update(dets([box(600, 0)])).track_id.tolist() == [1]


def test_data_columns_stay_aligned_with_their_rows() -> None:
    tracker = ByteTracker()
    rng = np.random.default_rng(1)
    source_of = {"left": 0, "right": 1}
    seen: dict[str, int] = {}
    for t in range(8):
        boxes = [box(10 + 5 * t, 0), box(500 - 5 * t, 0), box(250, 400)]
        scores = [0.9, 0.9, 0.05]  # the third row is dropped every frame
        labels = ["left", "right", "junk"]
        order = rng.permutation(3)  # rows arrive in a different order each frame
        feats = np.arange(3, dtype=np.float32)[order, None] * np.ones((1, 4), np.float32)
        frame = dets(
            [boxes[i] for i in order],
            scores=[scores[i] for i in order],
            label=[labels[i] for i in order],
            feature=feats,
        )
        out = tracker.update(frame)
        assert len(out) == 2
        assert set(out.data) == {"label", "feature"}
        assert isinstance(out.data["feature"], np.ndarray) and out.data["feature"].shape == (2, 4)
        for row in range(len(out)):
            label = out.data["label"][row]
            source = source_of[label]
            np.testing.assert_array_equal(out.xyxy[row], np.asarray(boxes[source], np.float32))
            np.testing.assert_array_equal(out.data["feature"][row], np.full(4, source, np.float32))
            assert seen.setdefault(label, int(out.track_id[row])) == out.track_id[row]
    assert sorted(seen.values()) == [1, 2]


def test_output_rows_keep_input_order() -> None:
    tracker = ByteTracker()
    tracker.update(dets([box(0, 0), box(200, 0), box(400, 0)]))
    # Row 0 is matched in stage 2 (low score), rows 2 and 3 in stage 1, row 1 is dropped.
    frame = dets([box(0, 0), box(600, 600), box(400, 0), box(200, 0)], scores=[0.3, 0.05, 0.9, 0.9])
    out = tracker.update(frame)
    np.testing.assert_array_equal(out.xyxy, frame.xyxy[[0, 2, 3]])
    assert out.track_id.tolist() == [1, 3, 2]


def test_empty_input() -> None:
    tracker = ByteTracker()
    out = tracker.update(Detections.empty())
    assert len(out) == 0
    assert out.xyxy.shape == (0, 4) and out.track_id.shape == (0,)
    tracker = ByteTracker()
    tracker.update(dets([box(0, 0)]))
    out = tracker.update(Detections.empty())
    assert len(out) == 0
    assert tracker.track_ids.tolist() == [1]  # kept as a lost track
    assert tracker.update(dets([box(0, 0)])).track_id.tolist() == [1]


def test_unconfirmed_tracks_never_appear_with_no_track_ids() -> None:
    tracker = ByteTracker()
    tracker.update(Detections.empty())  # the first frame passes without detections
    assert len(tracker.update(dets([box(0, 0)]))) == 0
    out = tracker.update(dets([box(0, 0)]))
    assert out.track_id.tolist() == [1]
    assert NO_TRACK not in out.track_id
