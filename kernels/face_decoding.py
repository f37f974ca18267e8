"""BlazeFace decoding and face crops for the face descriptor (pure NumPy + OpenCV resize).

BlazeFace (MediaPipe's 256x256 "back" model, see ``models/MANIFEST``) predicts, for each of
896 fixed anchors, a score and 16 regressors: box centre, size and six keypoints, in model
input pixels relative to the anchor centre. :func:`blazeface_anchors` rebuilds those anchors,
:func:`decode_blazeface` turns one image's raw output into boxes + keypoints in source-image
pixels (through the letterbox transform), with NMS.

The descriptor model (FaceRes) wants a face crop; :func:`align_face` cuts one rotated so the
eyes are level, centred on the eyes/mouth and scaled from the eye distance and box size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kernels.letterbox import LetterboxTransform
from kernels.nms import nms

FloatArray = npt.NDArray[np.float32]

# MediaPipe keypoint order (the subject's right eye is on the image's left in a frontal face).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# (stride, anchors per cell) of the back model's two feature maps: 16x16x2 + 8x8x6 = 896.
BLAZEFACE_BACK_LAYOUT: tuple[tuple[int, int], ...] = ((16, 2), (32, 6))


def blazeface_anchors(input_size: int = 256, layout: tuple[tuple[int, int], ...] = BLAZEFACE_BACK_LAYOUT) -> FloatArray:
    """Anchor centres ``float32 [A, 2]`` (x, y) in input pixels, in the model's output order.

    Cells are row-major (y outer, x inner), each repeated once per anchor of that cell; the
    centre is the cell centre ``(i + 0.5) * stride`` (MediaPipe ``anchor_offset = 0.5``, fixed
    anchor size, so only centres matter).
    """
    parts = []
    for stride, per_cell in layout:
        cells = input_size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        parts.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class Faces:
    """Faces of one image in source pixels: ``xyxy [F, 4]``, ``score [F]``, ``keypoints [F, 6, 2]``."""

    xyxy: FloatArray
    score: FloatArray
    keypoints: FloatArray

    @classmethod
    def empty(cls) -> Faces:
        return cls(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty((0, NUM_KEYPOINTS, 2), np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)


def decode_blazeface(
    raw: npt.NDArray[np.floating],
    anchors: FloatArray,
    transform: LetterboxTransform,
    *,
    min_confidence: float = 0.5,
    iou_threshold: float = 0.3,
    max_faces: int = 100,
) -> Faces:
    """One image's ``[A, 17]`` output (score after sigmoid, then 16 regressors) → faces.

    Boxes and keypoints are mapped back to source pixels with ``transform`` (boxes clipped to
    the image, keypoints not: an ear may lie outside a crop). Overlapping boxes are reduced
    by greedy NMS, highest score first.
    """
    raw = np.asarray(raw, dtype=np.float32).reshape(len(anchors), 1 + 4 + 2 * NUM_KEYPOINTS)
    keep = np.flatnonzero(raw[:, 0] >= min_confidence)
    if keep.size == 0:
        return Faces.empty()
    rows, centres = raw[keep], anchors[keep]
    cxcy = rows[:, 1:3] + centres
    half = np.abs(rows[:, 3:5]) / 2
    boxes = np.concatenate([cxcy - half, cxcy + half], axis=1)
    points = rows[:, 5:].reshape(-1, NUM_KEYPOINTS, 2) + centres[:, None, :]
    order = nms(boxes, rows[:, 0], iou_threshold, max_keep=max_faces)
    boxes, points, scores = boxes[order], points[order], rows[order, 0]
    source_points = (points - np.asarray([transform.pad_x, transform.pad_y], np.float32)) / np.float32(transform.scale)
    return Faces(
        xyxy=transform.to_source(boxes),
        score=scores.astype(np.float32),
        keypoints=source_points.astype(np.float32),
    )


def align_face(
    image: npt.NDArray[np.uint8],
    xyxy: npt.NDArray[np.floating],
    keypoints: npt.NDArray[np.floating] | None,
    size: int = 224,
    *,
    scale: float = 1.5,
) -> npt.NDArray[np.uint8]:
    """A ``size x size`` RGB crop of one face, eyes level (when keypoints are given).

    The crop is a square of side ``scale * face_size`` around the face: with keypoints its
    centre is midway between the eyes' midpoint and the mouth and it is rotated by the eye
    line's angle; ``face_size`` is the detector box's larger side. Pixels outside the image
    are replicated from the border.
    """
    box = np.asarray(xyxy, dtype=np.float64).reshape(4)
    face_size = max(box[2] - box[0], box[3] - box[1], 1.0)
    angle = 0.0
    centre = np.asarray([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    if keypoints is not None:
        points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
        right_eye, left_eye, mouth = points[0], points[1], points[3]
        eyes = (right_eye + left_eye) / 2
        dx, dy = left_eye - right_eye
        angle = float(np.degrees(np.arctan2(dy, dx)))
        centre = (eyes + mouth) / 2
    side = scale * face_size
    # rotate about the centre, then scale side -> size and move the centre to the crop centre
    matrix = np.asarray(cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, size / side), np.float64)
    matrix[:, 2] += size / 2 - centre
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(crop, dtype=np.uint8)
