"""Draw tracked targets onto a frame: a box per target in its track's colour, ``#id class`` on a
filled tab above it, and the track's recent trail (box-bottom centres) as a polyline.

The box is drawn on the target's integer ROI exactly as its chunk reports it (``left, top, width,
height``: the pixels ``[left, left+width) × [top, top+height)``), three pixels wide and inside the ROI,
so a player can check an annotated frame against its chunk. Colours come from a fixed palette by
track id (the same id is the same colour in every frame and in the playground).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["PALETTE", "Box", "colour_of", "draw_targets"]

#: 12 well-separated RGB colours (Tableau 10 + two), bright enough on dark and light scenes.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (255, 215, 0),
    (0, 255, 127),
    (255, 0, 255),
)
LINE = 3  # box thickness, pixels (inside the ROI): H.264 4:2:0 halves chroma, so 2 px blurred the colour

#: ``(left, top, width, height)`` in source pixels, as a chunk's ``roi``.
Box = tuple[int, int, int, int]


def colour_of(track_id: int) -> tuple[int, int, int]:
    return PALETTE[track_id % len(PALETTE)] if track_id >= 0 else (200, 200, 200)


def draw_targets(
    image: npt.NDArray[np.uint8],
    boxes: Sequence[Box],
    track_ids: Sequence[int],
    labels: Sequence[str],
    trails: Mapping[int, Sequence[tuple[int, int]]] | None = None,
) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` (RGB, H×W×3) with every target drawn; ``trails`` by track id."""
    canvas = np.ascontiguousarray(image).copy()
    height, width = canvas.shape[:2]
    for track_id, points in (trails or {}).items():
        if len(points) > 1:
            line = np.asarray(points, dtype=np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [line], isClosed=False, color=colour_of(track_id), thickness=2, lineType=cv2.LINE_AA)
    for (left, top, box_w, box_h), track_id, label in zip(boxes, track_ids, labels, strict=True):
        colour = colour_of(track_id)
        right, bottom = left + box_w - 1, top + box_h - 1
        across, down = min(LINE, box_w), min(LINE, box_h)  # four filled bands: exactly the ROI's edge pixels
        for x0, y0, x1, y1 in (
            (left, top, right, top + down - 1),
            (left, bottom - down + 1, right, bottom),
            (left, top, left + across - 1, bottom),
            (right - across + 1, top, right, bottom),
        ):
            cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, cv2.FILLED)
        _tab(canvas, f"#{track_id} {label}" if track_id >= 0 else label, left, top, colour, width, height)
    return canvas


def _tab(
    canvas: npt.NDArray[np.uint8], text: str, left: int, top: int, colour: tuple[int, int, int], width: int, height: int
) -> None:
    """The label on a filled tab just above the box (inside the frame when the box touches the top)."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    (text_w, text_h), base = cv2.getTextSize(text, font, scale, thickness)
    tab_h = text_h + base + 4
    y0 = top - tab_h if top - tab_h >= 0 else min(top + LINE, max(0, height - tab_h))
    x0 = min(max(0, left), max(0, width - text_w - 6))
    cv2.rectangle(canvas, (x0, y0), (x0 + text_w + 6, y0 + tab_h), colour, cv2.FILLED)
    ink = (0, 0, 0) if sum(colour) > 400 else (255, 255, 255)
    cv2.putText(canvas, text, (x0 + 3, y0 + text_h + 2), font, scale, ink, thickness, cv2.LINE_AA)
