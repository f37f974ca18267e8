"""The built-in description: true of real photos (via the real detector), exact on hand-made frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kernels.detections import Detections
from kernels.tracking import ByteTracker
from models.coco import COCO_CLASSES, FACE_CLASS_ID, TEXT_CLASS_ID
from models.runtime.detector import Detector
from pipelines.describe import (
    BUILTIN_PROVIDER,
    Description,
    SegmentDescriber,
    counted,
    describe_frame,
    motion_phrase,
    plural,
    position_of,
)
from pipelines.tracker_settings import tracker_config
from tests.conftest import read_rgb
from visiongrid.settings import Settings

PERSON, CAR, DOG = COCO_CLASSES.index("person"), COCO_CLASSES.index("car"), COCO_CLASSES.index("dog")
W, H = 600, 300


def dets(rows: list[tuple[int, tuple[float, float, float, float]]], track_ids: list[int] | None = None,
         **data: list[object]) -> Detections:  # fmt: skip
    return Detections(
        xyxy=np.array([box for _, box in rows], np.float32).reshape(-1, 4),
        confidence=np.full(len(rows), 0.9, np.float32),
        class_id=np.array([class_id for class_id, _ in rows], np.int64),
        track_id=np.array(track_ids if track_ids is not None else [], np.int64),
        data=dict(data),
    )


def box_at(cx: float, cy: float, size: float = 40) -> tuple[float, float, float, float]:
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


# --- wording ------------------------------------------------------------------------------------


def test_plurals_and_articles() -> None:
    assert [plural(n) for n in ("person", "bus", "dog", "wine glass", "knife", "sheep", "couch", "pedestrian")] == [
        "people", "buses", "dogs", "wine glasses", "knives", "sheep", "couches", "pedestrians",
    ]  # fmt: skip
    assert counted(1, "car") == "a car"
    assert counted(1, "umbrella") == "an umbrella"
    assert counted(1, "skis") == "a pair of skis"
    assert counted(3, "person") == "3 people"


def test_positions_and_motion_phrases() -> None:
    assert position_of(np.array(box_at(50, 150)), W, H) == "left"
    assert position_of(np.array(box_at(300, 30)), W, H) == "top"
    assert position_of(np.array(box_at(550, 280)), W, H) == "bottom right"
    assert position_of(np.array([10, 100, 590, 200]), W, H) == "across the frame"
    assert motion_phrase(0.3, 0.0) == "moves left to right"
    assert motion_phrase(-0.3, 0.01) == "moves right to left"
    assert motion_phrase(0.0, 0.2) == "moves downwards"
    assert motion_phrase(0.2, -0.2) == "moves left to right and upwards"
    assert motion_phrase(0.02, -0.03) == "stays still"


# --- one frame: real photos ---------------------------------------------------------------------


def test_dog_photo(media_dir: Path, detector: Detector) -> None:
    image = read_rgb(media_dir / "dog.jpg")
    detections = detector.detect([image], min_confidence=0.3)[0]
    height, width = image.shape[:2]
    text = describe_frame(image, detections, labels=None, width=width, height=height)
    # dog.jpg: a dog sitting lower left, a bicycle across the middle, a truck parked top right
    # (this detector calls the truck a car).
    lowered = text.lower()
    assert "a dog (left)" in lowered
    assert "a bicycle (centre)" in lowered
    assert "a car (top right)" in lowered or "a truck (top right)" in lowered
    assert text.endswith("Mostly grey and yellow.")
    assert "Text reads" not in text and "face" not in text  # nothing read, no faces: none claimed
    assert text == describe_frame(image, detections, labels=None, width=width, height=height)  # deterministic


def test_horses_photo_counts_what_was_detected(media_dir: Path, detector: Detector) -> None:
    image = read_rgb(media_dir / "horses.jpg")
    detections = detector.detect([image], min_confidence=0.3)[0]
    horses = int(np.count_nonzero(detections.class_id == COCO_CLASSES.index("horse")))
    assert horses >= 2
    text = describe_frame(image, detections, labels=None, width=image.shape[1], height=image.shape[0])
    assert text.startswith(f"{horses} horses (left, ")
    assert "brown" in text  # brown horses on brown ground


def test_requested_names_are_used(media_dir: Path, detector: Detector) -> None:
    image = read_rgb(media_dir / "person.jpg")
    detections = detector.detect([image], min_confidence=0.5)[0]
    text = describe_frame(image, detections, labels={PERSON: "pedestrian"}, width=640, height=424)
    assert "a pedestrian (centre)" in text
    assert "person" not in text


# --- one frame: hand-made facts -----------------------------------------------------------------


def test_empty_frame_says_so() -> None:
    black = np.zeros((H, W, 3), np.uint8)
    assert describe_frame(black, Detections.empty(), labels=None, width=W, height=H) == (
        "No objects detected. Mostly black."
    )
    assert describe_frame(None, Detections.empty(), labels=None, width=W, height=H) == "No objects detected."


def test_text_and_faces_are_reported() -> None:
    face = dets([(FACE_CLASS_ID, box_at(100, 60, 20))])
    frame = dets(
        [
            (PERSON, box_at(100, 150)),
            (PERSON, box_at(300, 150)),
            (CAR, box_at(520, 150)),
            (TEXT_CLASS_ID, box_at(300, 40)),
            (TEXT_CLASS_ID, box_at(300, 260)),
            (FACE_CLASS_ID, box_at(300, 120, 20)),
        ],
        text=[None, None, None, "STOP", "  one   way ", None],
        faces=[face, None, None, None, None, None],
    )
    text = describe_frame(None, frame, labels=None, width=W, height=H)
    assert text == '2 people (left, centre) and a car (right). Text reads "STOP" and "one way". 2 faces visible.'


def test_repeated_and_long_text_is_trimmed() -> None:
    lines = [f"line {i}" for i in range(10)] + ["line 0", "x" * 200]
    frame = dets([(TEXT_CLASS_ID, box_at(300, 150))] * len(lines), text=list(lines))
    text = describe_frame(None, frame, labels=None, width=W, height=H)
    assert text.count('"line 0"') == 1
    assert text.endswith('"line 7" and 3 more lines.')


# --- segments -----------------------------------------------------------------------------------


def test_segment_motion_counts_and_text_exact() -> None:
    segment = SegmentDescriber()
    grey = np.full((H, W, 3), 128, np.uint8)
    for step in range(5):
        frame = dets(
            [
                (PERSON, box_at(60 + 110 * step, 150)),  # walks left to right
                (CAR, box_at(500, 200)),  # parked
                (PERSON, box_at(300, 40 + 50 * step)),  # walks towards the bottom
                (DOG, box_at(100 + 3 * step, 250)),  # untracked: counted, no motion claimed
            ],
            track_ids=[1, 2, 3, -1],
            text=[None, "TAXI" if step == 4 else None, None, None],
        )
        if step == 2:  # one frame with an extra person briefly seen once
            frame = Detections.merge([frame, dets([(PERSON, box_at(50, 50))], [9], text=[None])])
        segment.add(10 + step, 1000.0 + 200 * step, grey, frame)
    result = segment.describe()
    assert result == Description(
        text=(
            "3 people, a car and a dog. A car stays still, a person moves downwards and a person moves left "
            'to right. Text reads "TAXI". Mostly grey.'
        ),
        provider=BUILTIN_PROVIDER,
        first_frame=10,
        last_frame=14,
        start_ms=1000.0,
        end_ms=1800.0,
    )
    assert result.to_dict() == {
        "text": result.text,
        "provider": "visiongrid-describe",
        "first_frame": 10,
        "last_frame": 14,
        "start_ms": 1000.0,
        "end_ms": 1800.0,
    }
    assert dict(segment.motion()) == {1: "moves left to right", 2: "stays still", 3: "moves downwards"}

    segment.reset()
    assert segment.describe() == Description("No frames analysed.", BUILTIN_PROVIDER)
    segment.add(20, 4000.0, None, Detections.empty(), width=W, height=H)
    assert segment.describe().text == "No objects detected."


def test_segment_groups_tracks_that_move_alike() -> None:
    segment = SegmentDescriber(labels={PERSON: "pedestrian"})
    for step in range(3):
        frame = dets(
            [(PERSON, box_at(500 - 150 * step, 100 + 10 * i)) for i in range(3)] + [(FACE_CLASS_ID, box_at(1, 1))],
            track_ids=[1, 2, 3, -1],
        )
        segment.add(step, step * 100.0, None, frame, width=W, height=H)
    assert segment.describe().text == "3 pedestrians. 3 pedestrians move right to left. 1 face visible."


def test_segment_holds_no_frames() -> None:
    segment = SegmentDescriber()
    image = np.zeros((H, W, 3), np.uint8)
    segment.add(0, 0.0, image, dets([(CAR, box_at(100, 100))], [4]))
    held = [value for value in vars(segment).values() if isinstance(value, np.ndarray)]
    assert held == []


def test_real_person_walking_right(media_dir: Path, detector: Detector) -> None:
    """A real person (cut from darknet's person.jpg) pasted further right in each frame, tracked for real."""
    photo = read_rgb(media_dir / "person.jpg")
    person = photo[96:384, 180:286]
    tracker = ByteTracker(tracker_config(Settings()))
    segment = SegmentDescriber()
    for index in range(12):
        canvas = np.full((480, 640, 3), (188, 180, 166), np.uint8)
        x = 40 + 40 * index
        canvas[120:408, x : x + 106] = person
        found = detector.detect([canvas], min_confidence=0.3)[0]
        segment.add(index, index * 100.0, canvas, tracker.update(found))
    text = segment.describe().text
    assert text.startswith("A person. A person moves left to right.")
    assert text.endswith("Mostly grey.")


def test_real_video_motion_claims_match_the_tracks(media_dir: Path, detector: Detector) -> None:
    """vtest.avi: people walk past a parked van; each claim agrees with the tracker's own boxes."""
    capture = cv2.VideoCapture(str(media_dir / "vtest.avi"))
    tracker = ByteTracker(tracker_config(Settings()))
    segment = SegmentDescriber()
    centres: dict[int, list[tuple[float, float]]] = {}
    for index in range(60):
        ok, frame = capture.read()
        assert ok
        if index % 3:
            continue
        image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        tracked = tracker.update(detector.detect([image], min_confidence=0.3)[0])
        segment.add(index, index * 100.0, image, tracked)
        for track_id, box in zip(tracked.track_id, tracked.xyxy, strict=True):
            if track_id >= 0:
                centres.setdefault(int(track_id), []).append(
                    (float(box[0] + box[2]) / 2 / width, float(box[1] + box[3]) / 2 / height)
                )
    capture.release()

    motion = dict(segment.motion())
    assert motion, "the tracker found no track seen twice"
    assert any(phrase != "stays still" for phrase in motion.values())
    for track_id, phrase in motion.items():
        (x0, y0), (x1, y1) = centres[track_id][0], centres[track_id][-1]
        dx, dy = x1 - x0, y1 - y0
        if phrase == "stays still":
            assert max(abs(dx), abs(dy)) < 0.05
        assert ("left to right" in phrase) == (dx >= 0.05 and abs(dx) >= 0.5 * abs(dy))
        assert ("right to left" in phrase) == (dx <= -0.05 and abs(dx) >= 0.5 * abs(dy))
    text = segment.describe().text
    assert "people" in text and " move" in text
    assert text.endswith("Mostly green and grey.")  # a lawn and a paved path


@pytest.mark.parametrize("name", ["messi5.jpg", "kite.jpg"])
def test_crowded_photos_list_each_position_once(media_dir: Path, detector: Detector, name: str) -> None:
    image = read_rgb(media_dir / name)
    detections = detector.detect([image], min_confidence=0.3)[0]
    text = describe_frame(image, detections, labels=None, width=image.shape[1], height=image.shape[0])
    people = int(np.count_nonzero(detections.class_id == PERSON))
    assert f"{people} people (" in text
    inside = text.split(f"{people} people (", 1)[1].split(")", 1)[0].split(", ")
    assert len(inside) == len(set(inside)) <= 9
