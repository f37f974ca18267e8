"""The `describe` step: an honest built-in scene description and an external provider chain.

No captioning or vision-language model can run offline here, so the built-in description
(provider :data:`BUILTIN_PROVIDER`) is assembled only from facts the other steps measured:
object counts by class, rough positions, motion of tracks, OCR text, faces and the named
dominant colours of the pixels. It never invents anything a model did not report.

A richer description can come from external OpenAI-compatible vision-language endpoints
configured in ``vlm_providers`` (see :mod:`deployments.vlm`); :class:`DescribeChain` tries them
in priority order, failing over to the next one only before the task's first chunk, as the
contract says, and ends with the built-in description.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from deployments.vlm import ProviderError
from kernels.colour import dominant_colours
from kernels.detections import NO_TRACK, Detections
from models.coco import FACE_CLASS_ID, TEXT_CLASS_ID, class_name
from visiongrid.settings import Settings

BUILTIN_PROVIDER = "visiongrid-describe"
BUILTIN_ALIASES = frozenset({BUILTIN_PROVIDER, "builtin"})

MOTION_THRESHOLD = 0.05  # centre displacement (fraction of the frame) below which a track "stays still"
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


# --- wording -----------------------------------------------------------------------------


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


def _capitalise(sentence: str) -> str:
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


def _position_key(position: str) -> tuple[int, int, str]:
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


def _object_rows(detections: Detections) -> npt.NDArray[np.bool_]:
    return (detections.class_id != FACE_CLASS_ID) & (detections.class_id != TEXT_CLASS_ID)


def _text_sentence(texts: Iterable[str]) -> str | None:
    texts = list(texts)
    if not texts:
        return None
    shown = [f'"{text}"' for text in texts[:MAX_TEXTS]]
    more = len(texts) - len(shown)
    if more:
        shown.append(f"{more} more line{'s' if more > 1 else ''}")
    return f"Text reads {join_words(shown)}."


def _face_sentence(faces: int, prefix: str = "") -> str | None:
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


# --- one frame ----------------------------------------------------------------------------


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
    objects = detections[_object_rows(detections)]
    if len(objects):
        groups: dict[str, list[str]] = {}
        for box, class_id in zip(objects.xyxy, objects.class_id, strict=True):
            name = class_name(int(class_id), labels)
            groups.setdefault(name, []).append(position_of(box, width, height))
        parts = []
        for name, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
            positions = sorted(set(members), key=_position_key)
            parts.append(f"{counted(len(members), name)} ({', '.join(positions)})")
        sentences.append(_capitalise(join_words(parts)) + ".")
    else:
        sentences.append("No objects detected.")
    for sentence in (_text_sentence(texts_of(detections)), _face_sentence(faces_in(detections))):
        if sentence:
            sentences.append(sentence)
    if image is not None:
        colours = colour_sentence(dominant_colours(image, k=3))
        if colours:
            sentences.append(colours)
    return " ".join(sentences)


# --- a segment of frames ------------------------------------------------------------------


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

        objects = detections[_object_rows(detections)]
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
            sentences.append(_capitalise(join_words([counted(n, class_name(c, self.labels)) for c, n in ranked])) + ".")
        else:
            sentences.append("No objects detected.")
        moves: Counter[tuple[str, str]] = Counter()
        for track_id, phrase in self.motion():
            moves[(class_name(self._tracks[track_id].class_id, self.labels), phrase)] += 1
        if moves:
            clauses = []
            for (name, phrase), n in sorted(moves.items(), key=lambda item: (-item[1], item[0])):
                clauses.append(f"{counted(n, name)} {phrase if n == 1 else _verb_plural(phrase)}")
            sentences.append(_capitalise(join_words(clauses)) + ".")
        for sentence in (
            _text_sentence(self._texts),
            _face_sentence(self._max_faces, "Up to " if self._frames > 1 and self._max_faces > 1 else ""),
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


# --- external providers -------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderConfig:
    """One external OpenAI-compatible endpoint; ``url`` is the API base, e.g. ``http://host:8000/v1``."""

    name: str
    url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout_s: float = 30.0


class UnknownProviderError(ValueError):
    """A request's ``model`` names no configured provider (the API answers 400, field ``model``)."""

    def __init__(self, hint: str, known: Iterable[str]) -> None:
        self.hint = hint
        self.known = sorted(known)
        super().__init__(f"unknown describe model {hint!r}; known: {', '.join(self.known)}")


class DescribeError(Exception):
    """The describe step failed for good: the provider in use failed and no failover is allowed or left."""

    def __init__(self, provider: str, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"describe provider {provider!r} failed ({code}): {message}")
        self.provider = provider
        self.code = code
        self.message = message
        self.status = status


_PROVIDER_FIELDS = ("name", "url", "model", "api_key", "timeout_s")


