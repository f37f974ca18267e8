"""Step columns through the track aggregator and the chunk builder: what a client sees of OCR, features, faces."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from kernels.detections import NO_TRACK, Detections
from models.coco import FACE_CLASS_ID, TEXT_CLASS_ID
from pipelines.chunks import EMBEDDINGS_KEY, Vectors, frame_chunk, image_body, result_body, targets_json
from pipelines.decode import DecodeStats
from pipelines.executor import DESCRIPTOR, FACES, FEATURE, TEXT, TEXT_CONFIDENCE, TEXT_LINES, with_columns
from pipelines.tracks import TrackAggregator, feature_digest

PERSON, CAR, DOG = 0, 2, 16
WIDTH, HEIGHT = 640, 480


def frame(rows: list[tuple[int, int, float, tuple[float, float, float, float]]], **columns: list[Any]) -> Detections:
    """Tracked targets ``(track_id, class_id, confidence, box)`` with step columns (missing ones: None)."""
    base = Detections(
        xyxy=np.array([row[3] for row in rows], np.float32).reshape(-1, 4),
        confidence=np.array([row[2] for row in rows], np.float32),
        class_id=np.array([row[1] for row in rows], np.int64),
        track_id=np.array([row[0] for row in rows], np.int64),
    )
    return with_columns(base, **columns)


def faces(boxes: list[tuple[float, float, float, float]], scores: list[float], dim: int = 4) -> Detections:
    rng = np.random.default_rng(len(boxes))
    vectors = rng.normal(size=(len(boxes), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.full(len(boxes), FACE_CLASS_ID),
        data={DESCRIPTOR: vectors},
    )


def lines(boxes: list[tuple[float, float, float, float]], texts: list[str], scores: list[float]) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.full(len(boxes), TEXT_CLASS_ID),
        data={TEXT: texts},
    )


def stats() -> DecodeStats:
    return DecodeStats(decoded_frames=3, dropped_frames=0, total_frames=10, fps=25.0, width=WIDTH, height=HEIGHT)


# ---------------------------------------------------------------------------------------------- feature_digest


@pytest.mark.parametrize(
    ("vector", "digest"),
    [
        ([3.0, 4.0], "dim=2;norm=5.0000"),
        ([0.0, 0.0, 0.0], "dim=3;norm=0.0000"),
        ([1.0, 1.0, 1.0], "dim=3;norm=1.7321"),  # sqrt(3) = 1.73205...
        ([[1.0, 2.0], [2.0, 4.0]], "dim=4;norm=5.0000"),  # flattened
        ([-2.0], "dim=1;norm=2.0000"),
    ],
)
def test_feature_digest_format(vector: list[Any], digest: str) -> None:
    assert feature_digest(np.asarray(vector, np.float32)) == digest


def test_feature_digest_rounds_to_four_decimals() -> None:
    assert feature_digest(np.array([0.123456], np.float32)) == "dim=1;norm=0.1235"
    assert feature_digest(np.ones(960, np.float32)) == f"dim=960;norm={math.sqrt(960):.4f}"


# ---------------------------------------------------------------------------------------------- aggregator


def test_mean_feature_per_track_is_the_mean_of_unnormalised_vectors() -> None:
    aggregator = TrackAggregator()
    box = (10.0, 10.0, 50.0, 90.0)
    aggregator.add(0, 0.0, frame([(1, PERSON, 0.9, box), (2, DOG, 0.8, box)], feature=[[3, 4, 0], [1, 0, 0]]))
    aggregator.add(1, 40.0, frame([(1, PERSON, 0.7, box), (2, DOG, 0.6, box)], feature=[[0, 0, 12], None]))
    aggregator.add(2, 80.0, frame([(1, PERSON, 0.95, box)], feature=[None]))  # feature step skipped it
    one, two = aggregator.tracks
    # track 1: mean of (3, 4, 0) and (0, 0, 12) = (1.5, 2, 6), norm sqrt(2.25 + 4 + 36) = 6.5;
    # the mean of the unit vectors would be (0.3, 0.4, 0.5) with norm 0.7071
    assert one.feature_frames == 2 and one.frames_seen == 3
    assert one.mean_feature is not None and one.mean_feature.dtype == np.float32
    np.testing.assert_allclose(one.mean_feature, [1.5, 2.0, 6.0])
    assert feature_digest(one.mean_feature) == "dim=3;norm=6.5000"
    assert two.feature_frames == 1
    np.testing.assert_allclose(two.mean_feature, [1.0, 0.0, 0.0])  # type: ignore[arg-type]
    assert one.best_confidence == pytest.approx(0.95) and one.last_frame == 2 and one.last_timestamp_ms == 80.0


def test_tracks_without_a_feature_step_have_no_mean() -> None:
    aggregator = TrackAggregator()
    plain = Detections(
        np.array([[0, 0, 5, 5]], np.float32), np.array([0.5], np.float32), np.array([CAR]), np.array([4])
    )
    aggregator.add(0, 0.0, plain)  # no step columns at all
    aggregator.add(1, 40.0, frame([(4, CAR, 0.6, (0, 0, 5, 5))]))  # columns present, all None
    (track,) = aggregator.tracks
    assert track.mean_feature is None and track.feature_frames == 0
    assert track.text is None and track.face_frames == 0 and track.frames_seen == 2


def test_untracked_rows_are_not_aggregated() -> None:
    aggregator = TrackAggregator()
    box = (0.0, 0.0, 5.0, 5.0)
    aggregator.add(
        0,
        0.0,
        frame([(NO_TRACK, TEXT_CLASS_ID, 0.9, box), (3, CAR, 0.5, box)], text=["STOP", None], feature=[[1.0], [2.0]]),
    )
    (track,) = aggregator.tracks
    assert track.track_id == 3 and track.text is None
    np.testing.assert_allclose(track.mean_feature, [2.0])  # type: ignore[arg-type]


def test_best_ocr_reading_is_the_most_confident() -> None:
    aggregator = TrackAggregator()
    box = (100.0, 100.0, 300.0, 160.0)
    readings: list[tuple[str | None, float | None]] = [
        ("AB 12", 0.61),
        ("AB 123", 0.93),  # the best
        (None, None),  # the step read nothing
        ("", 0.99),  # empty text never wins
        ("A8 123", 0.90),
        ("AB 123", 0.93),  # a tie keeps the first
    ]
    for index, (text, confidence) in enumerate(readings):
        aggregator.add(index, index * 40.0, frame([(5, CAR, 0.8, box)], text=[text], text_confidence=[confidence]))
    (track,) = aggregator.tracks
    assert track.text == "AB 123" and track.text_confidence == pytest.approx(0.93)


def test_a_reading_without_confidence_counts_as_zero() -> None:
    aggregator = TrackAggregator()
    box = (0.0, 0.0, 10.0, 10.0)
    aggregator.add(0, 0.0, frame([(1, CAR, 0.8, box)], text=["first"], text_confidence=[None]))
    aggregator.add(1, 40.0, frame([(1, CAR, 0.8, box)], text=["second"], text_confidence=[0.0]))
    aggregator.add(2, 80.0, frame([(1, CAR, 0.8, box)], text=["third"], text_confidence=[0.01]))
    (track,) = aggregator.tracks
    assert track.text == "third" and track.text_confidence == pytest.approx(0.01)


def test_face_summary_counts_frames_with_a_face() -> None:
    aggregator = TrackAggregator()
    box = (0.0, 0.0, 200.0, 400.0)
    face_columns: list[Detections | None] = [
        faces([(50, 20, 90, 60)], [0.71]),
        faces([], []),  # face step ran, found nothing
        None,  # face step skipped this target (when)
        faces([(55, 22, 95, 62), (120, 30, 150, 60)], [0.62, 0.88]),
    ]
    for index, column in enumerate(face_columns):
        aggregator.add(index, index * 40.0, frame([(8, PERSON, 0.9, box)], faces=[column]))
    (track,) = aggregator.tracks
    assert track.face_frames == 2
    assert track.best_face_confidence == pytest.approx(0.88)


def test_tracks_sorted_by_id() -> None:
    aggregator = TrackAggregator()
    box = (0.0, 0.0, 1.0, 1.0)
    aggregator.add(0, 0.0, frame([(9, CAR, 0.5, box), (2, DOG, 0.5, box)]))
    aggregator.add(1, 40.0, frame([(5, PERSON, 0.5, box)]))
    assert [track.track_id for track in aggregator.tracks] == [2, 5, 9]
    assert [track.first_frame for track in aggregator.tracks] == [0, 1, 0]


# ---------------------------------------------------------------------------------------------- result_body


def test_result_body_per_track_step_fields_and_embeddings() -> None:
    aggregator = TrackAggregator()
    car_box, person_box = (100.0, 100.0, 300.0, 160.0), (400.0, 50.0, 500.0, 400.0)
    aggregator.add(
        0,
        0.0,
        frame(
            [(1, CAR, 0.81234, car_box), (2, PERSON, 0.9, person_box)],
            text=["AB 123", None],
            text_confidence=[0.876543, None],
            feature=[[3.0, 4.0, 0.0], None],
            faces=[None, faces([(420, 60, 450, 95)], [0.777777])],
        ),
    )
    aggregator.add(
        1,
        40.0,
        frame(
            [(1, CAR, 0.7, car_box), (2, PERSON, 0.9, person_box)],
            feature=[[0.0, 0.0, 12.0], None],
            faces=[None, faces([], [])],
        ),
    )
    body = result_body(
        "task-1",
        model="centernet",
        usage={"processed_frames": 2, "processing_time_ms": 12.7},
        tracks=aggregator.tracks,
        labels={CAR: "vehicle"},
    )
    json.dumps(body, allow_nan=False)
    car, person = body["tracks"]
    assert car["class"] == "vehicle" and person["class"] == "person"
    assert car["feature_digest"] == "dim=3;norm=6.5000"
    assert car["text"] == "AB 123" and car["text_confidence"] == 0.8765
    assert "faces" not in car
    assert person["faces"] == {"frames_with_face": 1, "best_confidence": 0.7778}
    assert "feature_digest" not in person and "text" not in person
    assert body[EMBEDDINGS_KEY] == {"1": [1.5, 2.0, 6.0]}
    assert body["usage"] == {"processed_frames": 2, "processing_time_ms": 12}


def test_result_body_without_features_has_no_embeddings_key() -> None:
    aggregator = TrackAggregator()
    aggregator.add(0, 0.0, frame([(1, CAR, 0.8, (0, 0, 1, 1))]))
    body = result_body("t", model=None, usage={}, tracks=aggregator.tracks, labels=None)
    assert EMBEDDINGS_KEY not in body
    assert set(body["tracks"][0]) == {
        "track_id",
        "class",
        "first_frame",
        "last_frame",
        "first_timestamp_ms",
        "last_timestamp_ms",
        "frames_seen",
        "best_confidence",
    }


def test_result_body_embeddings_are_rounded_floats() -> None:
    aggregator = TrackAggregator()
    vector = np.random.default_rng(0).normal(size=960).astype(np.float32) * 10
    aggregator.add(0, 0.0, frame([(3, DOG, 0.8, (0, 0, 1, 1))], feature=[vector]))
    body = result_body("t", model=None, usage={}, tracks=aggregator.tracks, labels=None)
    stored = body[EMBEDDINGS_KEY]["3"]
    assert len(stored) == 960 and all(isinstance(value, float) for value in stored)
    np.testing.assert_allclose(stored, vector, atol=1e-6, rtol=1e-6)
    assert body["tracks"][0]["feature_digest"] == feature_digest(vector)


# ---------------------------------------------------------------------------------------------- targets_json


@pytest.fixture
def stepped() -> Detections:
    """A car with a plate read inside it and a feature, a person with a face, a face target, a text target."""
    plate = lines([(150, 130, 210, 150), (600, 470, 700, 500)], ["AB 123", "edge"], [0.912345, 0.6])
    return frame(
        [
            (1, CAR, 0.8123456, (100, 100, 300, 160)),
            (2, PERSON, 0.9, (400, 50, 500, 400)),
            (NO_TRACK, FACE_CLASS_ID, 0.88, (10, 10, 40, 45)),
            (NO_TRACK, TEXT_CLASS_ID, 0.97, (-5, 300, 120, 330)),
        ],
        text=["AB 123 edge", None, None, "EXIT"],
        text_confidence=[0.7561725, None, None, 0.97],
        text_lines=[plate, None, None, None],
        feature=[np.array([3.0, 4.0, 0.0], np.float32), None, None, None],
        faces=[None, faces([(420, 60, 450, 95)], [0.8]), None, None],
        descriptor=[None, None, np.array([0.6, 0.8], np.float32), None],
    )


def test_targets_json_renders_every_step_field(stepped: Detections) -> None:
    car, person, face, text = targets_json(stepped, {CAR: "vehicle"}, WIDTH, HEIGHT)
    assert car["class"] == "vehicle" and car["track_id"] == 1 and car["confidence"] == 0.8123
    assert car["roi"] == {"left": 100, "top": 100, "width": 200, "height": 60}
    assert car["text"] == "AB 123 edge" and car["text_confidence"] == 0.7562
    assert car["ocr"] == [
        {"text": "AB 123", "confidence": 0.9123, "roi": {"left": 150, "top": 130, "width": 60, "height": 20}},
        # a line running off the frame is clipped to it
        {"text": "edge", "confidence": 0.6, "roi": {"left": 600, "top": 470, "width": 40, "height": 10}},
    ]
    assert car["feature_digest"] == "dim=3;norm=5.0000"
    assert "feature" not in car  # the full vector is opt-in
    assert "faces" not in car and "descriptor_digest" not in car

    assert set(person) == {"track_id", "class", "confidence", "roi", "faces"}
    ((found,),) = [person["faces"]]
    assert found["confidence"] == 0.8
    assert found["roi"] == {"left": 420, "top": 60, "width": 30, "height": 35}
    assert found["descriptor_digest"] == "dim=4;norm=1.0000"
    assert "descriptor" not in found

    assert face["class"] == "face" and face["track_id"] == -1
    assert face["descriptor_digest"] == "dim=2;norm=1.0000" and "descriptor" not in face
    assert text["class"] == "text" and text["text"] == "EXIT" and text["text_confidence"] == 0.97
    assert text["roi"] == {"left": 0, "top": 300, "width": 120, "height": 30}
    assert "ocr" not in text


def test_targets_json_full_vectors_when_asked(stepped: Detections) -> None:
    car, person, face, _ = targets_json(stepped, None, WIDTH, HEIGHT, Vectors(feature=True))
    assert car["feature"] == [3.0, 4.0, 0.0]
    assert "descriptor" not in face and "descriptor" not in person["faces"][0]
    car, person, face, _ = targets_json(stepped, None, WIDTH, HEIGHT, Vectors(face=True))
    assert "feature" not in car
    assert face["descriptor"] == pytest.approx([0.6, 0.8])
    assert len(person["faces"][0]["descriptor"]) == 4
    assert all(isinstance(value, float) for value in face["descriptor"])
    car, person, face, _ = targets_json(stepped, None, WIDTH, HEIGHT, Vectors(feature=True, face=True))
    assert "feature" in car and "descriptor" in face and "descriptor" in person["faces"][0]


def test_targets_json_empty_step_results(stepped: Detections) -> None:
    """A step that ran and found nothing: an empty list, not a missing field."""
    data = dict(stepped.data)
    data[TEXT_LINES] = [lines([], [], []), None, None, None]
    data[TEXT] = [None, None, None, "EXIT"]
    data[TEXT_CONFIDENCE] = [None, None, None, None]
    data[FACES] = [None, faces([], []), None, None]
    data[FEATURE] = [None] * 4
    data[DESCRIPTOR] = [None] * 4
    empty = Detections(stepped.xyxy, stepped.confidence, stepped.class_id, stepped.track_id, data)
    car, person, _, text = targets_json(empty, None, WIDTH, HEIGHT)
    assert car["ocr"] == [] and "text" not in car and "feature_digest" not in car
    assert person["faces"] == []
    assert text["text"] == "EXIT" and "text_confidence" not in text


def test_targets_json_without_step_columns() -> None:
    plain = Detections(np.array([[1.4, 2.6, 10.5, 20.5]], np.float32), np.array([0.5], np.float32), np.array([DOG]))
    (dog,) = targets_json(plain, None, WIDTH, HEIGHT)
    assert dog == {
        "track_id": -1,
        "class": "dog",
        "confidence": 0.5,
        "roi": {"left": 1, "top": 3, "width": 9, "height": 17},  # rounded (10.5 -> 10, 20.5 -> 20: half to even)
    }


def test_frame_chunk_carries_step_fields_and_description(stepped: Detections) -> None:
    description = {"text": "A car and a person.", "provider": "local"}
    text = frame_chunk(
        "task-9",
        frame_index=3,
        timestamp_ms=120.0,
        stats=stats(),
        elapsed_ms=55,
        detections=stepped,
        labels=None,
        model="centernet",
        first=False,
        vectors=Vectors(feature=True, face=True),
        description=description,
    )
    assert "\n" not in text
    chunk = json.loads(text)
    assert "model" not in chunk
    (result,) = chunk["delta"]["results"]
    assert result["description"] == description
    assert [target["class"] for target in result["targets"]] == ["car", "person", "face", "text"]
    assert result["targets"] == json.loads(json.dumps(targets_json(stepped, None, WIDTH, HEIGHT, Vectors(True, True))))
    assert result["targets"][0]["feature"] == [3.0, 4.0, 0.0]


def test_frame_chunk_without_description_has_no_key(stepped: Detections) -> None:
    text = frame_chunk(
        "t",
        frame_index=0,
        timestamp_ms=0.0,
        stats=stats(),
        elapsed_ms=0,
        detections=stepped,
        labels=None,
        model=None,
        first=True,
    )
    chunk = json.loads(text)
    assert chunk["model"] is None
    assert "description" not in chunk["delta"]["results"][0]
    assert "feature" not in chunk["delta"]["results"][0]["targets"][0]


def test_image_body_is_json_serialisable_with_vectors(stepped: Detections) -> None:
    body = image_body(
        "mm.vision.detect",
        "req-1",
        model="centernet",
        width=WIDTH,
        height=HEIGHT,
        detections=stepped,
        labels=None,
        vectors=Vectors(feature=True, face=True),
        description={"text": "x", "provider": "local"},
    )
    round_trip = json.loads(json.dumps(body, allow_nan=False))
    assert round_trip["image"] == {"width": WIDTH, "height": HEIGHT}
    assert round_trip["targets"][2]["descriptor"] == pytest.approx([0.6, 0.8])
    assert round_trip["description"]["provider"] == "local"
