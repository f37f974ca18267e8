"""Raw detector outputs -> Detections in source pixels, for the CenterNet and YOLO formats."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.box_decoding import DECODERS, decode_centernet, decode_yolo
from kernels.detections import NO_TRACK, Detections
from kernels.letterbox import LetterboxTransform, letterbox

# A 256 x 128 (w x h) frame letterboxed, centred, into 512 x 512:
# scale = min(512/256, 512/128) = 2, content 512 x 256, pad_y = (512 - 256) / 2 = 128.
# Source = (model - pad) / 2; model rows >= 128 + 256 = 384 are bottom padding.
T = LetterboxTransform(scale=2.0, pad_x=0.0, pad_y=128.0, source_width=256, source_height=128)

CENTERNET = np.array(
    [
        [20, 148, 120, 228, 0.9, 0],  # -> [10, 10, 60, 50]
        [100, 200, 300, 300, 0.5, 2],  # -> [50, 36, 150, 86]
        [0, 128, 50, 178, 0.2, 0],  # under the 0.3 floor
        [10, 400, 100, 500, 0.95, 0],  # in the bottom padding: y -> 136, 186, both clipped to 128 -> empty
        [-20, 100, 40, 168, 0.6, 7],  # x -> -10 (clip 0), 20; y -> -14 (clip 0), 20 -> [0, 0, 20, 20]
    ],
    dtype=np.float32,
)


def test_transform_matches_letterbox() -> None:
    _, transform = letterbox(np.zeros((128, 256, 3), dtype=np.uint8), (512, 512), center=True)
    assert transform == T


def test_decode_centernet_maps_boxes_back_and_drops_low_and_empty() -> None:
    dets = decode_centernet(CENTERNET, T)
    np.testing.assert_allclose(dets.xyxy, [[10, 10, 60, 50], [50, 36, 150, 86], [0, 0, 20, 20]])
    np.testing.assert_allclose(dets.confidence, [0.9, 0.5, 0.6])
    np.testing.assert_array_equal(dets.class_id, [0, 2, 7])
    assert dets.class_id.dtype == np.int64
    np.testing.assert_array_equal(dets.track_id, [NO_TRACK] * 3)


@pytest.mark.parametrize(
    ("floor", "expected_scores"), [(0.5, [0.9, 0.5, 0.6]), (0.55, [0.9, 0.6]), (0.1, [0.9, 0.5, 0.2, 0.6])]
)
def test_decode_centernet_min_confidence_is_inclusive(floor: float, expected_scores: list[float]) -> None:
    # 0.5 is exactly representable, so a 0.5 floor keeps the 0.5 row; the padding row never survives.
    dets = decode_centernet(CENTERNET, T, min_confidence=floor)
    np.testing.assert_allclose(dets.confidence, expected_scores)


def test_decode_centernet_class_filter() -> None:
    dets = decode_centernet(CENTERNET, T, class_filter=np.array([2, 7]))
    np.testing.assert_array_equal(dets.class_id, [2, 7])
    np.testing.assert_allclose(dets.xyxy, [[50, 36, 150, 86], [0, 0, 20, 20]])
    dets = decode_centernet(CENTERNET, T, class_filter=np.array([5]))
    assert len(dets) == 0


def test_decode_centernet_accepts_batch_dim_and_empty() -> None:
    dets = decode_centernet(CENTERNET[None], T)  # [1, K, 6] as the model returns it
    np.testing.assert_array_equal(dets.class_id, [0, 2, 7])
    empty = decode_centernet(np.zeros((0, 6), dtype=np.float32), T)
    assert len(empty) == 0
    assert empty.xyxy.shape == (0, 4)


NUM_CLASSES = 80
NUM_ANCHORS = 100  # more anchors than 4 + C rows, as in a real export (8400 at 640 px)


def _yolo_rows(anchors: list[tuple[float, float, float, float, dict[int, float]]]) -> np.ndarray:
    """``[A, 4 + C]`` rows: cx, cy, w, h in model pixels, then class scores; other anchors are zero."""
    rows = np.zeros((NUM_ANCHORS, 4 + NUM_CLASSES), dtype=np.float32)
    for i, (cx, cy, w, h, scores) in enumerate(anchors):
        rows[i, :4] = (cx, cy, w, h)
        for class_id, score in scores.items():
            rows[i, 4 + class_id] = score
    return rows


YOLO_ROWS = _yolo_rows(
    [
        # a0: [50, 160, 150, 240] model -> source [25, 16, 75, 56], class 0, 0.9.
        (100, 200, 100, 80, {0: 0.9}),
        # a1: [54, 160, 154, 240], class 0, 0.8. IoU with a0: 96*80 = 7680 / (8000 + 8000 - 7680) = 0.923 -> suppressed.
        (104, 200, 100, 80, {0: 0.8}),
        # a2: the same box as a0, best class 2 (0.7 beats class 0's 0.1) -> another class, kept.
        (100, 200, 100, 80, {0: 0.1, 2: 0.7}),
        # a3: best score 0.2 < 0.25 -> dropped.
        (300, 300, 40, 40, {5: 0.2}),
        # a4: [370, 240, 430, 260] -> source [185, 56, 215, 66], class 7, 0.6.
        (400, 250, 60, 20, {7: 0.6}),
    ]
)
EXPECTED_BOXES = [[25, 16, 75, 56], [25, 16, 75, 56], [185, 56, 215, 66]]


def _check_default(dets: Detections) -> None:
    np.testing.assert_allclose(dets.xyxy, EXPECTED_BOXES, atol=1e-4)
    np.testing.assert_allclose(dets.confidence, [0.9, 0.7, 0.6])
    np.testing.assert_array_equal(dets.class_id, [0, 2, 7])


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda rows: rows.T, id="[4+C, A] export"),
        pytest.param(lambda rows: rows, id="[A, 4+C] transposed"),
        pytest.param(lambda rows: rows.T[None], id="[1, 4+C, A] batched"),
        pytest.param(lambda rows: rows[None], id="[1, A, 4+C] batched transposed"),
    ],
)
def test_decode_yolo_layouts(layout: object) -> None:
    raw = layout(YOLO_ROWS)  # type: ignore[operator]
    dets = decode_yolo(raw, T)
    _check_default(dets)
    assert dets.class_id.dtype == np.int64


def test_decode_yolo_iou_threshold_controls_the_duplicate() -> None:
    # IoU(a0, a1) = 0.923 <= 0.95 -> a1 survives: [54/2, 16, 154/2, 56] = [27, 16, 77, 56], in score order.
    dets = decode_yolo(YOLO_ROWS.T, T, iou_threshold=0.95)
    np.testing.assert_allclose(dets.confidence, [0.9, 0.8, 0.7, 0.6])
    np.testing.assert_allclose(dets.xyxy[1], [27, 16, 77, 56], atol=1e-4)


def test_decode_yolo_min_confidence() -> None:
    # 0.75: a0 (0.9) stays, a1 (0.8) is still suppressed by a0, the rest are under the floor.
    dets = decode_yolo(YOLO_ROWS.T, T, min_confidence=0.75)
    np.testing.assert_allclose(dets.confidence, [0.9])
    # 0.15 lets a3 (0.2) in: [280, 280, 320, 320] -> [140, 76, 160, 96].
    dets = decode_yolo(YOLO_ROWS.T, T, min_confidence=0.15)
    np.testing.assert_array_equal(dets.class_id, [0, 2, 7, 5])
    np.testing.assert_allclose(dets.xyxy[3], [140, 76, 160, 96], atol=1e-4)


def test_decode_yolo_class_filter() -> None:
    dets = decode_yolo(YOLO_ROWS.T, T, class_filter=np.array([2, 7]))
    np.testing.assert_array_equal(dets.class_id, [2, 7])
    np.testing.assert_allclose(dets.xyxy, EXPECTED_BOXES[1:], atol=1e-4)


def test_decode_yolo_max_detections() -> None:
    dets = decode_yolo(YOLO_ROWS.T, T, max_detections=2)
    np.testing.assert_allclose(dets.confidence, [0.9, 0.7])


def test_decode_yolo_drops_boxes_in_the_padding() -> None:
    # [80, 430, 120, 470] lies in the bottom padding (>= 384): y -> 151, 171, both clipped to 128.
    rows = _yolo_rows([(100, 450, 40, 40, {1: 0.85}), (100, 200, 100, 80, {0: 0.9})])
    dets = decode_yolo(rows.T, T)
    np.testing.assert_array_equal(dets.class_id, [0])


def test_decode_yolo_without_candidates() -> None:
    dets = decode_yolo(np.zeros((4 + NUM_CLASSES, NUM_ANCHORS), dtype=np.float32), T)
    assert len(dets) == 0
    assert dets.xyxy.shape == (0, 4)


def test_decode_yolo_with_few_classes() -> None:
    # C = 2, [6, A]: one box cx=64, cy=192, w=h=32 -> [48, 176, 80, 208] -> [24, 24, 40, 40], class 1.
    raw = np.zeros((6, 50), dtype=np.float32)
    raw[:, 0] = [64, 192, 32, 32, 0.3, 0.6]
    dets = decode_yolo(raw, T)
    np.testing.assert_allclose(dets.xyxy, [[24, 24, 40, 40]])
    np.testing.assert_array_equal(dets.class_id, [1])


def test_decoders_registry() -> None:
    assert DECODERS["centernet"] is decode_centernet
    assert DECODERS["yolo"] is decode_yolo
