"""Letterbox resize (keep aspect ratio, pad) and the inverse mapping of boxes.

Detectors take a fixed square input; stretching a 16:9 frame distorts objects, so the frame
is scaled to fit and padded at the bottom/right. :class:`LetterboxTransform` carries what is
needed to map model-space boxes back to source-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from kernels.boxes import clip_boxes


@dataclass(frozen=True)
class LetterboxTransform:
    """Model-input coordinates = source coordinates * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: float
    pad_y: float
    source_width: int
    source_height: int

    def to_source(self, xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Map ``[N, 4]`` model-input boxes back to source pixels, clipped to the frame."""
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale
        return clip_boxes(boxes, self.source_width, self.source_height)

    def to_model(self, xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]] * self.scale + self.pad_x
        boxes[:, [1, 3]] = boxes[:, [1, 3]] * self.scale + self.pad_y
        return boxes


def fit_within(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> tuple[npt.NDArray[np.uint8], float]:
    """Downscale ``image`` to fit ``size`` = (height, width), keeping its aspect ratio.

    Returns the image and its scale (<= 1; never upscales). Doing this where a frame is
    decoded shrinks what is shipped to a model replica; the model's own letterbox then has
    nothing left to resize, so results are identical to resizing there.
    """
    src_h, src_w = image.shape[:2]
    scale = min(size[1] / src_w, size[0] / src_h, 1.0)
    if scale >= 1.0:
        return image, 1.0
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    resized = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return resized.reshape(new_h, new_w, -1), float(scale)


def letterbox(
    image: npt.NDArray[np.uint8],
    size: tuple[int, int],
    *,
    pad_value: float = 0.0,
    center: bool = False,
    out: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], LetterboxTransform]:
    """Resize ``image`` (H, W, C) into a ``size`` = (height, width) float32 canvas.

    Args:
        pad_value: fill of the padding (0 for CenterNet; YOLO exports expect 114).
        center: pad on both sides instead of bottom/right only.
        out: optional preallocated ``float32 (height, width, C)`` canvas (e.g. one slot of a
            batch tensor) so batching does not copy each frame twice.
    """
    target_h, target_w = size
    src_h, src_w = image.shape[:2]
    if src_h == 0 or src_w == 0:
        raise ValueError("cannot letterbox an empty image")
    scale = min(target_w / src_w, target_h / src_h)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    pad_x = (target_w - new_w) / 2 if center else 0.0
    pad_y = (target_h - new_h) / 2 if center else 0.0
    x0, y0 = int(pad_x), int(pad_y)
    canvas = out if out is not None else np.empty((target_h, target_w, image.shape[2]), dtype=np.float32)
    canvas.fill(pad_value)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = (
        image if (new_w, new_h) == (src_w, src_h) else cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    )
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized.reshape(new_h, new_w, -1)  # cv2 drops a 1-channel axis
    transform = LetterboxTransform(
        scale=scale, pad_x=float(x0), pad_y=float(y0), source_width=src_w, source_height=src_h
    )
    return canvas, transform


def normalise(
    image: npt.NDArray[np.float32], mean: tuple[float, ...], std: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """``(image - mean) / std`` per channel, in place on a float32 array, returned for chaining."""
    image -= np.asarray(mean, dtype=np.float32)
    image /= np.asarray(std, dtype=np.float32)
    return image
