"""run_steps over the real in-process models: step columns land on exactly the targets ``when`` chose."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from contract.errors import VisionGridError
from kernels.detections import NO_TRACK, Detections
from models.coco import COCO_CLASSES, FACE_CLASS_ID, TEXT_CLASS_ID
from models.registry import get_model
from models.runtime.detector import Detector
from pipelines.executor import (
    DESCRIPTOR,
    FACES,
    FEATURE,
    STEP_COLUMNS,
    TEXT,
    TEXT_CONFIDENCE,
    TEXT_LINES,
    StepFailedError,
    crop,
    run_steps,
)
from pipelines.local_models import LocalModels
from pipelines.step_specs import parse_steps
from tests.conftest import read_rgb
from visiongrid.settings import Settings

FONTS = Path("/usr/share/fonts/truetype/dejavu")
ID = {name: index for index, name in enumerate(COCO_CLASSES)}
SETTINGS = Settings(ort_intra_op_threads=2)


@pytest.fixture(scope="module")
def models(detector: Detector) -> LocalModels:
    """One set of real models for the module (each loads on first use)."""
    return LocalModels(SETTINGS, detector=detector)


def run(image: npt.NDArray[np.uint8], steps: list[dict[str, Any]], models: Any, floor: float = 0.3) -> Detections:
    return asyncio.run(run_steps(image, parse_steps(steps), models, detect_floor=floor))


def rows_of(detections: Detections, class_id: int) -> list[int]:
    return np.flatnonzero(detections.class_id == class_id).tolist()


def render(lines: list[tuple[str, tuple[int, int], int]], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for text, xy, pixels in lines:
        draw.text(xy, text, fill="black", font=ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), pixels))
    return np.asarray(image)


def inside(inner: npt.NDArray[np.float32], outer: npt.NDArray[np.float32], slack: float = 1.0) -> bool:
    return bool(
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


@pytest.fixture(scope="module")
def dog(media_dir: Path) -> npt.NDArray[np.uint8]:
    return read_rgb(media_dir / "dog.jpg")


@pytest.fixture(scope="module")
def dog_with_plate(dog: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """dog.jpg with a number plate ("AB 123") painted on the car in the background."""
    image = Image.fromarray(dog)
    draw = ImageDraw.Draw(image)
    draw.rectangle((520, 105, 640, 140), fill="white")
    draw.text((528, 108), "AB 123", fill="black", font=ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), 24))
    return np.asarray(image)


# ---------------------------------------------------------------------------------------------- feature


def test_feature_only_on_the_dog(dog: npt.NDArray[np.uint8], models: LocalModels) -> None:
    found = run(dog, [{"model": "detect"}, {"model": "feature", "when": {"class_is": ["dog"]}}], models)
    assert set(found.data) == set(STEP_COLUMNS)
    assert {ID["dog"], ID["bicycle"]} <= set(found.class_id.tolist())
    (dog_row,) = rows_of(found, ID["dog"])
    dim = get_model(SETTINGS.appearance_model).dim
    for row in range(len(found)):
        vector = found.data[FEATURE][row]
        if row == dog_row:
            assert isinstance(vector, np.ndarray) and vector.dtype == np.float32 and vector.shape == (dim,)
            assert np.isfinite(vector).all() and np.linalg.norm(vector) > 0
        else:
            assert vector is None
    for name in (TEXT, TEXT_CONFIDENCE, TEXT_LINES, FACES, DESCRIPTOR):
        assert found.data[name] == [None] * len(found)


def test_feature_on_every_target_is_fixed_dim_and_distinct(dog: npt.NDArray[np.uint8], models: LocalModels) -> None:
    found = run(dog, [{"model": "detect"}, {"model": "feature"}], models)
    vectors = np.stack(found.data[FEATURE])
    assert vectors.shape == (len(found), get_model(SETTINGS.appearance_model).dim)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert (cosine[~np.eye(len(found), dtype=bool)] < 0.99).all()  # different objects, different features


# ---------------------------------------------------------------------------------------------- face


@pytest.mark.parametrize("source", ["astronaut", "messi5.jpg"])
def test_faces_inside_person_targets_in_frame_pixels(source: str, media_dir: Path, models: LocalModels) -> None:
    image = skimage.data.astronaut() if source == "astronaut" else read_rgb(media_dir / source)
    found = run(
        image,
        [
            {"model": "detect", "parameters": {"classes": ["person"]}},
            {"model": "face", "when": {"class_is": ["person"]}},
        ],
        models,
    )
    assert len(found) and (found.class_id == ID["person"]).all()
    with_face = 0
    for row in range(len(found)):
        faces = found.data[FACES][row]
        assert isinstance(faces, Detections)  # the step ran on every person
        for face in range(len(faces)):
            assert inside(faces.xyxy[face], found.xyxy[row]), (faces.xyxy[face], found.xyxy[row])
            descriptor = np.asarray(faces.data[DESCRIPTOR][face])
            assert np.linalg.norm(descriptor) == pytest.approx(1.0, abs=1e-3)
        with_face += bool(len(faces))
    assert with_face >= 1
    # the face the crop-level step found is where the whole-image face step finds it (frame pixels)
    whole = run(image, [{"model": "face"}], models)
    best = whole.xyxy[int(np.argmax(whole.confidence))]
    crop_faces = Detections.merge([faces for faces in found.data[FACES] if faces is not None and len(faces)])
    nearest = np.abs(crop_faces.xyxy - best).max(axis=1).min()
    assert nearest < 0.1 * (best[2] - best[0]), (crop_faces.xyxy, best)


def test_astronaut_face_where_expected(models: LocalModels) -> None:
    found = run(
        skimage.data.astronaut(),
        [
            {"model": "detect", "parameters": {"classes": ["person"]}},
            {"model": "face", "when": {"class_is": ["person"]}},
        ],
        models,
    )
    faces = Detections.merge([faces for faces in found.data[FACES] if faces is not None and len(faces)])
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.xyxy[0]
    # her face: roughly x 170..280, y 70..180 of the 512x512 image
    assert 150 < x1 < 200 and 55 < y1 < 100 and 250 < x2 < 300 and 155 < y2 < 200


def test_face_alone_makes_face_targets(models: LocalModels) -> None:
    found = run(skimage.data.astronaut(), [{"model": "face"}], models)
    assert len(found) == 1
    assert found.class_id.tolist() == [FACE_CLASS_ID] and found.track_id.tolist() == [NO_TRACK]
    assert set(found.data) == set(STEP_COLUMNS)
    descriptor = found.data[DESCRIPTOR][0]
    assert isinstance(descriptor, np.ndarray) and descriptor.dtype == np.float32
    assert descriptor.shape == (get_model(SETTINGS.face_descriptor_model).dim,)
    assert np.linalg.norm(descriptor) == pytest.approx(1.0, abs=1e-3)
    assert found.data[FACES] == [None] and found.data[TEXT] == [None]


def test_face_min_confidence_parameter_drops_faces(models: LocalModels) -> None:
    steps: list[dict[str, Any]] = [{"model": "face", "parameters": {"min_confidence": 1.0}}]
    assert len(run(skimage.data.astronaut(), steps, models)) == 0


def test_face_alone_on_a_photo_without_people(media_dir: Path, models: LocalModels) -> None:
    found = run(read_rgb(media_dir / "giraffe.jpg"), [{"model": "face"}], models)
    assert len(found) == 0 and set(found.data) == set(STEP_COLUMNS)


# ---------------------------------------------------------------------------------------------- ocr


TEXT_IMAGE = [("VISIONGRID 2026", (20, 20), 32), ("read every line", (20, 90), 28)]


def test_ocr_alone_makes_one_text_target_per_line(models: LocalModels) -> None:
    found = run(render(TEXT_IMAGE, (460, 150)), [{"model": "ocr"}], models)
    assert found.data[TEXT] == ["VISIONGRID 2026", "read every line"]
    assert found.class_id.tolist() == [TEXT_CLASS_ID, TEXT_CLASS_ID]
    assert found.data[TEXT_CONFIDENCE] == pytest.approx(found.confidence.tolist())
    assert all(0.5 <= score <= 1.0 for score in found.data[TEXT_CONFIDENCE])
    assert found.data[TEXT_LINES] == [None, None] and found.data[FEATURE] == [None, None]
    assert found.xyxy[0, 3] <= found.xyxy[1, 1] + 5  # first line above the second


def test_ocr_then_feature_embeds_the_text_targets(models: LocalModels) -> None:
    found = run(render(TEXT_IMAGE, (460, 150)), [{"model": "ocr"}, {"model": "feature"}], models)
    assert len(found) == 2 and all(vector is not None for vector in found.data[FEATURE])


def test_ocr_then_face_merges_both_kinds_of_target(models: LocalModels) -> None:
    portrait = skimage.data.astronaut().copy()
    portrait[440:500, 20:500] = render([("HELLO ASTRONAUT", (10, 8), 36)], (480, 60))
    found = run(portrait, [{"model": "ocr"}, {"model": "face"}], models)
    assert sorted(found.class_id.tolist()) == [FACE_CLASS_ID, TEXT_CLASS_ID]
    text_row, face_row = rows_of(found, TEXT_CLASS_ID)[0], rows_of(found, FACE_CLASS_ID)[0]
    assert found.data[TEXT][text_row] == "HELLO ASTRONAUT" and found.data[DESCRIPTOR][text_row] is None
    assert found.data[TEXT][face_row] is None and found.data[DESCRIPTOR][face_row] is not None


def test_ocr_only_on_matching_targets(dog_with_plate: npt.NDArray[np.uint8], models: LocalModels) -> None:
    found = run(dog_with_plate, [{"model": "detect"}, {"model": "ocr", "when": {"class_is": ["vehicle"]}}], models)
    (car,) = rows_of(found, ID["car"])
    assert len(found) >= 3
    for row in range(len(found)):
        if row == car:
            continue
        assert found.data[TEXT_LINES][row] is None and found.data[TEXT][row] is None
        assert found.data[TEXT_CONFIDENCE][row] is None
    assert found.data[TEXT][car] == "AB 123"
    assert found.data[TEXT_CONFIDENCE][car] > 0.9
    lines = found.data[TEXT_LINES][car]
    assert isinstance(lines, Detections) and lines.data[TEXT] == ["AB 123"]
    # the line's box is in frame pixels, where the plate was painted (520..640, 105..140)
    x1, y1, x2, y2 = lines.xyxy[0]
    assert 510 <= x1 <= 535 and 95 <= y1 <= 115 and 610 <= x2 <= 645 and 130 <= y2 <= 150
    assert inside(lines.xyxy[0], found.xyxy[car])


def test_ocr_on_a_target_without_text(dog: npt.NDArray[np.uint8], models: LocalModels) -> None:
    """The step ran (an empty line list) but read nothing (no text, no confidence)."""
    found = run(dog, [{"model": "detect"}, {"model": "ocr", "when": {"class_is": ["dog"]}}], models)
    (row,) = rows_of(found, ID["dog"])
    lines = found.data[TEXT_LINES][row]
    assert isinstance(lines, Detections) and len(lines) == 0
    assert found.data[TEXT][row] is None and found.data[TEXT_CONFIDENCE][row] is None


def test_ocr_min_confidence_parameter(dog_with_plate: npt.NDArray[np.uint8], models: LocalModels) -> None:
    steps: list[dict[str, Any]] = [
        {"model": "detect"},
        {"model": "ocr", "parameters": {"min_confidence": 1.0}, "when": {"class_is": ["car"]}},
    ]
    found = run(dog_with_plate, steps, models)
    (car,) = rows_of(found, ID["car"])
    assert len(found.data[TEXT_LINES][car]) == 0 and found.data[TEXT][car] is None


# ---------------------------------------------------------------------------------------------- failures, timing


class BrokenEmbedder(LocalModels):
    async def embed(self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise RuntimeError("embedder replica died")


def test_a_failing_model_names_its_step(dog: npt.NDArray[np.uint8], detector: Detector) -> None:
    broken = BrokenEmbedder(SETTINGS, detector=detector)
    with pytest.raises(StepFailedError) as caught:
        run(dog, [{"model": "detect"}, {"model": "feature"}], broken)
    assert caught.value.step == "feature"
    assert isinstance(caught.value.cause, RuntimeError)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert str(caught.value) == "feature failed: RuntimeError: embedder replica died"


@pytest.mark.parametrize(("step", "code"), [("detect", "detector_error"), ("ocr", "ocr_error"), ("face", "face_error")])
def test_step_failure_is_a_visiongrid_error_that_pickles(step: str, code: str) -> None:
    error = StepFailedError(step, RuntimeError("replica died"))
    assert isinstance(error, VisionGridError) and isinstance(error, RuntimeError)
    assert error.code == code and error.status == 500 and error.field is None
    assert error.message == str(error) == f"{step} failed: RuntimeError: replica died"
    copy = pickle.loads(pickle.dumps(error))  # raised in a model replica, caught in the ingress
    assert type(copy) is StepFailedError and (copy.code, copy.step, str(copy)) == (code, step, str(error))
    assert isinstance(copy.cause, RuntimeError) and str(copy.cause) == "replica died"


def test_a_step_with_no_selected_targets_does_not_call_its_model(
    dog: npt.NDArray[np.uint8], detector: Detector
) -> None:
    broken = BrokenEmbedder(SETTINGS, detector=detector)
    found = run(dog, [{"model": "detect"}, {"model": "feature", "when": {"class_is": ["giraffe"]}}], broken)
    assert found.data[FEATURE] == [None] * len(found)


def test_a_failing_detector_names_detect(dog: npt.NDArray[np.uint8]) -> None:
    class BrokenDetector(LocalModels):
        async def detect(self, image: Any, **kwargs: Any) -> Detections:
            raise ValueError("no such detector")

    with pytest.raises(StepFailedError) as caught:
        run(dog, [{"model": "detect"}, {"model": "feature"}], BrokenDetector(SETTINGS))
    assert caught.value.step == "detect"


def test_timer_sees_every_step_but_describe(dog: npt.NDArray[np.uint8], models: LocalModels) -> None:
    timings: list[tuple[str, float]] = []
    plan = parse_steps([{"model": "detect"}, {"model": "feature"}, {"model": "describe"}])
    asyncio.run(run_steps(dog, plan, models, detect_floor=0.3, timer=lambda step, s: timings.append((step, s))))
    assert [step for step, _ in timings] == ["detect", "feature"]
    assert all(seconds >= 0 for _, seconds in timings)


def test_detect_floor_is_the_score_kept_down_to(dog: npt.NDArray[np.uint8], models: LocalModels) -> None:
    strict = run(dog, [{"model": "detect"}], models, floor=0.45)
    loose = run(dog, [{"model": "detect"}], models, floor=0.3)
    assert (strict.confidence >= 0.45).all() and len(loose) > len(strict)


# ---------------------------------------------------------------------------------------------- crop


IMAGE = np.arange(20 * 30 * 3, dtype=np.uint32).reshape(20, 30, 3).astype(np.uint8)  # 30 wide, 20 tall


@pytest.mark.parametrize(
    ("box", "offset", "shape"),
    [
        ((5, 4, 15, 10), (5, 4), (6, 10)),  # inside
        ((5.2, 4.7, 14.1, 9.3), (5, 4), (6, 10)),  # fractional: floor the start, ceil the end
        ((-10, -5, 8, 6), (0, 0), (6, 8)),  # partly above-left
        ((25, 15, 50, 40), (25, 15), (5, 5)),  # partly below-right
        ((-100, -100, 100, 100), (0, 0), (20, 30)),  # larger than the image
        ((40, 30, 60, 50), (29, 19), (1, 1)),  # fully below-right: the last pixel
        ((-60, -50, -40, -30), (0, 0), (1, 1)),  # fully above-left: the first pixel
        ((7, 7, 7, 7), (7, 7), (1, 1)),  # a point
        ((7, 3, 7, 12), (7, 3), (9, 1)),  # zero width
        ((12, 9, 4, 2), (12, 9), (1, 1)),  # inverted
        ((29.5, 19.5, 30, 20), (29, 19), (1, 1)),
    ],
)
def test_crop_clips_to_the_image(
    box: tuple[float, float, float, float], offset: tuple[int, int], shape: tuple[int, int]
) -> None:
    pixels, at = crop(IMAGE, np.array(box, np.float32))
    assert at == offset
    assert pixels.shape == (*shape, 3)
    np.testing.assert_array_equal(pixels, IMAGE[at[1] : at[1] + shape[0], at[0] : at[0] + shape[1]])


def test_crop_is_a_view() -> None:
    pixels, _ = crop(IMAGE, np.array([1, 1, 5, 5], np.float32))
    assert np.shares_memory(pixels, IMAGE)
