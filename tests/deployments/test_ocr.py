"""The OCR step reads rendered and photographed text exactly, with boxes in source pixels."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from deployments.ocr import OCRDeployment
from kernels.detections import Detections
from models.coco import TEXT_CLASS_ID
from models.runtime.ocr import TextReader, reading_order
from tests.conftest import read_rgb
from visiongrid.settings import Settings

FONTS = Path("/usr/share/fonts/truetype/dejavu")

# (text, top-left, font file, pixel size); "RIGHT" is drawn before "LEFT" on the same row.
LINES = [
    ("VisionGrid 2026", (20, 15), "DejaVuSans-Bold.ttf", 36),
    ("Reads every line exactly", (20, 80), "DejaVuSans.ttf", 24),
    ("small print: 12 ms/frame", (20, 140), "DejaVuSerif.ttf", 16),
    ("RIGHT", (300, 192), "DejaVuSansMono.ttf", 20),
    ("LEFT", (20, 190), "DejaVuSansMono.ttf", 20),
]
READING_ORDER = ["VisionGrid 2026", "Reads every line exactly", "small print: 12 ms/frame", "LEFT", "RIGHT"]


def render(
    lines: list[tuple[str, tuple[int, int], str, int]],
    size: tuple[int, int],
    ink: tuple[int, int, int] = (0, 0, 0),
    paper: tuple[int, int, int] = (255, 255, 255),
) -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """An RGB image with the lines drawn, and each line's drawn ink box."""
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    boxes = {}
    for text, xy, font_file, pixels in lines:
        font = ImageFont.truetype(str(FONTS / font_file), pixels)
        draw.text(xy, text, fill=ink, font=font)
        boxes[text] = draw.textbbox(xy, text, font=font)
    return np.asarray(image), boxes


def assert_box_fits(found: np.ndarray, drawn: tuple[int, int, int, int]) -> None:
    """The found box covers the drawn ink (a few px of slack) without growing much past it."""
    x1, y1, x2, y2 = drawn
    height = y2 - y1
    assert found[0] <= x1 + 3 and found[1] <= y1 + 3 and found[2] >= x2 - 3 and found[3] >= y2 - 3, (found, drawn)
    assert found[0] >= x1 - 10 and found[2] <= x2 + 10, (found, drawn)
    assert found[1] >= y1 - 0.8 * height - 2 and found[3] <= y2 + 0.8 * height + 2, (found, drawn)


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader(intra_op_threads=2)


@pytest.fixture(scope="module")
def rendered() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    return render(LINES, (480, 240))


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    """A tight 90x22 crop of a plate: the kind of detector crop the pipeline reads."""
    return render([("AB 123 CD", (3, 3), "DejaVuSans-Bold.ttf", 14)], (90, 22))[0]


def test_rendered_lines_are_read_exactly_in_reading_order_with_their_boxes(
    reader: TextReader, rendered: tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]
) -> None:
    image, drawn = rendered
    found = reader.read(image)
    assert found.data["text"] == READING_ORDER
    assert found.class_id.tolist() == [TEXT_CLASS_ID] * len(READING_ORDER)
    assert np.all(found.confidence > 0.9) and np.all(found.confidence <= 1.0)
    for text, box in zip(found.data["text"], found.xyxy, strict=True):
        assert_box_fits(box, drawn[text])


def test_light_text_on_a_coloured_background(reader: TextReader) -> None:
    image, drawn = render(
        [("Gate 7 closed", (12, 10), "DejaVuSans-Bold.ttf", 28)], (260, 56), ink=(250, 240, 60), paper=(20, 40, 140)
    )
    found = reader.read(image)
    assert found.data["text"] == ["Gate 7 closed"]
    assert_box_fits(found.xyxy[0], drawn["Gate 7 closed"])


def test_a_small_plate_crop_is_upscaled_and_read_in_crop_pixels(reader: TextReader, plate: np.ndarray) -> None:
    found = reader.read(plate)
    assert found.data["text"] == ["AB 123 CD"]
    x1, y1, x2, y2 = found.xyxy[0]
    assert 0 <= x1 < 10 and 0 <= y1 < 8 and 80 < x2 <= 90 and 14 < y2 <= 22


def test_scanned_page_is_read_line_by_line(reader: TextReader, media_dir: Path) -> None:
    # Palette PNG (a book page, 556x257, 13 lines): decoded to an RGB array first.
    image = np.asarray(Image.open(media_dir / "imageTextN.png").convert("RGB"))
    found = reader.read(image)
    texts = found.data["text"]
    assert len(texts) == 13
    assert texts[0] == "technical details are too complex to cover in the book itself."
    assert texts[-1] == "inspiration from three high-level approaches:"
    assert "In formulating and solving computer vision problems" in texts[-2]
    assert "real-world" in " ".join(texts)
    assert np.all(np.diff(found.xyxy[:, 1]) > 0)  # one line per row, top to bottom
    assert found.xyxy[:, 2].max() <= 556 and found.xyxy[:, 3].max() <= 257


