"""Turn raw detector outputs into :class:`Detections` in source-frame pixels, per model format.

Each decoder takes one image's raw output plus the letterbox transform that produced the
model input, so the boxes that leave here are already in source pixels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from kernels.letterbox import LetterboxTransform
from kernels.nms import nms


def _select(
    xyxy: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    class_id: npt.NDArray[np.integer],
    transform: LetterboxTransform,
    min_confidence: float,
    class_filter: npt.NDArray[np.integer] | None,
) -> Detections:
    keep = scores >= min_confidence
    if class_filter is not None:
        keep &= np.isin(class_id, class_filter)
    boxes = transform.to_source(xyxy[keep])
    nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Detections(boxes[nonempty], scores[keep][nonempty], class_id[keep][nonempty].astype(np.int64))


def decode_centernet(
    raw: npt.NDArray[np.floating],
    transform: LetterboxTransform,
    *,
    min_confidence: float = 0.3,
    class_filter: npt.NDArray[np.integer] | None = None,
) -> Detections:
    """Decode one image of CenterNet output ``[K, 6]`` = x1, y1, x2, y2, score, class.

    The model already did peak picking and top-K (see models/MANIFEST), so no NMS is
    needed: what remains is the score floor, the class filter and the box mapping back
    through the letterbox.
    """
    raw = np.asarray(raw, dtype=np.float32).reshape(-1, 6)
    return _select(raw[:, :4], raw[:, 4], raw[:, 5].astype(np.int64), transform, min_confidence, class_filter)


def decode_yolo(
    raw: npt.NDArray[np.floating],
    transform: LetterboxTransform,
    *,
    min_confidence: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 300,
    class_filter: npt.NDArray[np.integer] | None = None,
) -> Detections:
    """Decode one image of a YOLOv8/YOLO11 ONNX export, ``[4 + C, A]`` (or ``[A, 4 + C]``).

    Rows are cx, cy, w, h in model-input pixels followed by C class scores (no objectness
    in v8/11). Candidates under ``min_confidence`` are dropped before class-aware NMS.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim == 3:
        raw = raw[0]
    if raw.shape[0] < raw.shape[1] and raw.shape[0] > 4:  # [4 + C, A] as exported
        raw = raw.T
    class_scores = raw[:, 4:]
    class_id = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(raw)), class_id]
    candidates = scores >= min_confidence
    if class_filter is not None:
        candidates &= np.isin(class_id, class_filter)
    cxcywh, scores, class_id = raw[candidates, :4], scores[candidates], class_id[candidates]
    xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    keep = nms(xyxy, scores, iou_threshold, class_id=class_id, max_keep=max_detections)
    return _select(xyxy[keep], scores[keep], class_id[keep].astype(np.int64), transform, min_confidence, None)


DECODERS = {"centernet": decode_centernet, "yolo": decode_yolo}
