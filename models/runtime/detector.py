"""Object detector over an ONNX model with ONNX Runtime (the CPU compute path).

A plain class: the bare loop, the in-process step models and tests use it directly, and
``deployments/detector.py`` wraps it in a Serve deployment that batches frames across tasks.
Pre/post-processing lives in ``kernels/`` (letterbox, per-format box decoding, NMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.box_decoding import DECODERS
from kernels.detections import Detections
from kernels.letterbox import LetterboxTransform, letterbox
from models.registry import ModelEntry
from models.runtime.session import make_session

__all__ = ["DetectRequest", "Detector"]


class Detector:
    """Letterbox → ONNX Runtime → decode, for a batch of RGB frames."""

    def __init__(
        self,
        entry: ModelEntry,
        *,
        intra_op_threads: int = 2,
        inter_op_threads: int = 1,
        spin: bool = False,
        providers: Sequence[Any] | None = None,
    ) -> None:
        if entry.task != "detect":
            raise ValueError(f"model {entry.name!r} is a {entry.task!r} model, not a detector")
        if entry.output_format not in DECODERS:
            raise ValueError(f"model {entry.name!r}: unknown output_format {entry.output_format!r}")
        self.entry = entry
        self.session = make_session(str(entry.path), intra_op_threads, inter_op_threads, spin=spin, providers=providers)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        dims = model_input.shape
        if entry.input_layout == "NHWC":
            self.input_size = (int(dims[1]), int(dims[2]))
        else:
            self.input_size = (int(dims[2]), int(dims[3]))
        self.max_batch = dims[0] if isinstance(dims[0], int) else None  # None: dynamic batch
        self._decode = DECODERS[entry.output_format]
        self._mean = np.asarray(entry.mean, dtype=np.float32)
        self._std = np.asarray(entry.std, dtype=np.float32)
        self._needs_normalise = bool(np.any(self._mean != 0) or np.any(self._std != 1))

    def _letterbox_into(
        self, batch: npt.NDArray[np.float32], index: int, image: npt.NDArray[np.uint8]
    ) -> LetterboxTransform:
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
        height, width = self.input_size
        return letterbox(image, (height, width), pad_value=self.entry.pad_value, out=batch[index])[1]

    def _to_model_layout(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._needs_normalise:
            batch -= self._mean
            batch /= self._std
        if self.entry.input_layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return batch

    def preprocess(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[npt.NDArray[np.float32], list[LetterboxTransform]]:
        """Letterbox every frame straight into one batch tensor (one copy per frame)."""
        height, width = self.input_size
        batch = np.empty((len(images), height, width, 3), dtype=np.float32)
        transforms = [self._letterbox_into(batch, i, image) for i, image in enumerate(images)]
        return self._to_model_layout(batch), transforms

    def infer(self, batch: Any) -> npt.NDArray[np.float32]:
        """Run the model; a fixed-batch model is run one image at a time. ``batch`` is a NumPy array
        or a torch tensor (e.g. letterboxed on the GPU by ``kernels.torch_ops``), bound in place."""
        if not isinstance(batch, np.ndarray):
            return self._infer_bound(batch)
        if self.max_batch is None or self.max_batch >= len(batch):
            return np.asarray(self.session.run(None, {self.input_name: batch})[0])
        outputs = [self.session.run(None, {self.input_name: batch[i : i + 1]})[0] for i in range(len(batch))]
        return np.concatenate(outputs)

    def _infer_bound(self, tensor: Any) -> npt.NDArray[np.float32]:
        """Run on a torch tensor where it lives (ONNX Runtime IO binding: no host round trip for the
        input); the output, small next to a frame batch, comes back to the host for box decoding."""
        tensor = tensor.contiguous()
        if self.max_batch is not None and self.max_batch < tensor.shape[0]:
            return np.concatenate([self._infer_bound(tensor[i : i + 1]) for i in range(tensor.shape[0])])
        binding = self.session.io_binding()
        device = tensor.device
        binding.bind_input(
            self.input_name, device.type, device.index or 0, np.float32, tuple(tensor.shape), tensor.data_ptr()
        )
        binding.bind_output(self.session.get_outputs()[0].name)
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0])

    def detect_prepared(
        self,
        batch: Any,
        transforms: Sequence[LetterboxTransform],
        *,
        min_confidence: float = 0.3,
        class_filter: npt.NDArray[np.integer] | None = None,
    ) -> list[Detections]:
        """Detections for a batch already letterboxed and normalised in the model's layout (NumPy, or
        a torch tensor on the device that decoded the frames), with each frame's transform."""
        raw = self.infer(batch)
        return [
            self._decode(raw[i], transform, min_confidence=min_confidence, class_filter=class_filter)
            for i, transform in enumerate(transforms)
        ]

    def detect(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        *,
        min_confidence: float = 0.3,
        class_filter: npt.NDArray[np.integer] | None = None,
    ) -> list[Detections]:
        """Detections per image, boxes in each image's own pixel coordinates."""
        if not images:
            return []
        batch, transforms = self.preprocess(images)
        return self.detect_prepared(batch, transforms, min_confidence=min_confidence, class_filter=class_filter)

    def detect_each(self, requests: Sequence[DetectRequest]) -> list[Detections | Exception]:
        """One batched model call for requests with their own options; a bad item fails alone.

        This is what the Serve deployment batches across tasks: each item carries its task's
        score floor and class filter, and an item that cannot be pre-processed (wrong shape,
        empty) comes back as its exception instead of failing the whole batch.
        """
        height, width = self.input_size
        batch = np.empty((len(requests), height, width, 3), dtype=np.float32)
        results: list[Detections | Exception] = []
        good: list[tuple[int, LetterboxTransform]] = []
        for slot, request in enumerate(requests):
            try:
                good.append((slot, self._letterbox_into(batch, len(good), request.image)))
                results.append(Detections.empty())
            except Exception as error:
                results.append(error)
        if good:
            raw = self.infer(self._to_model_layout(batch[: len(good)]))
            for row, (slot, transform) in enumerate(good):
                request = requests[slot]
                class_filter = np.asarray(request.class_filter) if request.class_filter else None
                results[slot] = self._decode(
                    raw[row], transform, min_confidence=request.min_confidence, class_filter=class_filter
                )
        return results


@dataclass(frozen=True)
class DetectRequest:
    """One frame to detect on, with the asking task's options."""

    image: npt.NDArray[np.uint8]
    min_confidence: float = 0.3
    class_filter: tuple[int, ...] | None = None
    model: str | None = None  # a registered detector's name; None: the configured default
