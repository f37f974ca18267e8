"""Face analysis: BlazeFace detection + FaceRes descriptors, with ONNX Runtime on CPU.

A plain class: the in-process step models and tests use it directly, and ``deployments/face.py``
wraps it in a Serve deployment that batches images across tasks (whole frames, or person crops
from the pipeline). Decoding and face alignment live in ``kernels/face_decoding.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from kernels.face_decoding import NUM_KEYPOINTS, Faces, align_face, blazeface_anchors, decode_blazeface
from kernels.letterbox import LetterboxTransform, letterbox
from kernels.vectors import l2_normalise
from models.coco import FACE_CLASS_ID
from models.registry import ModelEntry
from models.runtime.session import make_session

__all__ = ["DESCRIPTOR_CHUNK", "FACE_CROP_SCALE", "MIN_IMAGE_SIDE", "FaceAnalyzer"]

# Below this side (pixels) an image cannot hold a face the detector could use: upscaling a
# few pixels to 256 only invents faces, so such images give 0 faces.
MIN_IMAGE_SIDE = 16
# Side of the face crop relative to the detector box (eye-aligned): measured best on the
# same/different-person pairs of tests/deployments/test_face.py (1.0-1.6 all separate them).
FACE_CROP_SCALE = 1.3
DESCRIPTOR_CHUNK = 16  # faces per descriptor call (bounds memory on crowded frames)


class FaceAnalyzer:
    """Faces in RGB images: boxes, keypoints, an L2-normalised identity descriptor, age, gender."""

    def __init__(
        self,
        detector: ModelEntry,
        descriptor: ModelEntry,
        *,
        intra_op_threads: int = 1,
        min_confidence: float = 0.5,
        iou_threshold: float = 0.3,
        providers: Sequence[Any] | None = None,
    ) -> None:
        if detector.task != "face_detect" or detector.output_format != "blazeface":
            raise ValueError(f"model {detector.name!r} is not a BlazeFace face detector")
        if descriptor.task != "face_embed":
            raise ValueError(f"model {descriptor.name!r} is a {descriptor.task!r} model, not a face descriptor")
        self.detector_entry, self.descriptor_entry = detector, descriptor
        self.min_confidence = min_confidence
        self.iou_threshold = iou_threshold
        self.detector = make_session(str(detector.path), intra_op_threads, providers=providers)
        self.descriptor = make_session(str(descriptor.path), intra_op_threads, providers=providers)
        det_input = self.detector.get_inputs()[0]
        self.detector_input = det_input.name
        self.input_size = int(det_input.shape[1])
        self.anchors = blazeface_anchors(self.input_size)
        desc_input = self.descriptor.get_inputs()[0]
        self.descriptor_input = desc_input.name
        self.crop_size = int(desc_input.shape[1])
        self.descriptor_dim = int(self.descriptor.get_outputs()[0].shape[1])
        if descriptor.dim is not None and descriptor.dim != self.descriptor_dim:
            raise ValueError(f"{descriptor.name}: registry dim {descriptor.dim} != model's {self.descriptor_dim}")
        self._outputs = [output.name for output in self.descriptor.get_outputs()]

    def empty(self) -> Detections:
        """0 faces, with every data column present (so results merge)."""
        return self._result(Faces.empty(), np.empty((0, self.descriptor_dim), np.float32), None)

    def analyse(self, image: npt.NDArray[np.uint8]) -> Detections:
        result = self.analyse_each([image])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def analyse_each(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections | Exception]:
        """One detector call and batched descriptor calls for all images; a bad item fails alone."""
        size = self.input_size
        batch = np.empty((len(images), size, size, 3), dtype=np.float32)
        results: list[Detections | Exception] = []
        good: list[tuple[int, npt.NDArray[np.uint8], LetterboxTransform]] = []
        for slot, image in enumerate(images):
            try:
                image = _checked(image)
                if min(image.shape[:2]) >= MIN_IMAGE_SIDE:
                    transform = letterbox(image, (size, size), out=batch[len(good)])[1]
                    good.append((slot, image, transform))
                results.append(self.empty())
            except Exception as error:
                results.append(error)
        if not good:
            return results
        raw = np.asarray(self.detector.run(None, {self.detector_input: batch[: len(good)]})[0])
        found = [
            (
                slot,
                image,
                decode_blazeface(
                    raw[row],
                    self.anchors,
                    transform,
                    min_confidence=self.min_confidence,
                    iou_threshold=self.iou_threshold,
                ),
            )
            for row, (slot, image, transform) in enumerate(good)
        ]
        crops = [
            align_face(image, faces.xyxy[i], faces.keypoints[i], self.crop_size, scale=FACE_CROP_SCALE)
            for _, image, faces in found
            for i in range(len(faces))
        ]
        descriptors, gender, age = self._describe(crops)
        start = 0
        for slot, _, faces in found:
            stop = start + len(faces)
            results[slot] = self._result(faces, descriptors[start:stop], (gender[start:stop], age[start:stop]))
            start = stop
        return results

    def _describe(
        self, crops: list[npt.NDArray[np.uint8]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(L2-normalised descriptors [F, D], P(male) [F], expected age in years [F])."""
        if not crops:
            empty = np.empty(0, np.float32)
            return np.empty((0, self.descriptor_dim), np.float32), empty, empty
        parts: list[list[npt.NDArray[np.float32]]] = []
        for start in range(0, len(crops), DESCRIPTOR_CHUNK):
            faces = np.stack(crops[start : start + DESCRIPTOR_CHUNK]).astype(np.float32)
            parts.append(
                [np.asarray(out) for out in self.descriptor.run(self._outputs, {self.descriptor_input: faces})]
            )
        descriptor = np.concatenate([part[0] for part in parts])
        gender = np.concatenate([part[1] for part in parts]).reshape(-1) if len(self._outputs) > 1 else None
        age_probs = np.concatenate([part[2] for part in parts]) if len(self._outputs) > 2 else None
        nan = np.full(len(crops), np.nan, np.float32)
        age = (age_probs @ np.arange(age_probs.shape[1], dtype=np.float32)) if age_probs is not None else nan
        return (
            l2_normalise(descriptor),
            (gender if gender is not None else nan).astype(np.float32),
            age.astype(np.float32),
        )

    def _result(
        self,
        faces: Faces,
        descriptors: npt.NDArray[np.float32],
        extras: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None,
    ) -> Detections:
        count = len(faces)
        gender, age = extras if extras is not None else (np.empty(0, np.float32), np.empty(0, np.float32))
        return Detections(
            xyxy=faces.xyxy,
            confidence=faces.score,
            class_id=np.full(count, FACE_CLASS_ID, dtype=np.int64),
            data={
                "descriptor": descriptors.reshape(count, self.descriptor_dim),
                "keypoints": faces.keypoints.reshape(count, NUM_KEYPOINTS, 2),
                "gender_male": gender.reshape(count),
                "age": age.reshape(count),
            },
        )


def _checked(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    return array
