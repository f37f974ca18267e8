"""Named dominant colours of an image (or a box of it), in pure NumPy.

Each (subsampled) pixel is put in one of a small fixed palette of colour names by simple rules
on hue, saturation and value; the answer is the names with their share of the pixels. It is a
coarse, honest fact about the pixels ("mostly grey and green"), not a perception model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: The palette, in index order of the per-pixel labels below.
PALETTE: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "purple",
    "pink",
    "brown",
)
_INDEX = {name: index for index, name in enumerate(PALETTE)}

#: At most about this many pixels are classified (a regular grid over the image or box).
MAX_SAMPLES = 16_384

# Hue bands in degrees [start, end) → name; red wraps around 0.
_HUE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 15.0, "red"),
    (15.0, 40.0, "orange"),
    (40.0, 70.0, "yellow"),
    (70.0, 160.0, "green"),
    (160.0, 200.0, "teal"),
    (200.0, 255.0, "blue"),
    (255.0, 290.0, "purple"),
    (290.0, 340.0, "pink"),
    (340.0, 360.1, "red"),
)


def _sample(
    image: npt.NDArray[np.uint8], box: Sequence[float] | npt.NDArray[np.floating] | None
) -> npt.NDArray[np.uint8]:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    height, width = image.shape[:2]
    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        left, right = int(np.clip(np.floor(x1), 0, width)), int(np.clip(np.ceil(x2), 0, width))
        top, bottom = int(np.clip(np.floor(y1), 0, height)), int(np.clip(np.ceil(y2), 0, height))
        image = image[top:bottom, left:right]
        height, width = image.shape[:2]
    if height == 0 or width == 0:
        return np.empty((0, 3), np.uint8)
    step = max(1, int(np.ceil(np.sqrt(height * width / MAX_SAMPLES))))
    return image[::step, ::step].reshape(-1, 3)


def colour_labels(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Index into :data:`PALETTE` for each RGB pixel of a ``[N, 3]`` uint8 array."""
    rgb = pixels.astype(np.float32) / 255.0
    red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    value = rgb.max(axis=1)
    minimum = rgb.min(axis=1)
    chroma = value - minimum
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-6), 0.0)

    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        value == red,
        ((green - blue) / safe) % 6.0,
        np.where(value == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    hue = hue * 60.0

    labels = np.full(len(rgb), _INDEX["grey"], dtype=np.intp)
    for start, end, name in _HUE_BANDS:
        labels[(hue >= start) & (hue < end)] = _INDEX[name]

    # Dark, desaturated-warm and light-red pixels get their everyday names.
    warm = (hue < 45.0) | (hue >= 340.0)
    labels[warm & (value < 0.6) & (saturation >= 0.25)] = _INDEX["brown"]
    labels[((hue < 15.0) | (hue >= 340.0)) & (saturation < 0.5) & (value >= 0.75)] = _INDEX["pink"]

    achromatic = (saturation < 0.18) | (chroma < 0.08)
    labels[achromatic] = _INDEX["grey"]
    labels[achromatic & (value >= 0.85)] = _INDEX["white"]
    labels[value < 0.18] = _INDEX["black"]
    return labels


def colour_shares(
    image: npt.NDArray[np.uint8], box: Sequence[float] | npt.NDArray[np.floating] | None = None
) -> dict[str, float]:
    """Share (0..1) of the sampled pixels per palette name; names with no pixels are left out."""
    pixels = _sample(image, box)
    if len(pixels) == 0:
        return {}
    counts = np.bincount(colour_labels(pixels), minlength=len(PALETTE))
    total = float(counts.sum())
    return {PALETTE[i]: float(counts[i]) / total for i in np.flatnonzero(counts)}


def dominant_colours(
    image: npt.NDArray[np.uint8], k: int = 3, box: Sequence[float] | npt.NDArray[np.floating] | None = None
) -> list[tuple[str, float]]:
    """The ``k`` most common named colours with their share of the pixels, largest first.

    Args:
        image: ``uint8 HxWx3`` RGB image.
        k: how many names to return at most.
        box: optional ``x1, y1, x2, y2`` region in pixels (clipped to the image); ``None`` = all.

    Ties are broken by palette order, so the answer is deterministic. An empty image or box
    gives an empty list.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    shares = colour_shares(image, box)
    ranked = sorted(shares.items(), key=lambda item: (-item[1], _INDEX[item[0]]))
    return ranked[:k]
