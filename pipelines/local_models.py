"""The step models in-process: plain model classes called off the event loop.

The cluster runs each model as a Ray Serve deployment (``deployments/step_models.py``); this is the same
:class:`~pipelines.executor.StepModels` contract over the plain classes of ``models/runtime/``, without
Ray, for the bare loop, tests and benchmarks' baselines. Models load on first use, so a plan that only
detects never pays for OCR or faces.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from models.registry import get_model
from models.runtime.detector import Detector
from visiongrid.settings import Settings

__all__ = ["LocalModels"]


class LocalModels:
    """:class:`~pipelines.executor.StepModels` over plain model objects (each may be injected)."""

    def __init__(
        self,
        settings: Settings,
        *,
        detector: Detector | None = None,
        reader: Any | None = None,
        embedder: Any | None = None,
        faces: Any | None = None,
    ) -> None:
        self.settings = settings
        self._detectors: dict[str, Detector] = {}
        if detector is not None:
            self._detectors[settings.detector_model] = detector
        self._reader = reader
        self._embedder = embedder
        self._faces = faces
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lazy loading

    def detector(self, model: str | None = None) -> Detector:
        name = model or self.settings.detector_model
        with self._lock:
            if name not in self._detectors:
                self._detectors[name] = Detector(
                    get_model(name, self.settings.models_dir),
                    intra_op_threads=self.settings.ort_intra_op_threads,
                    inter_op_threads=self.settings.ort_inter_op_threads,
                )
            return self._detectors[name]

    def reader(self) -> Any:
        with self._lock:
            if self._reader is None:
                from models.runtime.ocr import TextReader

                self._reader = TextReader(intra_op_threads=self.settings.ort_intra_op_threads)
            return self._reader

    def embedder(self) -> Any:
        with self._lock:
            if self._embedder is None:
                from models.runtime.embedder import AppearanceEmbedder

                self._embedder = AppearanceEmbedder(
                    get_model(self.settings.appearance_model, self.settings.models_dir),
                    intra_op_threads=self.settings.ort_intra_op_threads,
                )
            return self._embedder

    def face_analyzer(self) -> Any:
        with self._lock:
            if self._faces is None:
                from models.runtime.face import FaceAnalyzer

                self._faces = FaceAnalyzer(
                    get_model(self.settings.face_detector_model, self.settings.models_dir),
                    get_model(self.settings.face_descriptor_model, self.settings.models_dir),
                    intra_op_threads=self.settings.ort_intra_op_threads,
                    min_confidence=self.settings.face_min_confidence,
                )
            return self._faces

    # ------------------------------------------------------------------ StepModels

    async def detect(
        self,
        image: npt.NDArray[np.uint8],
        *,
        model: str | None,
        min_confidence: float,
        class_filter: tuple[int, ...] | None,
    ) -> Detections:
        detector = await asyncio.to_thread(self.detector, model)
        classes = np.asarray(class_filter) if class_filter else None
        found = await asyncio.to_thread(detector.detect, [image], min_confidence=min_confidence, class_filter=classes)
        return found[0]

    async def read_text(self, image: npt.NDArray[np.uint8]) -> Detections:
        reader = await asyncio.to_thread(self.reader)
        result: Detections = await asyncio.to_thread(reader.read, image)
        return result

    async def embed(self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        embedder = await asyncio.to_thread(self.embedder)
        vectors: npt.NDArray[np.float32] = await asyncio.to_thread(embedder.embed_boxes, image, xyxy)
        return vectors

    async def find_faces(self, image: npt.NDArray[np.uint8]) -> Detections:
        analyzer = await asyncio.to_thread(self.face_analyzer)
        result: Detections = await asyncio.to_thread(analyzer.analyse, image)
        return result
