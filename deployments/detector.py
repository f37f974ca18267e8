"""Object detector over an ONNX model with ONNX Runtime (the CPU compute path).

The class is plain Python so the bare loop and tests use it in-process; the Serve deployment
wraps it and batches across tasks. Pre/post-processing lives in ``kernels/``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from kernels.box_decoding import DECODERS
from kernels.detections import Detections
from kernels.letterbox import LetterboxTransform, letterbox
from models.registry import ModelEntry


def make_session(path: str, intra_op_threads: int, inter_op_threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with explicit thread counts.

    ORT defaults to every core; several replicas on one machine would then oversubscribe it,
    so the thread count comes from the replica's CPU share (a setting).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


class Detector:
    """Letterbox → ONNX Runtime → decode, for a batch of RGB frames."""

    def __init__(self, entry: ModelEntry, *, intra_op_threads: int = 2, inter_op_threads: int = 1) -> None:
        if entry.task != "detect":
            raise ValueError(f"model {entry.name!r} is a {entry.task!r} model, not a detector")
        if entry.output_format not in DECODERS:
            raise ValueError(f"model {entry.name!r}: unknown output_format {entry.output_format!r}")
        self.entry = entry
        self.session = make_session(str(entry.path), intra_op_threads, inter_op_threads)
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

    def preprocess(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[npt.NDArray[np.float32], list[LetterboxTransform]]:
        """Letterbox every frame straight into one batch tensor (one copy per frame)."""
        height, width = self.input_size
        batch = np.empty((len(images), height, width, 3), dtype=np.float32)
        transforms = [
            letterbox(image, (height, width), pad_value=self.entry.pad_value, out=batch[i])[1]
            for i, image in enumerate(images)
        ]
        if self._needs_normalise:
            batch -= self._mean
            batch /= self._std
        if self.entry.input_layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return batch, transforms

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run the model; a fixed-batch model is run one image at a time."""
        if self.max_batch is None or self.max_batch >= len(batch):
            return np.asarray(self.session.run(None, {self.input_name: batch})[0])
        outputs = [self.session.run(None, {self.input_name: batch[i : i + 1]})[0] for i in range(len(batch))]
        return np.concatenate(outputs)

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
        raw = self.infer(batch)
        return [
            self._decode(raw[i], transforms[i], min_confidence=min_confidence, class_filter=class_filter)
            for i in range(len(images))
        ]
