"""Box geometry on ``[N, 4]`` xyxy arrays: IoU, clipping, format conversion."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


def box_area(xyxy: FloatArray) -> FloatArray:
    return np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU, ``[N, 4] x [M, 4] -> [N, M]``; empty or degenerate boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def clip_boxes(xyxy: FloatArray, width: int, height: int) -> FloatArray:
    """Clip boxes to the frame ``[0, width] x [0, height]``."""
    out = np.array(xyxy, dtype=np.float32, copy=True).reshape(-1, 4)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def xyxy_to_cxcyah(xyxy: FloatArray) -> FloatArray:
    """Boxes as centre x, centre y, aspect ratio (w/h), height: the Kalman filter's measure."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    width = xyxy[:, 2] - xyxy[:, 0]
    height = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    return np.stack([xyxy[:, 0] + width / 2, xyxy[:, 1] + height / 2, width / height, height], axis=1)


def cxcyah_to_xyxy(cxcyah: FloatArray) -> FloatArray:
    cxcyah = np.asarray(cxcyah, dtype=np.float64).reshape(-1, 4)
    height = cxcyah[:, 3]
    width = cxcyah[:, 2] * height
    return np.stack(
        [cxcyah[:, 0] - width / 2, cxcyah[:, 1] - height / 2, cxcyah[:, 0] + width / 2, cxcyah[:, 1] + height / 2],
        axis=1,
    )
