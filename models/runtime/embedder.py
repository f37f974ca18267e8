"""Appearance embedder: one feature vector per target crop, for re-identification and search.

The model (``models/appearance.onnx``, registry name ``appearance``) is the detector's own
MobileNetV3 backbone cut out by ``tools/appearance_model.py``: a letterboxed target crop in,
``float32 [N, D]`` pooled activations out, un-normalised (callers take cosines, or the norm of
a mean over a track). Crops are cut in the task worker (:func:`kernels.crops.crop_resize`, uint8,
small) and shipped here; the Serve deployment batches the crops of several callers' frames into
one model call, and one caller's bad item fails alone.

This is the plain class; ``deployments/embedder.py`` wraps it in a Serve deployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.crops import crop_resize
from models.registry import ModelEntry
from models.runtime.joint import split_joint_call
from models.runtime.session import make_session

__all__ = ["AppearanceEmbedder"]


class AppearanceEmbedder:
    """uint8 crops → ONNX Runtime → ``float32 [N, D]`` appearance vectors."""

    def __init__(self, entry: ModelEntry, *, intra_op_threads: int = 1, providers: Sequence[Any] | None = None) -> None:
        if entry.task != "feature":
            raise ValueError(f"model {entry.name!r} is a {entry.task!r} model, not an appearance-feature model")
        if entry.path is None:
            raise ValueError(f"model {entry.name!r} names no ONNX file")
        self.entry = entry
        self.session = make_session(str(entry.path), intra_op_threads, providers=providers)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        dims = model_input.shape
        spatial = (dims[1], dims[2]) if entry.input_layout == "NHWC" else (dims[2], dims[3])
        if not all(isinstance(d, int) for d in spatial):
            raise ValueError(f"model {entry.name!r}: the crop size must be fixed in the model input, got {dims}")
        self.crop_size: tuple[int, int] = (int(spatial[0]), int(spatial[1]))
        out_dims = self.session.get_outputs()[0].shape
        model_dim = out_dims[-1] if isinstance(out_dims[-1], int) else None
        if entry.dim is not None and model_dim is not None and entry.dim != model_dim:
            raise ValueError(f"model {entry.name!r}: registry says dim {entry.dim}, the ONNX output has {model_dim}")
        if model_dim is None and entry.dim is None:
            raise ValueError(f"model {entry.name!r}: embedding dim unknown (set 'dim' in the registry)")
        self.dim: int = int(model_dim if model_dim is not None else entry.dim)  # type: ignore[arg-type]
        self.pad_value = round(entry.pad_value)
        self._mean = np.asarray(entry.mean, dtype=np.float32)
        self._std = np.asarray(entry.std, dtype=np.float32)
        self._needs_normalise = bool(np.any(self._mean != 0) or np.any(self._std != 1))

    def _check(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        crops = np.asarray(crops)
        height, width = self.crop_size
        if crops.ndim != 4 or crops.shape[1:] != (height, width, 3):
            raise ValueError(f"expected uint8 crops [N,{height},{width},3], got shape {crops.shape}")
        if crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops, got {crops.dtype}")
        return crops

    def _run(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = crops.astype(np.float32)
        if self._needs_normalise:
            batch -= self._mean
            batch /= self._std
        if self.entry.input_layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        out = self.session.run(None, {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(crops), self.dim)

    def embed_crops(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """``uint8 [N, h, w, 3]`` crops at :attr:`crop_size` → ``float32 [N, D]`` (un-normalised)."""
        return self._run(self._check(crops))

    def embed_boxes(self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Convenience: crop ``xyxy`` (source pixels) out of ``image`` and embed the crops."""
        return self._run(crop_resize(image, xyxy, self.crop_size, pad_value=self.pad_value))

    def embed_each(self, batches: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32] | Exception]:
        """One model call for several callers' crops; a bad item comes back as its exception.

        Each item is one caller's ``[n_i, h, w, 3]`` crops (``n_i`` may be 0); the result for
        each is its ``[n_i, D]`` slice of the joint call.
        """
        return split_joint_call(batches, self._check, lambda crops: self._run(np.stack(crops)), self.dim)
