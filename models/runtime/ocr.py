"""Text reading (OCR) with RapidOCR's PP-OCR ONNX models on ONNX Runtime (the CPU compute path).

The PP-OCR detection and recognition models ship inside the ``rapidocr`` wheel, so nothing is
downloaded at run time. Like the detector, the class is plain Python (the in-process step models and
tests use it directly) and ``deployments/ocr.py`` wraps it in a Serve deployment, batching items
across tasks. RapidOCR reads one image at a time, so a batch is a loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from rapidocr import RapidOCR

from kernels.boxes import clip_boxes
from kernels.detections import Detections
from models.coco import TEXT_CLASS_ID

__all__ = ["DET_LIMIT_SIDE", "MAX_SIDE", "MIN_READABLE_SIDE", "UPSCALE_SHORT_SIDE", "TextReader", "reading_order"]

#: Below this many pixels on the short side an image cannot hold a readable line: no model call.
MIN_READABLE_SIDE = 8
#: Images with a shorter short side (detector crops, e.g. a plate region) are upscaled to it and
#: given a margin of half that on every side: text detection misses lines that touch the border.
UPSCALE_SHORT_SIDE = 48
#: Longest side an upscaled crop may reach.
MAX_SIDE = 2000
#: Text detection input: the long side is shrunk to this (PaddleOCR's own default, "max" 960).
#: RapidOCR's default instead grows the short side to 736 px, which blows a 90x22 crop up to
#: 3000x736 (2 s instead of 0.1 s) and made a 640x480 frame 3x slower with the same text read.
DET_LIMIT_SIDE = 960


class TextReader:
    """Lines of text in RGB images: one row per line, boxes in the image's own pixels."""

    def __init__(
        self, *, intra_op_threads: int = 1, use_angle_cls: bool = False, min_score: float = 0.5, use_cuda: bool = False
    ) -> None:
        # RapidOCR ignores a thread count above os.cpu_count() (it then uses every core): clamp.
        threads = max(1, min(intra_op_threads, os.cpu_count() or 1))
        params: dict[str, Any] = {
            "Global.log_level": "error",
            "Global.use_cls": use_angle_cls,
            "Global.text_score": min_score,
            "Global.max_side_len": MAX_SIDE,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_LIMIT_SIDE,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            # RapidOCR's own switch to ONNX Runtime's CUDA provider (it has no TensorRT option)
            "EngineConfig.onnxruntime.use_cuda": use_cuda,
        }
        self.engine = RapidOCR(params=params)
        self.min_score = min_score

    def read(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Text lines in reading order (top-to-bottom, then left-to-right).

        ``image`` is an RGB ``uint8`` HxWx3 array of any size; a crop too small to hold text gives
        no rows. Columns: ``confidence`` = recognition score, ``class_id`` = ``TEXT_CLASS_ID``,
        ``data["text"]`` = the line's text.
        """
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got {getattr(image, 'shape', type(image))}")
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        height, width = image.shape[:2]
        if min(height, width) < MIN_READABLE_SIDE:
            return _lines([], [], [])

        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        scale, margin = 1.0, 0
        if min(height, width) < UPSCALE_SHORT_SIDE:
            scale = max(1.0, min(UPSCALE_SHORT_SIDE / min(height, width), MAX_SIDE / max(height, width)))
            bgr = cv2.resize(bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
            margin = UPSCALE_SHORT_SIDE // 2
            bgr = cv2.copyMakeBorder(bgr, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=_edge_colour(bgr))

        result = self.engine(bgr)
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or texts is None or scores is None or len(texts) == 0:
            return _lines([], [], [])

        polygons = (np.asarray(boxes, dtype=np.float32).reshape(len(texts), -1, 2) - margin) / np.float32(scale)
        xyxy = clip_boxes(np.concatenate([polygons.min(axis=1), polygons.max(axis=1)], axis=1), width, height)
        keep = [
            i
            for i, text in enumerate(texts)
            if text.strip()
            and float(scores[i]) >= self.min_score
            and xyxy[i, 2] > xyxy[i, 0]
            and xyxy[i, 3] > xyxy[i, 1]
        ]
        order = reading_order(xyxy[keep])
        rows = [keep[i] for i in order]
        return _lines(xyxy[rows], [float(scores[i]) for i in rows], [str(texts[i]).strip() for i in rows])

    def read_each(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections | Exception]:
        """Read every image; an item that cannot be read comes back as its exception."""
        results: list[Detections | Exception] = []
        for image in images:
            try:
                results.append(self.read(image))
            except Exception as error:
                results.append(error)
        return results


def reading_order(xyxy: npt.NDArray[np.float32]) -> list[int]:
    """Row indices in reading order: lines grouped into rows by vertical overlap, rows top to
    bottom, lines within a row left to right."""
    if len(xyxy) == 0:
        return []
    centres = (xyxy[:, 1] + xyxy[:, 3]) / 2
    heights = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1.0)
    rows: list[list[int]] = []
    row_centre = row_height = 0.0
    for index in np.argsort(centres, kind="stable").tolist():
        # same row while this line's centre lies within half a line height of the row's centre
        if rows and abs(centres[index] - row_centre) <= 0.5 * min(row_height, float(heights[index])):
            rows[-1].append(index)
            continue
        rows.append([index])
        row_centre, row_height = float(centres[index]), float(heights[index])
    return [index for row in rows for index in sorted(row, key=lambda i: float(xyxy[i, 0]))]


def _edge_colour(image: npt.NDArray[Any]) -> tuple[int, int, int]:
    """The median colour of an image's outermost pixels (the margin's fill: the crop's background)."""
    edges = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    blue, green, red = np.median(edges, axis=0).astype(int).tolist()
    return blue, green, red


def _lines(xyxy: Any, confidence: list[float], texts: list[str]) -> Detections:
    return Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray(confidence, dtype=np.float32),
        class_id=np.full(len(texts), TEXT_CLASS_ID, dtype=np.int64),
        data={"text": texts},
    )
