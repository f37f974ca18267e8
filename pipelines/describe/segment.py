"""The built-in description of a segment of video frames: what was there, and how tracks moved.

:class:`SegmentDescriber` gathers a segment's facts frame by frame (O(tracks) state, never frames) and
describes the segment once, when the runner closes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kernels.colour import dominant_colours
from kernels.detections import NO_TRACK, Detections
from models.coco import class_name
from pipelines.describe.builtin import BUILTIN_PROVIDER, Description
from pipelines.describe.wording import (
    capitalise,
    colour_sentence,
    counted,
    face_sentence,
    faces_in,
    join_words,
    object_rows,
    text_sentence,
    texts_of,
)

__all__ = ["MOTION_THRESHOLD", "SegmentDescriber", "motion_phrase"]

MOTION_THRESHOLD = 0.05  # centre displacement (fraction of the frame) below which a track "stays still"


@dataclass
class _Track:
    class_id: int
    first: tuple[float, float]  # centre as a fraction of the frame
    last: tuple[float, float]
    sightings: int = 1


def motion_phrase(dx: float, dy: float, threshold: float = MOTION_THRESHOLD) -> str:
    """How a centre moved, ``dx``/``dy`` as fractions of the frame: "moves left to right", "stays still"."""
    horizontal = abs(dx) >= threshold and abs(dx) >= 0.5 * abs(dy)
    vertical = abs(dy) >= threshold and abs(dy) >= 0.5 * abs(dx)
    parts = []
    if horizontal:
        parts.append("left to right" if dx > 0 else "right to left")
    if vertical:
        parts.append("downwards" if dy > 0 else "upwards")
    if not parts:
        return "stays still"
    return "moves " + " and ".join(parts)


def _verb_plural(phrase: str) -> str:
    verb, _, rest = phrase.partition(" ")
    return {"moves": "move", "stays": "stay"}.get(verb, verb) + (" " + rest if rest else "")


@dataclass
class SegmentDescriber:
    """Accumulates the facts of a segment's frames and describes the segment once.

    Holds O(tracks) state, never frames: per track its first and last box centre; per class the
    largest count seen in one frame; the text lines seen; the most faces in one frame; the named
    colours of the last frame.
    """

    labels: dict[int, str] | None = None
    motion_threshold: float = MOTION_THRESHOLD
    _tracks: dict[int, _Track] = field(default_factory=dict, init=False)
    _max_counts: Counter[int] = field(default_factory=Counter, init=False)
    _texts: dict[str, None] = field(default_factory=dict, init=False)
    _max_faces: int = field(default=0, init=False)
    _colours: list[tuple[str, float]] = field(default_factory=list, init=False)
    _first_frame: int | None = field(default=None, init=False)
    _last_frame: int | None = field(default=None, init=False)
    _start_ms: float | None = field(default=None, init=False)
    _end_ms: float | None = field(default=None, init=False)
    _frames: int = field(default=0, init=False)

    def reset(self) -> None:
        """Forget everything: the next :meth:`add` starts a new segment."""
        self._tracks.clear()
        self._max_counts.clear()
        self._texts.clear()
        self._max_faces = 0
        self._colours = []
        self._first_frame = self._last_frame = None
        self._start_ms = self._end_ms = None
        self._frames = 0

    @property
    def frames(self) -> int:
        return self._frames

    def add(
        self,
        frame_index: int,
        timestamp_ms: float,
        image: npt.NDArray[np.uint8] | None,
        detections: Detections,
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Take in one frame's facts (``width``/``height`` default to the image's size)."""
        if image is not None:
            height = height or image.shape[0]
            width = width or image.shape[1]
            self._colours = dominant_colours(image, k=3)
        if not width or not height:
            raise ValueError("SegmentDescriber.add needs an image or the frame's width and height")
        if self._first_frame is None:
            self._first_frame, self._start_ms = frame_index, float(timestamp_ms)
        self._last_frame, self._end_ms = frame_index, float(timestamp_ms)
        self._frames += 1

        objects = detections[object_rows(detections)]
        for class_id, count in Counter(int(c) for c in objects.class_id).items():
            self._max_counts[class_id] = max(self._max_counts[class_id], count)
        centres_x = (objects.xyxy[:, 0] + objects.xyxy[:, 2]) / 2 / width
        centres_y = (objects.xyxy[:, 1] + objects.xyxy[:, 3]) / 2 / height
        for track_id, class_id, cx, cy in zip(objects.track_id, objects.class_id, centres_x, centres_y, strict=True):
            if track_id == NO_TRACK:
                continue
            centre = (float(cx), float(cy))
            track = self._tracks.get(int(track_id))
            if track is None:
                self._tracks[int(track_id)] = _Track(int(class_id), centre, centre)
            else:
                track.last = centre
                track.sightings += 1
        for text in texts_of(detections):
            self._texts.setdefault(text, None)
        self._max_faces = max(self._max_faces, faces_in(detections))

    def motion(self) -> list[tuple[int, str]]:
        """``(track_id, phrase)`` for each track seen at least twice, in track order."""
        return [
            (track_id, motion_phrase(t.last[0] - t.first[0], t.last[1] - t.first[1], self.motion_threshold))
            for track_id, t in sorted(self._tracks.items())
            if t.sightings >= 2
        ]

    def text(self) -> str:
        if self._frames == 0:
            return "No frames analysed."
        sentences: list[str] = []
        if self._max_counts:
            ranked = sorted(self._max_counts.items(), key=lambda item: (-item[1], class_name(item[0], self.labels)))
            sentences.append(capitalise(join_words([counted(n, class_name(c, self.labels)) for c, n in ranked])) + ".")
        else:
            sentences.append("No objects detected.")
        moves: Counter[tuple[str, str]] = Counter()
        for track_id, phrase in self.motion():
            moves[(class_name(self._tracks[track_id].class_id, self.labels), phrase)] += 1
        if moves:
            clauses = []
            for (name, phrase), n in sorted(moves.items(), key=lambda item: (-item[1], item[0])):
                clauses.append(f"{counted(n, name)} {phrase if n == 1 else _verb_plural(phrase)}")
            sentences.append(capitalise(join_words(clauses)) + ".")
        for sentence in (
            text_sentence(self._texts),
            face_sentence(self._max_faces, "Up to " if self._frames > 1 and self._max_faces > 1 else ""),
            colour_sentence(self._colours),
        ):
            if sentence:
                sentences.append(sentence)
        return " ".join(sentences)

    def describe(self) -> Description:
        """The built-in description of the frames added since the last :meth:`reset`."""
        return Description(
            text=self.text(),
            provider=BUILTIN_PROVIDER,
            first_frame=self._first_frame,
            last_frame=self._last_frame,
            start_ms=self._start_ms,
            end_ms=self._end_ms,
        )
