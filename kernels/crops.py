"""Cut target boxes out of a frame as fixed-size, aspect-kept uint8 crops (for the embedder).

Crops are made where the frame is decoded (the task worker) and shipped to the embedder
replica, so they stay uint8 and small: a 256x128 crop is 96 KiB against 900 KiB for the frame.
Each box is clipped to the frame, scaled to fit the target size keeping its aspect ratio (the
same interpolation rule as :func:`kernels.letterbox.letterbox`: area when shrinking, linear
when enlarging) and centred on a constant-colour canvas. Boxes that are degenerate or lie
outside the frame become a 1-pixel crop at the nearest frame pixel instead of an error, so one
bad detection cannot fail a frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: Default grey of the padding around a crop (what the appearance model was measured with:
#: black padding reads as dark clothing and separates people slightly worse).
CROP_PAD_VALUE = 114


def pixel_bounds(xyxy: npt.NDArray[np.float32], width: int, height: int) -> npt.NDArray[np.int64]:
    """Integer ``[x0, y0, x1, y1)`` bounds inside the frame, at least one pixel each way.

    The one pixel window of a box, for every crop cut out of a frame. Corners may come in either order;
    NaN and infinities count as 0.
    """
    boxes = np.nan_to_num(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4), nan=0.0, posinf=0.0, neginf=0.0)
    left = np.minimum(boxes[:, 0], boxes[:, 2])
    right = np.maximum(boxes[:, 0], boxes[:, 2])
    top = np.minimum(boxes[:, 1], boxes[:, 3])
    bottom = np.maximum(boxes[:, 1], boxes[:, 3])
    x0 = np.clip(np.floor(left), 0, width - 1).astype(np.int64)
    y0 = np.clip(np.floor(top), 0, height - 1).astype(np.int64)
    x1 = np.clip(np.ceil(right), 0, width).astype(np.int64)
    y1 = np.clip(np.ceil(bottom), 0, height).astype(np.int64)
    x1 = np.maximum(x1, x0 + 1)
    y1 = np.maximum(y1, y0 + 1)
    return np.stack([x0, y0, x1, y1], axis=1)


def letterbox_crop(
    patch: npt.NDArray[np.uint8],
    size: tuple[int, int],
    *,
    pad_value: int = CROP_PAD_VALUE,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Scale ``patch`` (h, w, 3) to fit ``size`` = (height, width), centred on a ``pad_value`` canvas."""
    target_h, target_w = size
    src_h, src_w = patch.shape[:2]
    scale = min(target_w / src_w, target_h / src_h)
    new_w = min(target_w, max(1, round(src_w * scale)))
    new_h = min(target_h, max(1, round(src_h * scale)))
    canvas = out if out is not None else np.empty((target_h, target_w, 3), dtype=np.uint8)
    canvas.fill(pad_value)
    resized: npt.NDArray[np.uint8] = patch
    if (new_w, new_h) != (src_w, src_h):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = np.asarray(
            cv2.resize(np.ascontiguousarray(patch), (new_w, new_h), interpolation=interpolation), dtype=np.uint8
        )
    x0, y0 = (target_w - new_w) // 2, (target_h - new_h) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized.reshape(new_h, new_w, 3)
    return canvas


def crop_resize(
    image: npt.NDArray[np.uint8],
    xyxy: npt.NDArray[np.floating],
    size: tuple[int, int],
    *,
    pad_value: int = CROP_PAD_VALUE,
) -> npt.NDArray[np.uint8]:
    """Crops of ``image`` (H, W, 3) at ``xyxy`` ([N, 4], source pixels) as ``uint8 [N, h, w, 3]``.

    Args:
        size: (height, width) of every crop (the embedding model's input).
        pad_value: grey level of the letterbox padding.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    target_h, target_w = size
    if target_h < 1 or target_w < 1:
        raise ValueError(f"crop size must be positive, got {size}")
    height, width = image.shape[:2]
    bounds = pixel_bounds(np.asarray(xyxy, dtype=np.float32), width, height)
    crops = np.empty((len(bounds), target_h, target_w, 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(bounds):
        letterbox_crop(image[y0:y1, x0:x1], size, pad_value=pad_value, out=crops[i])
    return crops
