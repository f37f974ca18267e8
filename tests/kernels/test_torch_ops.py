"""The PyTorch kernels (GPU preprocessing and NMS) against their NumPy/OpenCV references.

They run on CPU tensors wherever torch is installed (the GPU machine has it; ``pip install torch``
CPU elsewhere) and again on CUDA tensors where a GPU is visible; each skip says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernels.letterbox import letterbox
from kernels.nms import nms as nms_reference
from models.registry import get_model
from models.runtime.detector import Detector
from tests.conftest import read_rgb

torch = pytest.importorskip("torch", reason="torch is not installed here (the GPU kernels need it)")
from kernels import torch_ops  # noqa: E402

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible: GPU-only check"),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(576, 768), (360, 640), (300, 300), (100, 900)])
def test_letterbox_matches_the_opencv_reference(device: str, shape: tuple[int, int], media_dir: Path) -> None:
    photo = read_rgb(media_dir / "dog.jpg")
    import cv2

    image = np.ascontiguousarray(cv2.resize(photo, (shape[1], shape[0]), interpolation=cv2.INTER_AREA))
    reference, ref_transform = letterbox(image, (512, 512), pad_value=0.0)
    batch, transforms = torch_ops.letterbox_batch([torch.from_numpy(image).to(device)], (512, 512), pad_value=0.0)
    canvas = batch[0].permute(1, 2, 0).cpu().numpy()
    assert canvas.shape == reference.shape
    assert transforms[0] == ref_transform
    difference = np.abs(canvas - reference)
    assert difference.mean() < 1.0, difference.mean()  # resampling rounding only
    new_h, new_w = round(shape[0] * ref_transform.scale), round(shape[1] * ref_transform.scale)
    assert np.all(canvas[new_h:, :, :] == 0) and np.all(canvas[:, new_w:, :] == 0), "padding is the pad value"


@pytest.mark.parametrize("device", DEVICES)
def test_normalise_and_channels_last(device: str) -> None:
    frame = torch.full((4, 4, 3), 100, dtype=torch.uint8, device=device)
    batch, _ = torch_ops.letterbox_batch(
        [frame], (4, 4), mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0), channels_first=False
    )
    assert batch.shape == (1, 4, 4, 3)
    assert torch.allclose(batch[0, 0, 0].cpu(), torch.tensor([45.0, 20.0, 14.0]))


def test_bad_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        torch_ops.letterbox_batch([torch.zeros((4, 4), dtype=torch.uint8)], (8, 8))
    with pytest.raises(ValueError, match="at least one"):
        torch_ops.letterbox_batch([], (8, 8))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("classes", [False, True])
def test_nms_keeps_what_the_numpy_reference_keeps(device: str, classes: bool) -> None:
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 400, size=(300, 2))
    sizes = rng.uniform(5, 120, size=(300, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = rng.uniform(0, 1, size=300).round(2)  # ties too: both orders are stable
    class_id = rng.integers(0, 4, size=300) if classes else None
    expected = nms_reference(boxes, scores, 0.45, class_id=class_id)
    kept = torch_ops.nms(
        torch.from_numpy(boxes).to(device),
        torch.from_numpy(scores).to(device),
        0.45,
        class_id=torch.from_numpy(class_id).to(device) if class_id is not None else None,
    )
    assert kept.tolist() == expected.tolist()
    assert torch_ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.45, max_keep=5).tolist() == (
        expected[:5].tolist() if not classes else nms_reference(boxes, scores, 0.45, max_keep=5).tolist()
    )
    assert torch_ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("device", DEVICES)
def test_detections_from_the_device_canvas_match_the_host_path(device: str, media_dir: Path) -> None:
    """The real detector on a canvas made by the torch kernel finds what it finds on the host canvas."""
    detector = Detector(get_model("centernet"), intra_op_threads=2)
    photo = read_rgb(media_dir / "dog.jpg")
    host = detector.detect([photo], min_confidence=0.3)[0]
    batch, transforms = torch_ops.letterbox_batch(
        [torch.from_numpy(photo).to(device)],
        detector.input_size,
        pad_value=detector.entry.pad_value,
        mean=detector.entry.mean,
        std=detector.entry.std,
        channels_first=detector.entry.input_layout == "NCHW",
    )
    device_found = detector.detect_prepared(batch, transforms, min_confidence=0.3)[0]  # bound where it lies
    from kernels.boxes import box_iou

    # every host detection is found on the device canvas: same class, same box, nearly the same score
    iou = box_iou(host.xyxy, device_found.xyxy)
    for row in range(len(host)):
        same_class = device_found.class_id == host.class_id[row]
        best = int(np.argmax(np.where(same_class, iou[row], -1)))
        assert same_class[best] and iou[row, best] > 0.9
        assert abs(float(device_found.confidence[best]) - float(host.confidence[row])) < 0.05
    # anything extra sits at the score floor (resampling rounding moved it across 0.3), not a real miss
    matched = iou.max(axis=0) > 0.9 if len(host) else np.zeros(len(device_found), bool)
    assert np.all(device_found.confidence[~matched] < 0.35), device_found.confidence[~matched]
