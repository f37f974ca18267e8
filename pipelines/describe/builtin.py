"""The built-in description (provider :data:`BUILTIN_PROVIDER`) of one frame, and the value every
description is: :class:`Description`.

No captioning or vision-language model can run offline here, so the built-in description is
assembled only from facts the other steps measured: object counts by class, rough positions, OCR
text, faces and the named dominant colours of the pixels. It never invents anything a model did not
report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.colour import dominant_colours
from kernels.detections import Detections
from models.coco import class_name
from pipelines.describe.wording import (
    capitalise,
    colour_sentence,
    counted,
    face_sentence,
    faces_in,
    join_words,
    object_rows,
    position_key,
    position_of,
    text_sentence,
    texts_of,
)
from visiongrid.settings import RESERVED_PROVIDER_NAMES

__all__ = ["BUILTIN_ALIASES", "BUILTIN_PROVIDER", "Description", "describe_frame"]

BUILTIN_PROVIDER = "visiongrid-describe"
#: What a request's ``model`` may say to get the built-in description (no provider may be named so).
BUILTIN_ALIASES = RESERVED_PROVIDER_NAMES


@dataclass(frozen=True)
class Description:
    """One description of a frame or segment, as it goes into a ``describe`` chunk."""

    text: str
    provider: str
    first_frame: int | None = None
    last_frame: int | None = None
    start_ms: float | None = None
    end_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "provider": self.provider,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }


def describe_frame(
    image: npt.NDArray[np.uint8] | None,
    detections: Detections,
    *,
    labels: dict[int, str] | None,
    width: int,
    height: int,
) -> str:
    """A deterministic English description of one frame from measured facts only.

    Example: ``2 people (left, centre) and a car (right). Text reads "STOP". 1 face visible.
    Mostly grey and green.`` Classes are listed by count (then name); positions are of box
    centres in a 3×3 grid of the ``width`` × ``height`` frame. Without an image the colour
    sentence is left out.
    """
    sentences: list[str] = []
    objects = detections[object_rows(detections)]
    if len(objects):
        groups: dict[str, list[str]] = {}
        for box, class_id in zip(objects.xyxy, objects.class_id, strict=True):
            name = class_name(int(class_id), labels)
            groups.setdefault(name, []).append(position_of(box, width, height))
        parts = []
        for name, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
            positions = sorted(set(members), key=position_key)
            parts.append(f"{counted(len(members), name)} ({', '.join(positions)})")
        sentences.append(capitalise(join_words(parts)) + ".")
    else:
        sentences.append("No objects detected.")
    for sentence in (text_sentence(texts_of(detections)), face_sentence(faces_in(detections))):
        if sentence:
            sentences.append(sentence)
    if image is not None:
        colours = colour_sentence(dominant_colours(image, k=3))
        if colours:
            sentences.append(colours)
    return " ".join(sentences)
