"""crop_resize: boxes clipped to the frame, aspect kept by centred letterboxing, never a crash."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels.crops import CROP_PAD_VALUE, crop_resize, letterbox_crop


def _gradient(height: int = 120, width: int = 160) -> np.ndarray:
    """An image whose every pixel tells where it came from: R = x, G = y, B = 200."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x, y, np.full_like(x, 200)], axis=-1).astype(np.uint8)


def test_shape_dtype_and_one_crop_per_box() -> None:
    image = _gradient()
    boxes = np.array([[10, 10, 50, 90], [0, 0, 160, 120], [100, 20, 140, 40]], np.float32)
    crops = crop_resize(image, boxes, (64, 32))
    assert crops.shape == (3, 64, 32, 3) and crops.dtype == np.uint8


def test_no_boxes_gives_an_empty_batch() -> None:
    crops = crop_resize(_gradient(), np.zeros((0, 4), np.float32), (64, 32))
    assert crops.shape == (0, 64, 32, 3) and crops.dtype == np.uint8


def test_exact_size_box_is_copied_pixel_for_pixel() -> None:
    image = _gradient()
    crops = crop_resize(image, np.array([[20, 30, 52, 94]], np.float32), (64, 32))  # 32 wide, 64 tall
    np.testing.assert_array_equal(crops[0], image[30:94, 20:52])


def test_aspect_is_kept_and_the_crop_is_centred_on_grey() -> None:
    image = _gradient()
    # a 40x40 square into a 64x32 (tall) target: scaled to 32x32, centred vertically
    crops = crop_resize(image, np.array([[40, 40, 80, 80]], np.float32), (64, 32))
    crop = crops[0]
    assert (crop[:16] == CROP_PAD_VALUE).all() and (crop[48:] == CROP_PAD_VALUE).all()
    expected = cv2.resize(image[40:80, 40:80], (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop[16:48], expected)
    # a wide box into the tall target: padded left and right instead
    wide = crop_resize(image, np.array([[0, 0, 160, 40]], np.float32), (64, 32), pad_value=7)[0]
    assert (wide[:, :, 2] == 200).sum() == 32 * 8  # 160x40 -> 32x8 of content, blue channel 200
    assert (wide[:28] == 7).all() and (wide[36:] == 7).all()


def test_small_boxes_are_enlarged() -> None:
    image = _gradient()
    crop = crop_resize(image, np.array([[10, 10, 14, 18]], np.float32), (64, 32))[0]  # 4x8 -> 32x64
    assert (crop[:, :, 2] == 200).all(), "a box of the crop's aspect fills it"
    assert crop[0, 0, 0] <= 11 and crop[-1, -1, 0] >= 12  # R = x grows left to right


def test_boxes_are_clipped_to_the_image() -> None:
    image = _gradient()
    partly_out = crop_resize(image, np.array([[-40, -30, 32, 64]], np.float32), (64, 32))
    inside = crop_resize(image, np.array([[0, 0, 32, 64]], np.float32), (64, 32))
    np.testing.assert_array_equal(partly_out, inside)


@pytest.mark.parametrize(
    "box, pixel",
    [
        ([50, 60, 50, 60], (60, 50)),  # zero area
        ([70, 80, 60, 70], (70, 60)),  # inverted corners are reordered
        ([500, 500, 600, 600], (119, 159)),  # fully outside: nearest frame pixel
        ([-90, -90, -10, -10], (0, 0)),
    ],
)
def test_degenerate_boxes_become_small_crops_not_errors(box: list[float], pixel: tuple[int, int]) -> None:
    image = _gradient()
    crop = crop_resize(image, np.array([box], np.float32), (64, 32))[0]
    assert crop.shape == (64, 32, 3)
    if box == [70, 80, 60, 70]:
        np.testing.assert_array_equal(crop, crop_resize(image, np.array([[60, 70, 70, 80]], np.float32), (64, 32))[0])
    else:
        assert (crop[:, :, 2] == 200).any(), "some of the frame is in the crop"
        y, x = pixel
        np.testing.assert_array_equal(crop[32, 16], image[y, x])


def test_non_finite_coordinates_count_as_zero() -> None:
    image = _gradient()
    crop = crop_resize(image, np.array([[np.nan, 5, np.inf, 9]], np.float32), (64, 32))[0]
    content = crop[crop[:, :, 2] == 200]  # x 0..1 (NaN and inf -> 0), y 5..9
    assert len(content) and (content[:, 0] == 0).all() and (content[:, 1] >= 5).all() and (content[:, 1] <= 8).all()


def test_one_pixel_crop_fills_the_target_with_that_pixel() -> None:
    image = _gradient()
    crop = crop_resize(image, np.array([[30, 40, 30, 40]], np.float32), (64, 32))[0]
    # a 1x1 patch scaled into a 64x32 target keeps its aspect: a 32x32 block of its colour
    assert (crop[16:48] == image[40, 30]).all() and (crop[:16] == CROP_PAD_VALUE).all()


def test_bad_image_is_refused() -> None:
    with pytest.raises(ValueError):
        crop_resize(np.zeros((0, 10, 3), np.uint8), np.zeros((1, 4), np.float32), (64, 32))
    with pytest.raises(ValueError):
        crop_resize(np.zeros((10, 10), np.uint8), np.zeros((1, 4), np.float32), (64, 32))


def test_letterbox_crop_writes_into_a_given_buffer() -> None:
    out = np.zeros((4, 64, 32, 3), np.uint8)
    letterbox_crop(_gradient()[0:64, 0:32], (64, 32), out=out[2])
    assert out[2].any() and not out[[0, 1, 3]].any()
