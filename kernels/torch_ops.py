"""Letterbox + normalise and NMS in PyTorch, for frames that already live on a GPU.

The NumPy/OpenCV functions in ``kernels/letterbox.py`` and ``kernels/nms.py`` are the references:
these give the same canvases (within resampling rounding: bilinear with antialias against OpenCV's
INTER_AREA/INTER_LINEAR, a mean absolute difference under 1 grey level on real photos) and the
same kept indices, which ``tests/kernels/test_torch_ops.py`` checks on CPU tensors wherever torch
is installed and on CUDA tensors where a GPU is. A frame decoded on the device (DALI/NVDEC) is then
letterboxed where it is, and only the model's small output comes back to the host.

``torch`` is imported lazily by the callers that need it: the CPU path never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from kernels.letterbox import LetterboxTransform

if TYPE_CHECKING:
    import torch

__all__ = ["letterbox_batch", "nms"]


def letterbox_batch(
    frames: Sequence[torch.Tensor],
    size: tuple[int, int],
    *,
    pad_value: float = 0.0,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    channels_first: bool = True,
) -> tuple[torch.Tensor, list[LetterboxTransform]]:
    """``uint8 (H, W, 3)`` frames (any device) → one ``float32`` batch ``(B, 3, h, w)`` (or
    ``(B, h, w, 3)``), each frame scaled to fit ``size`` = (height, width), padded bottom/right with
    ``pad_value``, then ``(x - mean) / std``; with the transforms that map boxes back."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if not frames:
        raise ValueError("letterbox_batch needs at least one frame")
    target_h, target_w = size
    device = frames[0].device
    batch = torch.full((len(frames), 3, target_h, target_w), float(pad_value), dtype=torch.float32, device=device)
    transforms: list[LetterboxTransform] = []
    for slot, frame in enumerate(frames):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {tuple(frame.shape)}")
        src_h, src_w = int(frame.shape[0]), int(frame.shape[1])
        scale = min(target_w / src_w, target_h / src_h)
        new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        chw = frame.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        if (new_w, new_h) != (src_w, src_h):
            # antialias when shrinking stands in for OpenCV's INTER_AREA; bilinear when growing
            chw = F.interpolate(chw, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)
            chw = chw.round_().clamp_(0, 255)  # OpenCV resizes uint8 to uint8: round the same way
        batch[slot, :, :new_h, :new_w] = chw[0]
        transforms.append(LetterboxTransform(scale, 0.0, 0.0, src_w, src_h))
    mean_t = torch.as_tensor(list(mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(list(std), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    batch = (batch - mean_t) / std_t
    if not channels_first:
        batch = batch.permute(0, 2, 3, 1).contiguous()
    return batch, transforms


def nms(
    xyxy: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    class_id: torch.Tensor | None = None,
    max_keep: int | None = None,
) -> npt.NDArray[np.intp]:
    """Indices kept by greedy NMS, highest score first — :func:`kernels.nms.nms` on tensors.

    The pairwise IoU matrix is computed on the tensors' device in one go; the greedy pass, which is
    sequential by nature, walks that matrix on the host (one copy of ``N x N`` booleans instead of a
    device synchronisation per kept box).
    """
    import torch

    boxes = xyxy.reshape(-1, 4).to(torch.float64)
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    if class_id is not None:
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (class_id.to(torch.float64) * span)[:, None]
    order = torch.argsort(-scores.to(torch.float64), stable=True)
    boxes = boxes[order]
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    top_left = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = area[:, None] + area[None, :] - inter
    iou = torch.where(union > 0, inter / union, torch.zeros_like(inter))
    suppresses = (iou > iou_threshold).cpu().numpy()
    ranked = order.cpu().numpy()
    limit = len(ranked) if max_keep is None else max_keep
    alive = np.ones(len(ranked), dtype=bool)
    keep: list[int] = []
    for rank in range(len(ranked)):
        if not alive[rank]:
            continue
        keep.append(int(ranked[rank]))
        if len(keep) >= limit:
            break
        alive &= ~suppresses[rank]
        alive[rank] = False
    return np.asarray(keep, dtype=np.intp)
