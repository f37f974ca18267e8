"""Named dominant colours: palette rules on known colours, shares, boxes, real photos, speed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kernels.colour import PALETTE, colour_labels, colour_shares, dominant_colours
from tests.conftest import read_rgb

KNOWN = {
    "black": (10, 10, 12),
    "white": (250, 250, 248),
    "grey": (128, 128, 128),
    "red": (220, 20, 20),
    "orange": (255, 140, 0),
    "yellow": (240, 220, 20),
    "green": (30, 160, 40),
    "teal": (0, 150, 150),
    "blue": (20, 60, 200),
    "purple": (120, 40, 170),
    "pink": (255, 150, 200),
    "brown": (120, 70, 30),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_each_palette_colour_is_named(name: str) -> None:
    image = np.full((40, 60, 3), KNOWN[name], np.uint8)
    assert dominant_colours(image) == [(name, 1.0)]


def test_every_palette_name_has_a_known_colour() -> None:
    assert set(KNOWN) == set(PALETTE)


def test_shares_are_proportional_and_sorted() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :60] = KNOWN["green"]
    image[:, 60:90] = KNOWN["blue"]
    image[:, 90:] = KNOWN["white"]
    colours = dominant_colours(image, k=3)
    assert [name for name, _ in colours] == ["green", "blue", "white"]
    assert [round(share, 2) for _, share in colours] == [0.6, 0.3, 0.1]
    assert dominant_colours(image, k=1) == colours[:1]
    assert sum(colour_shares(image).values()) == pytest.approx(1.0)


def test_box_region_only_counts_its_pixels() -> None:
    image = np.full((100, 200, 3), KNOWN["grey"], np.uint8)
    image[20:60, 120:180] = KNOWN["red"]
    assert dominant_colours(image, box=(120, 20, 180, 60)) == [("red", 1.0)]
    # Clipped to the image: x 150..200 (red up to 180), y 30..60 (all red rows) → 60 % red.
    clipped = dominant_colours(image, box=np.array([150.0, 30.0, 400.0, 60.0]))
    assert [(name, round(share, 2)) for name, share in clipped] == [("red", 0.6), ("grey", 0.4)]
    assert dominant_colours(image, box=(300, 300, 400, 400)) == []  # outside the image
    assert dominant_colours(np.zeros((0, 0, 3), np.uint8)) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        dominant_colours(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="k must be"):
        dominant_colours(np.zeros((10, 10, 3), np.uint8), k=0)


def test_dark_and_pale_pixels_get_everyday_names() -> None:
    pixels = np.array([[90, 50, 20], [250, 200, 200], [60, 62, 61], [200, 205, 210]], np.uint8)
    assert [PALETTE[i] for i in colour_labels(pixels)] == ["brown", "pink", "grey", "grey"]


def test_real_photos(media_dir: Path) -> None:
    # vtest.avi is a lawn beside a grey paved path: green and grey, in that order.
    capture = cv2.VideoCapture(str(media_dir / "vtest.avi"))
    ok, frame = capture.read()
    capture.release()
    assert ok
    lawn = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    assert [name for name, _ in dominant_colours(lawn, k=2)] == ["green", "grey"]
    # The lower-left quarter of that frame is lawn only.
    height, width = lawn.shape[:2]
    assert dominant_colours(lawn, k=1, box=(0, height * 0.6, width * 0.4, height))[0][0] == "green"
    # dog.jpg: grey street and wall dominate.
    assert dominant_colours(read_rgb(media_dir / "dog.jpg"), k=1)[0][0] == "grey"
