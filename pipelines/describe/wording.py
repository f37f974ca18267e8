"""The words of the built-in description: plurals, articles, positions, and one sentence per kind of fact.

Everything here turns a fact another step measured (a class count, a box position, OCR text, faces,
named colour shares) into English; nothing here looks at pixels or invents a fact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.detections import Detections
from models.coco import FACE_CLASS_ID, TEXT_CLASS_ID

__all__ = [
    "capitalise",
    "colour_sentence",
    "counted",
    "face_sentence",
    "faces_in",
    "join_words",
    "object_rows",
    "plural",
    "position_key",
    "position_of",
    "text_sentence",
    "texts_of",
]

MAX_TEXTS = 8  # quoted text lines in one description
MAX_TEXT_CHARS = 80
COLOUR_MIN_SHARE = 0.15  # a colour is named when it covers at least this share of the pixels
ACROSS_FRAME = 2 / 3  # a box wider than this share of the frame is "across the frame"

_IRREGULAR_PLURALS = {
    "person": "people",
    "people": "people",
    "sheep": "sheep",
    "mouse": "mice",
    "knife": "knives",
    "skis": "skis",
    "scissors": "scissors",
}
_PAIRS = {"skis", "scissors"}  # plural-only nouns: "a pair of skis"
_POSITION_ORDER = {"left": 0, "centre": 1, "right": 2}


def plural(name: str) -> str:
    """English plural of a class name ("person" → "people", "bus" → "buses")."""
    words = name.split(" ")
    last = words[-1]
    if last in _IRREGULAR_PLURALS:
        last = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*words[:-1], last])


def counted(count: int, name: str) -> str:
    """ "a car", "an apple", "3 people", "a pair of skis"."""
    if count == 1:
        if name.split(" ")[-1] in _PAIRS:
            return f"a pair of {name}"
        return ("an " if name[0].lower() in "aeiou" else "a ") + name
    return f"{count} {plural(name)}"


def join_words(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def position_of(box: npt.NDArray[np.floating], width: int, height: int) -> str:
    """Rough position of a box: left/centre/right × top/middle/bottom, or "across the frame"."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if width <= 0 or height <= 0:
        return "centre"
    if (x2 - x1) / width > ACROSS_FRAME:
        return "across the frame"
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    column = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    if row == "middle":
        return column
    return row if column == "centre" else f"{row} {column}"


def position_key(position: str) -> tuple[int, int, str]:
    """Left to right, then top to bottom; "across the frame" sits with the centre."""
    words = position.split(" ")
    column = _POSITION_ORDER.get(words[-1], 1)
    row = {"top": 0, "bottom": 2}.get(words[0], 1)
    return (column, row, position)


def _clean_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not text:
        return None
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def texts_of(detections: Detections) -> list[str]:
    """OCR text of the targets (``data["text"]``), cleaned, de-duplicated, in row order."""
    column = detections.data.get("text")
    if column is None:
        return []
    seen: dict[str, None] = {}
    for value in column:
        text = _clean_text(value)
        if text is not None:
            seen.setdefault(text, None)
    return list(seen)


def faces_in(detections: Detections) -> int:
    """Faces in a frame: face targets plus faces found inside other targets (``data["faces"]``)."""
    count = int(np.count_nonzero(detections.class_id == FACE_CLASS_ID))
    nested = detections.data.get("faces")
    if nested is not None:
        count += sum(len(item) for item in nested if item is not None)
    return count


def object_rows(detections: Detections) -> npt.NDArray[np.bool_]:
    return (detections.class_id != FACE_CLASS_ID) & (detections.class_id != TEXT_CLASS_ID)


def text_sentence(texts: Iterable[str]) -> str | None:
    texts = list(texts)
    if not texts:
        return None
    shown = [f'"{text}"' for text in texts[:MAX_TEXTS]]
    more = len(texts) - len(shown)
    if more:
        shown.append(f"{more} more line{'s' if more > 1 else ''}")
    return f"Text reads {join_words(shown)}."


def face_sentence(faces: int, prefix: str = "") -> str | None:
    if faces <= 0:
        return None
    return f"{prefix}{faces} face{'s' if faces > 1 else ''} visible."


def colour_sentence(colours: list[tuple[str, float]]) -> str | None:
    """ "Mostly grey and green." from named colour shares; ``None`` without an image."""
    if not colours:
        return None
    named = [name for name, share in colours if share >= COLOUR_MIN_SHARE]
    if not named:
        return "Mixed colours."
    return f"Mostly {join_words(named)}."