def _provider_from_entry(index: int, entry: Mapping[str, Any], default_timeout_s: float) -> ProviderConfig:
    label = f"vlm_providers[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{label}: expected an object with fields {', '.join(_PROVIDER_FIELDS)}")
    name = entry.get("name")
    if isinstance(name, str) and name.strip():
        label = f"{label} ({name!r})"
    unknown = sorted(set(entry) - set(_PROVIDER_FIELDS))
    if unknown:
        raise ValueError(
            f"{label}: unknown field(s) {', '.join(map(repr, unknown))}; use {', '.join(_PROVIDER_FIELDS)}"
        )
    for required in ("name", "url", "model"):
        value = entry.get(required)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{label}: field {required!r} is required and must be a non-empty string")
    name, url, model = str(entry["name"]).strip(), str(entry["url"]).strip(), str(entry["model"]).strip()
    if name in BUILTIN_ALIASES:
        raise ValueError(f"{label}: field 'name' must not be {name!r} (reserved for the built-in description)")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{label}: field 'url' must be an http(s) base URL like http://host:8000/v1, got {url!r}")
    api_key = entry.get("api_key", "")
    if api_key is None:
        api_key = ""
    if not isinstance(api_key, str):
        raise ValueError(f"{label}: field 'api_key' must be a string")
    timeout = entry.get("timeout_s", default_timeout_s)
    if timeout is None:
        timeout = default_timeout_s
    try:
        timeout_s = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: field 'timeout_s' must be a number of seconds, got {timeout!r}") from None
    if not np.isfinite(timeout_s) or timeout_s <= 0:
        raise ValueError(f"{label}: field 'timeout_s' must be > 0, got {timeout!r}")
    return ProviderConfig(name=name, url=url.rstrip("/"), model=model, api_key=api_key, timeout_s=timeout_s)


def providers_from_settings(settings: Settings) -> list[ProviderConfig]:
    """The configured providers in priority order; a bad entry raises ``ValueError`` naming it and the field."""
    providers = [
        _provider_from_entry(index, entry, settings.vlm_timeout_s) for index, entry in enumerate(settings.vlm_providers)
    ]
    seen: set[str] = set()
    for index, provider in enumerate(providers):
        if provider.name in seen:
            raise ValueError(f"vlm_providers[{index}] ({provider.name!r}): field 'name' repeats an earlier provider")
        seen.add(provider.name)
    return providers


def resolve_chain(model_hint: str | None, settings: Settings) -> list[str]:
    """Provider names in the order a task tries them.

    ``None``, ``"visiongrid-describe"`` or ``"builtin"`` → the built-in description only. A
    configured provider's name → that provider, then the other configured ones in their
    configured order, then the built-in; at most ``1 + provider_max_retries`` names. Any other
    hint raises :class:`UnknownProviderError`.
    """
    providers = providers_from_settings(settings)
    if model_hint is None or model_hint in BUILTIN_ALIASES:
        return [BUILTIN_PROVIDER]
    names = [provider.name for provider in providers]
    if model_hint not in names:
        raise UnknownProviderError(model_hint, [*names, BUILTIN_PROVIDER])
    chain = [model_hint, *(name for name in names if name != model_hint), BUILTIN_PROVIDER]
    return chain[: 1 + settings.provider_max_retries]


def build_prompt(local_text: str) -> str:
    """The user prompt sent with the image: the built-in facts ground the provider."""
    return (
        "Describe this video frame in one to three factual sentences. "
        "An object detector and OCR measured the following; use it, and do not contradict it "
        "without clear visual evidence.\n"
        f"Detected: {local_text}"
    )


class VLMDescriber(Protocol):
    """What :class:`DescribeChain` needs of a client (``deployments.vlm.VLMClient``)."""

    async def describe(self, provider: ProviderConfig, image: npt.NDArray[np.uint8], prompt: str) -> str: ...


class DescribeChain:
    """The provider chain of one task: the current provider and how many failovers are spent."""

    def __init__(
        self,
        names: list[str],
        providers: Mapping[str, ProviderConfig],
        client: VLMDescriber | None,
        max_retries: int,
    ) -> None:
        if not names:
            raise ValueError("a describe chain needs at least one provider")
        missing = [name for name in names if name != BUILTIN_PROVIDER and name not in providers]
        if missing:
            raise ValueError(f"describe chain names unconfigured provider(s) {missing}")
        if client is None and any(name != BUILTIN_PROVIDER for name in names):
            raise ValueError("a describe chain with external providers needs a VLM client")
        self.names = list(names)
        self.providers = dict(providers)
        self.client = client
        self.max_retries = max_retries
        self._index = 0
        self.failovers = 0

    @classmethod
    def from_settings(cls, model_hint: str | None, settings: Settings, client: VLMDescriber | None) -> DescribeChain:
        providers = {provider.name: provider for provider in providers_from_settings(settings)}
        return cls(resolve_chain(model_hint, settings), providers, client, settings.provider_max_retries)

    @property
    def current(self) -> str:
        """The provider in use (it changes only by failover)."""
        return self.names[self._index]

    async def describe(
        self,
        image: npt.NDArray[np.uint8],
        local_text: str,
        *,
        allow_failover: bool,
        segment: Description | None = None,
    ) -> Description:
        """Describe with the current provider, failing over while allowed.

        The built-in provider returns ``local_text`` as is. On a provider error, when
        ``allow_failover`` (the runner passes "no chunk written yet") and retries are left, the
        chain moves to the next provider for the rest of the task and tries again; otherwise it
        raises :class:`DescribeError`. ``segment``'s frame and time span are carried into the result.
        """
        span: dict[str, Any] = {}
        if segment is not None:
            span = {
                "first_frame": segment.first_frame,
                "last_frame": segment.last_frame,
                "start_ms": segment.start_ms,
                "end_ms": segment.end_ms,
            }
        while True:
            name = self.current
            if name == BUILTIN_PROVIDER:
                return Description(text=local_text, provider=BUILTIN_PROVIDER, **span)
            assert self.client is not None  # checked in __init__
            try:
                text = await self.client.describe(self.providers[name], image, build_prompt(local_text))
            except ProviderError as error:
                can_move = self._index + 1 < len(self.names) and self.failovers < self.max_retries
                if allow_failover and can_move:
                    self._index += 1
                    self.failovers += 1
                    continue
                raise DescribeError(name, error.code, error.message, error.status) from error
            return Description(text=text, provider=name, **span)
