"""Object detector over an ONNX model with ONNX Runtime (the CPU compute path).

The class is plain Python so the bare loop and tests use it in-process; the Serve deployment
wraps it and batches across tasks. Pre/post-processing lives in ``kernels/``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from ray import serve

from deployments.batching import BatchedModel, item_or_raise
from kernels.box_decoding import DECODERS
from kernels.detections import Detections
from kernels.letterbox import LetterboxTransform, letterbox
from models.registry import ModelEntry, get_model
from visiongrid.settings import Settings


def make_session(
    path: str, intra_op_threads: int, inter_op_threads: int = 1, *, spin: bool = False
) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with explicit thread counts.

    ORT defaults to every core; several replicas on one machine would then oversubscribe it,
    so the thread count comes from the replica's CPU share (a setting). Its worker threads also
    spin-wait after each run by default, which on a small machine burns the CPU the other model
    replicas, the decoder and Serve need next; they sleep instead unless ``spin``.
    """
    options = ort.SessionOptions()
    spinning = "1" if spin else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


class Detector:
    """Letterbox → ONNX Runtime → decode, for a batch of RGB frames."""

    def __init__(
        self, entry: ModelEntry, *, intra_op_threads: int = 2, inter_op_threads: int = 1, spin: bool = False
    ) -> None:
        if entry.task != "detect":
            raise ValueError(f"model {entry.name!r} is a {entry.task!r} model, not a detector")
        if entry.output_format not in DECODERS:
            raise ValueError(f"model {entry.name!r}: unknown output_format {entry.output_format!r}")
        self.entry = entry
        self.session = make_session(str(entry.path), intra_op_threads, inter_op_threads, spin=spin)
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


@serve.deployment(ray_actor_options={"num_cpus": 1.0}, max_ongoing_requests=64)
class DetectorDeployment(BatchedModel):
    """The detector as a Ray Serve deployment: frames from every running task are batched
    together (``@serve.batch``), each keeping its own options and its own errors."""

    def __init__(self, settings: Settings) -> None:
        # ORT threads follow the replica's CPU share, rounded up: on 2 cores the detector gets
        # 1.3 CPUs of Ray's accounting (the rest hosts the light ingress, workers and other models) and 2 threads.
        self.settings = settings
        self.threads = max(1, math.ceil(settings.detector_num_cpus))
        self.detectors: dict[str, Detector] = {}
        self.default = settings.detector_model
        self._detector(None)  # load the default now: a broken model should fail the deployment, not a task
        self.configure_batching(
            self.detect_batch, max_batch_size=settings.detector_max_batch_size, wait_s=settings.detector_batch_wait_s
        )

    def _detector(self, name: str | None) -> Detector:
        """The detector registered as ``name``, loaded on first use (a user's own ONNX needs no code)."""
        key = name or self.default
        if key not in self.detectors:
            self.detectors[key] = Detector(
                get_model(key, self.settings.models_dir),
                intra_op_threads=self.threads,
                inter_op_threads=self.settings.ort_inter_op_threads,
                spin=self.settings.detector_spin_wait,
            )
        return self.detectors[key]

    def _detect_grouped(self, requests: list[DetectRequest]) -> list[Detections | Exception]:
        """One model call per detector named in the batch; an unknown model fails only its items."""
        results: list[Detections | Exception] = [Detections.empty()] * len(requests)
        groups: dict[str | None, list[int]] = {}
        for slot, request in enumerate(requests):
            groups.setdefault(request.model, []).append(slot)
        for name, slots in groups.items():
            try:
                detector = self._detector(name)
            except Exception as error:
                for slot in slots:
                    results[slot] = error
                continue
            for slot, result in zip(slots, detector.detect_each([requests[s] for s in slots]), strict=True):
                results[slot] = result
        return results

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.005)
    async def detect_batch(self, requests: list[DetectRequest]) -> list[Detections | Exception]:
        self.count_batch(len(requests))
        # ONNX Runtime releases the GIL; running it off the event loop lets the next batch
        # gather while this one computes.
        return await asyncio.to_thread(self._detect_grouped, requests)

    async def detect(
        self,
        image: npt.NDArray[np.uint8],
        min_confidence: float,
        class_filter: tuple[int, ...] | None,
        model: str | None = None,
    ) -> Detections:
        return item_or_raise(await self.detect_batch(DetectRequest(image, min_confidence, class_filter, model)))

    def input_size(self, model: str | None = None) -> tuple[int, int]:
        """(height, width) of the model input, so callers can downscale frames before sending."""
        return self._detector(model).input_size
