"""The one value type for what a frame holds.

A :class:`Detections` is a struct of arrays: one row per target. It leaves the detector,
passes through every pipeline step and the tracker, and reaches the chunk builder without
being re-shaped into dicts on the way. Per-target results of later steps (OCR text, an
appearance feature, a face) live in ``data`` as columns of the same length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.boxes import box_area

NO_TRACK = -1  # track_id of a target the tracker has not (yet) confirmed

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Index = int | slice | npt.NDArray[np.bool_] | npt.NDArray[np.integer[Any]] | list[int]


def _column(values: Any, dtype: Any, width: int | None = None) -> npt.NDArray[Any]:
    array = np.asarray(values, dtype=dtype)
    if width is not None:
        return array.reshape(-1, width)
    return array.reshape(-1)


@dataclass(eq=False)
class Detections:
    """Targets in one frame, in source-frame pixel coordinates.

    Attributes:
        xyxy: ``float32 [N, 4]`` boxes as x1, y1, x2, y2.
        confidence: ``float32 [N]`` detector scores in 0..1.
        class_id: ``int64 [N]`` class ids of the model's vocabulary (COCO-80 for the default).
        track_id: ``int64 [N]``; :data:`NO_TRACK` until the tracker assigns one.
        data: extra per-target columns (arrays or lists of length N) added by later steps.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _column(self.xyxy, np.float32, 4)
        self.confidence = _column(self.confidence, np.float32)
        self.class_id = _column(self.class_id, np.int64)
        count = len(self.xyxy)
        if len(self.track_id) == 0 and count:
            self.track_id = np.full(count, NO_TRACK, dtype=np.int64)
        else:
            self.track_id = _column(self.track_id, np.int64)
        lengths = {len(self.confidence), len(self.class_id), len(self.track_id)}
        lengths |= {len(column) for column in self.data.values()}
        if lengths != {count} and count + sum(lengths) > 0:
            raise ValueError(f"Detections columns disagree in length: boxes {count}, others {sorted(lengths)}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Index) -> Detections:
        """Select rows by int, slice, boolean mask or index array; columns stay aligned."""
        if isinstance(index, int | np.integer):
            index = [index]
        rows = np.arange(len(self))[index]
        return Detections(
            xyxy=self.xyxy[rows],
            confidence=self.confidence[rows],
            class_id=self.class_id[rows],
            track_id=self.track_id[rows],
            data={name: _take(column, rows) for name, column in self.data.items()},
        )

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        """Concatenate detections; a data column missing from some parts is an error."""
        parts = [part for part in parts if len(part)]
        if not parts:
            return cls.empty()
        names = set(parts[0].data)
        if any(set(part.data) != names for part in parts):
            raise ValueError("cannot merge Detections with different data columns")
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts]),
            data={name: _concat([p.data[name] for p in parts]) for name in names},
        )

    @property
    def area(self) -> FloatArray:
        return box_area(self.xyxy).astype(np.float32)

    def scaled(self, factor: float) -> Detections:
        """A copy with every box multiplied by ``factor`` (e.g. back to source pixels)."""
        return Detections(
            self.xyxy * np.float32(factor), self.confidence, self.class_id, self.track_id, dict(self.data)
        )

    def with_track_ids(self, track_id: IntArray) -> Detections:
        """A copy sharing every column but ``track_id``."""
        return Detections(self.xyxy, self.confidence, self.class_id, np.asarray(track_id), dict(self.data))


def _take(column: Any, rows: npt.NDArray[np.intp]) -> Any:
    if isinstance(column, np.ndarray):
        return column[rows]
    return [column[i] for i in rows]


def _concat(columns: list[Any]) -> Any:
    if all(isinstance(column, np.ndarray) for column in columns):
        return np.concatenate(columns)
    return [item for column in columns for item in column]
