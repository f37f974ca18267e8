"""Face analysis on real photos and real film frames (no synthetic faces)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from skimage import data

from kernels.detections import Detections
from models.coco import FACE_CLASS_ID
from models.registry import get_model
from models.runtime.face import FaceAnalyzer
from tests.conftest import read_rgb

DIM = 1024


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(get_model("blazeface"), get_model("faceres"), intra_op_threads=2)


@pytest.fixture(scope="module")
def megamind(media_dir: Path) -> dict[int, npt.NDArray[np.uint8]]:
    """Frames of the film clip: Roxanne at 25, 75 (2 s apart); Bernard at 150, 200, 250."""
    wanted = {25, 75, 150, 200, 250}
    capture = cv2.VideoCapture(str(media_dir / "Megamind.avi"))
    frames: dict[int, npt.NDArray[np.uint8]] = {}
    index = 0
    while len(frames) < len(wanted):
        ok, frame = capture.read()
        assert ok, "Megamind.avi ended early"
        if index in wanted:
            frames[index] = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), np.uint8)
        index += 1
    capture.release()
    return frames


def _main_face(result: Detections) -> npt.NDArray[np.float32]:
    """Descriptor of the largest face."""
    assert len(result), "no face found"
    return np.asarray(result.data["descriptor"][int(np.argmax(result.area))])


def _centre_in(result: Detections, x: float, y: float) -> bool:
    return any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in result.xyxy)


def test_portrait_face_found_where_it_is(analyzer: FaceAnalyzer) -> None:
    result = analyzer.analyse(data.astronaut())
    assert len(result) == 1
    assert result.class_id.tolist() == [FACE_CLASS_ID]
    assert result.confidence[0] > 0.8
    x1, y1, x2, y2 = result.xyxy[0]
    # Eileen Collins' face: about x 175..275, y 75..180 of the 512x512 photo
    assert 150 < x1 < 200 and 250 < x2 < 300 and 50 < y1 < 100 and 160 < y2 < 210
    descriptor = result.data["descriptor"]
    assert descriptor.shape == (1, DIM) and descriptor.dtype == np.float32
    assert np.linalg.norm(descriptor[0]) == pytest.approx(1.0, abs=1e-5)
    keypoints = result.data["keypoints"][0]
    assert keypoints.shape == (6, 2)
    right_eye, left_eye = keypoints[0], keypoints[1]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert x1 < right_eye[0] < x2 and y1 < right_eye[1] < y2
    assert result.data["gender_male"][0] < 0.5  # a woman


def test_small_face_in_a_sports_photo(analyzer: FaceAnalyzer, media_dir: Path) -> None:
    result = analyzer.analyse(read_rgb(media_dir / "messi5.jpg"))
    assert len(result) == 1
    assert _centre_in(result, 240, 115)  # Messi's face, ~38 px wide
    assert result.data["gender_male"][0] > 0.5


def test_face_on_a_person_crop_is_in_crop_pixels(analyzer: FaceAnalyzer) -> None:
    crop = data.astronaut()[40:400, 100:360]
    result = analyzer.analyse(crop)
    assert len(result) == 1
    assert _centre_in(result, 225 - 100, 127 - 40)


@pytest.mark.parametrize("name", ["horses.jpg", "giraffe.jpg"])
def test_no_face_on_photos_without_people(analyzer: FaceAnalyzer, media_dir: Path, name: str) -> None:
    result = analyzer.analyse(read_rgb(media_dir / name))
    assert len(result) == 0
    assert result.data["descriptor"].shape == (0, DIM)
    assert result.data["keypoints"].shape == (0, 6, 2)


def test_same_person_is_closer_than_different_people(
    analyzer: FaceAnalyzer, megamind: dict[int, npt.NDArray[np.uint8]], media_dir: Path
) -> None:
    """Two frames seconds apart of one film character beat every other pairing."""
    d = {index: _main_face(analyzer.analyse(frame)) for index, frame in megamind.items()}
    eileen = _main_face(analyzer.analyse(data.astronaut()))
    messi = _main_face(analyzer.analyse(read_rgb(media_dir / "messi5.jpg")))
    roxanne = (d[25], d[75])
    bernard = (d[150], d[200], d[250])
    same = [float(roxanne[0] @ roxanne[1])] + [float(a @ b) for i, a in enumerate(bernard) for b in bernard[i + 1 :]]
    people = [*roxanne, *bernard, eileen, messi]
    labels = ["rox", "rox", "ber", "ber", "ber", "eileen", "messi"]
    different = [
        float(people[i] @ people[j])
        for i in range(len(people))
        for j in range(i + 1, len(people))
        if labels[i] != labels[j]
    ]
    assert min(same) > max(different), (same, different)
    assert np.mean(same) - np.mean(different) > 0.25
    # a mirrored copy of one photo is the same person too (a weak extra check)
    mirrored = _main_face(analyzer.analyse(np.ascontiguousarray(data.astronaut()[:, ::-1])))
    assert float(eileen @ mirrored) > max(float(eileen @ messi), *(float(eileen @ r) for r in roxanne))


def test_batch_equals_one_by_one(analyzer: FaceAnalyzer, media_dir: Path) -> None:
    images = [data.astronaut(), read_rgb(media_dir / "messi5.jpg"), read_rgb(media_dir / "horses.jpg")]
    batched = analyzer.analyse_each(images)
    for image, together in zip(images, batched, strict=True):
        alone = analyzer.analyse(image)
        assert isinstance(together, Detections)
        assert len(together) == len(alone)
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_allclose(together.data["descriptor"], alone.data["descriptor"], atol=1e-4)


def test_bad_items_fail_alone_and_tiny_images_have_no_faces(analyzer: FaceAnalyzer) -> None:
    astronaut = data.astronaut()
    items = [
        astronaut,
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((64, 64), np.uint8),
        astronaut[:1, :1],
        astronaut[100:110, 200:212],
        astronaut.astype(np.float32),
        astronaut,
    ]
    results = analyzer.analyse_each(items)
    assert [type(r).__name__ for r in results] == [
        "Detections",
        "ValueError",
        "ValueError",
        "Detections",
        "Detections",
        "ValueError",
        "Detections",
    ]
    first, last = results[0], results[-1]
    assert isinstance(first, Detections) and isinstance(last, Detections)
    assert len(first) == len(last) == 1
    for tiny in results[3:5]:
        assert isinstance(tiny, Detections) and len(tiny) == 0 and tiny.data["descriptor"].shape == (0, DIM)
    with pytest.raises(ValueError):
        analyzer.analyse(np.zeros((0, 5, 3), np.uint8))


def test_empty_results_merge_with_faces(analyzer: FaceAnalyzer, media_dir: Path) -> None:
    merged = Detections.merge(
        [analyzer.analyse(read_rgb(media_dir / "horses.jpg")), analyzer.analyse(data.astronaut())]
    )
    assert len(merged) == 1 and merged.data["descriptor"].shape == (1, DIM)
    assert analyzer.descriptor_dim == DIM