def test_text_in_a_photo(reader: TextReader, media_dir: Path) -> None:
    # Football photo (548x342): "unicef" on the shirt, a "WEEKmedia" logo bottom-right whose W is a
    # drawing (read as a V): both lines found where they are.
    found = reader.read(read_rgb(media_dir / "messi5.jpg"))
    texts = found.data["text"]
    assert "unicef" in texts
    media = next(i for i, text in enumerate(texts) if text.endswith("EEKmedia"))
    shirt = texts.index("unicef")
    assert 190 < found.xyxy[shirt, 0] < found.xyxy[shirt, 2] < 280 and 130 < found.xyxy[shirt, 1] < 165
    assert found.xyxy[media, 0] > 450 and found.xyxy[media, 1] > 290
    assert shirt < media  # reading order


def test_motion_blurred_text_is_not_guessed(reader: TextReader, media_dir: Path) -> None:
    # OpenCV's text_motion.jpg: a page smeared by horizontal motion blur, unreadable to a person too.
    found = reader.read(read_rgb(media_dir / "text_motion.jpg"))
    assert len(found) == 0


def test_photos_without_text_give_nothing_or_a_stray_character(reader: TextReader, media_dir: Path) -> None:
    assert len(reader.read(read_rgb(media_dir / "horses.jpg"))) == 0
    # The coffee cup's rim gives one stray glyph ("8") at ~0.9: junk is short, never a word.
    coffee = reader.read(skimage.data.coffee())
    assert len(coffee) <= 1 and all(len(text) <= 2 for text in coffee.data["text"])


def test_tiny_and_blank_images_give_no_rows_with_the_text_column(reader: TextReader, media_dir: Path) -> None:
    page = np.asarray(Image.open(media_dir / "imageTextN.png").convert("RGB"))
    for image in (
        page[20:25, 40:45],
        page[:1, :1],
        np.full((40, 300, 3), 255, np.uint8),
        np.zeros((600, 12, 3), np.uint8),
    ):
        found = reader.read(np.ascontiguousarray(image))
        assert len(found) == 0 and found.data == {"text": []}
        assert found.xyxy.shape == (0, 4)


def test_batch_equals_one_by_one_and_a_bad_item_fails_alone(
    reader: TextReader, rendered: tuple[np.ndarray, dict[str, tuple[int, int, int, int]]], plate: np.ndarray
) -> None:
    image = rendered[0]
    bad = np.zeros((30, 30), np.uint8)  # not HxWx3
    results = reader.read_each([plate, bad, image[:120], np.zeros((4, 4, 3), np.uint8), image[::-1].astype(np.float32)])
    assert isinstance(results[1], ValueError) and isinstance(results[4], ValueError)
    alone = [reader.read(plate), reader.read(image[:120])]
    for together, single in zip([results[0], results[2]], alone, strict=True):
        assert isinstance(together, Detections)
        assert together.data["text"] == single.data["text"]
        np.testing.assert_allclose(together.xyxy, single.xyxy)
        np.testing.assert_allclose(together.confidence, single.confidence)
    assert results[2].data["text"] == ["VisionGrid 2026", "Reads every line exactly"]  # type: ignore[union-attr]
    assert isinstance(results[3], Detections) and len(results[3]) == 0


def test_reading_order_groups_rows_by_vertical_overlap() -> None:
    boxes = np.array(
        [[300, 102, 360, 120], [10, 10, 200, 40], [20, 100, 80, 118], [10, 50, 90, 70], [150, 55, 220, 72]],
        np.float32,
    )
    assert reading_order(boxes) == [1, 3, 4, 2, 0]
    assert reading_order(np.empty((0, 4), np.float32)) == []


def test_deployment_batches_callers_and_fails_a_bad_item_alone(plate: np.ndarray) -> None:
    # The deployment class itself, run on this event loop (its batcher is plain asyncio).
    settings = Settings(model_num_cpus=0.25, model_max_batch_size=4, model_batch_wait_s=0.2)
    deployment = OCRDeployment.func_or_class(settings)  # type: ignore[attr-defined]

    async def call_together() -> list[Detections | BaseException]:
        calls = [deployment.read(plate), deployment.read(np.zeros((3, 3), np.uint8)), deployment.read(plate)]
        return await asyncio.gather(*calls, return_exceptions=True)

    first, bad, third = asyncio.run(call_together())
    assert isinstance(bad, ValueError)
    assert isinstance(first, Detections) and isinstance(third, Detections)
    assert first.data["text"] == third.data["text"] == ["AB 123 CD"]
    assert deployment.batch_stats() == {3: 1}
