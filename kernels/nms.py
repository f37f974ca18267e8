"""Non-maximum suppression (greedy, IoU-based), class-aware via coordinate offsets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kernels.boxes import box_iou


def nms(
    xyxy: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    iou_threshold: float,
    class_id: npt.NDArray[np.integer] | None = None,
    max_keep: int | None = None,
) -> npt.NDArray[np.intp]:
    """Indices of boxes kept, highest score first.

    A box is suppressed when its IoU with an already kept, higher-scoring box exceeds
    ``iou_threshold``. With ``class_id`` given, boxes of different classes never suppress each
    other: each class is shifted to its own disjoint region (the standard batched-NMS trick),
    so one pass handles all classes.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.empty(0, dtype=np.intp)
    if class_id is not None:
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (np.asarray(class_id, dtype=np.float64) * span)[:, None]
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    limit = len(boxes) if max_keep is None else max_keep
    while order.size and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        overlaps = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[overlaps <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)
