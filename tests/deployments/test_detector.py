"""The committed CenterNet ONNX finds people and vehicles in real photos, in source pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from kernels.boxes import box_iou
from models.coco import COCO_CLASSES, class_ids_for
from models.registry import get_model
from models.runtime.detector import Detector
from tests.conftest import read_rgb

PERSON, BICYCLE, CAR, TRUCK, DOG, HORSE = (
    COCO_CLASSES.index(n) for n in ("person", "bicycle", "car", "truck", "dog", "horse")
)


def _best(detections, class_ids):  # type: ignore[no-untyped-def]
    mask = np.isin(detections.class_id, list(class_ids))
    assert mask.any(), f"no detection of classes {class_ids}: got {detections.class_id.tolist()}"
    rows = np.flatnonzero(mask)
    return detections.xyxy[rows[np.argmax(detections.confidence[rows])]]


def test_dog_photo_finds_bicycle_vehicle_and_dog_in_source_pixels(detector: Detector, media_dir: Path) -> None:
    image = read_rgb(media_dir / "dog.jpg")  # 768x576: bicycle centre, dog bottom-left, truck top-right
    assert image.shape[:2] == (576, 768)
    found = detector.detect([image], min_confidence=0.3)[0]
    # Hand-labelled boxes of the darknet demo photo (source pixels), checked by IoU.
    assert box_iou(_best(found, [BICYCLE]), np.array([[124, 130, 568, 440]]))[0, 0] > 0.5
    assert box_iou(_best(found, [DOG]), np.array([[132, 222, 312, 540]]))[0, 0] > 0.5
    assert box_iou(_best(found, class_ids_for("vehicle")), np.array([[466, 76, 684, 170]]))[0, 0] > 0.5
    assert found.xyxy[:, [0, 2]].max() <= 768 and found.xyxy[:, [1, 3]].max() <= 576


def test_person_photo_finds_the_person_and_the_horse(detector: Detector, media_dir: Path) -> None:
    image = read_rgb(media_dir / "person.jpg")  # 640x424: person standing centre-left, horse right, dog left
    found = detector.detect([image], min_confidence=0.3)[0]
    person = _best(found, [PERSON])
    assert box_iou(person, np.array([[190, 96, 274, 380]]))[0, 0] > 0.5
    assert (found.class_id == PERSON).sum() == 1


def test_astronaut_is_a_person() -> None:
    image = skimage.data.astronaut()  # 512x512 RGB portrait
    found = Detector(get_model("centernet"), intra_op_threads=1).detect([image], min_confidence=0.3)[0]
    box = _best(found, [PERSON])
    assert box[2] - box[0] > 200 and box[3] - box[1] > 200


def test_batch_gives_the_same_detections_as_single_images(detector: Detector, media_dir: Path) -> None:
    images = [read_rgb(media_dir / name) for name in ("dog.jpg", "person.jpg", "horses.jpg")]
    batched = detector.detect(images, min_confidence=0.3)
    for image, together in zip(images, batched, strict=True):
        alone = detector.detect([image], min_confidence=0.3)[0]
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-2)
        np.testing.assert_array_equal(together.class_id, alone.class_id)


def test_class_filter_and_confidence_floor(detector: Detector, media_dir: Path) -> None:
    image = read_rgb(media_dir / "dog.jpg")
    only_dogs = detector.detect([image], min_confidence=0.3, class_filter=np.array([DOG]))[0]
    assert len(only_dogs) >= 1 and set(only_dogs.class_id.tolist()) == {DOG}
    strict = detector.detect([image], min_confidence=0.99)[0]
    assert len(strict) == 0


def test_a_blank_frame_has_no_confident_targets(detector: Detector) -> None:
    found = detector.detect([np.full((480, 640, 3), 127, np.uint8)], min_confidence=0.3)[0]
    assert len(found) == 0


def test_non_detector_model_is_refused() -> None:
    entry = get_model("centernet")
    from dataclasses import replace

    with pytest.raises(ValueError, match="not a detector"):
        Detector(replace(entry, task="ocr"))


def test_detect_each_fails_only_the_bad_item(detector: Detector, media_dir: Path) -> None:
    from models.runtime.detector import DetectRequest

    photo = read_rgb(media_dir / "person.jpg")
    results = detector.detect_each(
        [
            DetectRequest(photo, 0.3, (PERSON,)),
            DetectRequest(np.zeros((0, 0, 3), np.uint8), 0.3, None),  # an empty frame
            DetectRequest(photo, 0.3, (HORSE,)),
        ]
    )
    assert isinstance(results[1], ValueError)
    people, horses = results[0], results[2]
    assert not isinstance(people, Exception) and not isinstance(horses, Exception)
    assert set(people.class_id.tolist()) == {PERSON}, "each item keeps its own class filter"
    assert set(horses.class_id.tolist()) <= {HORSE}
    alone = detector.detect([photo], min_confidence=0.3, class_filter=np.array([PERSON]))[0]
    np.testing.assert_allclose(people.xyxy, alone.xyxy, atol=1e-2)
