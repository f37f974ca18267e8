"""BlazeFace anchors/decoding and face alignment, checked on the real model's output for a real photo."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from skimage import data

from kernels.face_decoding import (
    NUM_KEYPOINTS,
    Faces,
    align_face,
    blazeface_anchors,
    decode_blazeface,
)
from kernels.letterbox import LetterboxTransform, letterbox
from models.registry import get_model


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(get_model("blazeface").path), options, providers=["CPUExecutionProvider"])


def _raw(session: ort.InferenceSession, image: npt.NDArray[np.uint8]) -> tuple[np.ndarray, LetterboxTransform]:
    canvas, transform = letterbox(image, (256, 256))
    return session.run(None, {"images": canvas[None]})[0][0], transform


def _faces(session: ort.InferenceSession, image: npt.NDArray[np.uint8]) -> Faces:
    raw, transform = _raw(session, image)
    return decode_blazeface(raw, blazeface_anchors(), transform, min_confidence=0.5)


def test_anchor_layout() -> None:
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_array_equal(anchors[0], anchors[1])  # 2 anchors per 16-px cell
    np.testing.assert_array_equal(anchors[:3], [[8, 8], [8, 8], [24, 8]])
    np.testing.assert_array_equal(anchors[512], [16, 16])  # first 32-px cell, 6 anchors
    np.testing.assert_array_equal(anchors[512 + 6], [48, 16])
    np.testing.assert_array_equal(anchors[-1], [240, 240])


def test_decode_maps_a_known_row_back_to_source_pixels() -> None:
    anchors = blazeface_anchors()
    raw = np.zeros((896, 17), np.float32)
    raw[100, :5] = [0.9, 2.0, -4.0, 20.0, 30.0]  # score, dx, dy, w, h
    raw[100, 5:] = np.tile([1.0, 1.0], NUM_KEYPOINTS)
    transform = LetterboxTransform(scale=0.5, pad_x=0.0, pad_y=0.0, source_width=512, source_height=400)
    faces = decode_blazeface(raw, anchors, transform, min_confidence=0.5)
    cx, cy = anchors[100] + [2.0, -4.0]
    np.testing.assert_allclose(faces.xyxy[0], np.array([cx - 10, cy - 15, cx + 10, cy + 15]) * 2, atol=1e-4)
    np.testing.assert_allclose(faces.keypoints[0], np.tile((anchors[100] + 1.0) * 2, (NUM_KEYPOINTS, 1)), atol=1e-4)
    assert faces.score.tolist() == pytest.approx([0.9])
    assert len(decode_blazeface(raw, anchors, transform, min_confidence=0.95)) == 0


def test_real_output_decodes_to_one_face_after_nms(session: ort.InferenceSession) -> None:
    image = data.astronaut()
    raw, transform = _raw(session, image)
    assert (raw[:, 0] >= 0.5).sum() > 1  # several anchors fire on the one face ...
    faces = decode_blazeface(raw, blazeface_anchors(), transform, min_confidence=0.5)
    assert len(faces) == 1  # ... NMS keeps one
    x1, y1, x2, y2 = faces.xyxy[0]
    assert x1 < 225 < x2 and y1 < 127 < y2
    right_eye, left_eye, nose, mouth = faces.keypoints[0][:4]
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


def test_letterboxed_wide_image_maps_back(session: ort.InferenceSession) -> None:
    image = data.astronaut()
    wide = np.concatenate([image, np.zeros((512, 256, 3), np.uint8)], axis=1)  # 768 wide, face unchanged
    faces, reference = _faces(session, wide), _faces(session, image)
    assert len(faces) == 1
    np.testing.assert_allclose(faces.xyxy[0], reference.xyxy[0], atol=12)


def test_alignment_undoes_a_rotation(session: ort.InferenceSession) -> None:
    """Eye-based alignment of a rotated photo gives nearly the crop of the upright photo."""
    image = data.astronaut()
    upright = _faces(session, image)
    rotation = cv2.getRotationMatrix2D((256.0, 256.0), 20.0, 1.0)
    rotated = np.asarray(cv2.warpAffine(image, rotation, (512, 512), borderMode=cv2.BORDER_REPLICATE), np.uint8)
    tilted = _faces(session, rotated)
    assert len(upright) == len(tilted) == 1
    crop_a = align_face(image, upright.xyxy[0], upright.keypoints[0], 112).astype(np.float32)
    crop_b = align_face(rotated, tilted.xyxy[0], tilted.keypoints[0], 112).astype(np.float32)
    crop_naive = align_face(rotated, tilted.xyxy[0], None, 112).astype(np.float32)
    assert crop_a.shape == (112, 112, 3)
    aligned_error = np.abs(crop_a - crop_b).mean()
    naive_error = np.abs(crop_a - crop_naive).mean()
    print(f"mean |diff| aligned {aligned_error:.1f}, not aligned {naive_error:.1f}")
    assert aligned_error < 0.8 * naive_error
