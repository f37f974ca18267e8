"""Letterbox resize into a fixed canvas and the box mapping between model input and source."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.letterbox import LetterboxTransform, letterbox, normalise


def _uniform(height: int, width: int, value: int = 200) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def test_wide_image_scales_to_width_and_pads_bottom() -> None:
    # 200 x 100 (w x h) into 512 x 512: scale = min(512/200, 512/100) = 2.56 -> 512 x 256 content.
    canvas, transform = letterbox(_uniform(100, 200), (512, 512), pad_value=114.0)
    assert canvas.shape == (512, 512, 3)
    assert canvas.dtype == np.float32
    assert transform == LetterboxTransform(scale=2.56, pad_x=0.0, pad_y=0.0, source_width=200, source_height=100)
    assert (canvas[:256] == 200).all()  # content at the top, full width
    assert (canvas[256:] == 114).all()  # padding rows 256..511


def test_tall_image_scales_to_height_and_pads_right() -> None:
    # 100 x 200 (w x h) into 512 x 512: scale 2.56 -> 256 x 512 content, columns 256..511 pad.
    canvas, transform = letterbox(_uniform(200, 100), (512, 512))
    assert transform.scale == pytest.approx(2.56)
    assert (transform.pad_x, transform.pad_y) == (0.0, 0.0)
    assert (canvas[:, :256] == 200).all()
    assert (canvas[:, 256:] == 0).all()  # default pad_value is 0


def test_centered_padding_splits_rows_evenly() -> None:
    # Content 512 x 256; pad_y = (512 - 256) / 2 = 128: rows 0..127 and 384..511 are padding.
    canvas, transform = letterbox(_uniform(100, 200), (512, 512), pad_value=114.0, center=True)
    assert (transform.pad_x, transform.pad_y) == (0.0, 128.0)
    assert (canvas[:128] == 114).all()
    assert (canvas[128:384] == 200).all()
    assert (canvas[384:] == 114).all()


def test_centered_odd_padding_matches_the_transform() -> None:
    # Into (515, 512): scale = min(512/200, 515/100) = 2.56, content 512 x 256;
    # pad_y = (515 - 256) / 2 = 129.5 -> content starts at row 129 and the transform says 129.
    canvas, transform = letterbox(_uniform(100, 200), (515, 512), pad_value=1.0, center=True)
    assert transform.pad_y == 129.0
    assert (canvas[:129] == 1).all()
    assert (canvas[129 : 129 + 256] == 200).all()
    assert (canvas[129 + 256 :] == 1).all()


def test_downscale_of_a_larger_frame() -> None:
    # 640 x 360 into 512 x 512: scale = min(512/640, 512/360) = 0.8 -> 512 x 288 content.
    canvas, transform = letterbox(_uniform(360, 640, 50), (512, 512), pad_value=114.0)
    assert transform.scale == pytest.approx(0.8)
    assert (canvas[:288] == 50).all()
    assert (canvas[288:] == 114).all()


def test_content_is_copied_pixel_exact_at_scale_one() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(50, 100, 3), dtype=np.uint8)
    # Into (80, 100): scale = min(100/100, 80/50) = 1, no resize; rows 50..79 are padding.
    canvas, transform = letterbox(image, (80, 100), pad_value=7.0)
    assert transform.scale == 1.0
    np.testing.assert_array_equal(canvas[:50], image.astype(np.float32))
    assert (canvas[50:] == 7).all()
    # Centred: pad_y = (80 - 50) / 2 = 15 -> content at rows 15..64.
    canvas, transform = letterbox(image, (80, 100), pad_value=7.0, center=True)
    assert transform.pad_y == 15.0
    np.testing.assert_array_equal(canvas[15:65], image.astype(np.float32))
    assert (canvas[:15] == 7).all() and (canvas[65:] == 7).all()


def test_writes_into_a_preallocated_batch_slot() -> None:
    batch = np.full((2, 512, 512, 3), -1.0, dtype=np.float32)
    canvas, transform = letterbox(_uniform(100, 200), (512, 512), pad_value=114.0, out=batch[1])
    assert np.shares_memory(canvas, batch)
    assert transform.scale == pytest.approx(2.56)
    assert (batch[1, :256] == 200).all()
    assert (batch[1, 256:] == 114).all()
    assert (batch[0] == -1).all()  # the other slot is untouched


def test_empty_image_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        letterbox(np.zeros((0, 10, 3), dtype=np.uint8), (64, 64))


def test_single_channel_image_with_resize() -> None:
    # 20 x 10 (w x h) into 64 x 64: scale 3.2 -> 64 x 32 content.
    canvas, _ = letterbox(np.full((10, 20, 1), 9, dtype=np.uint8), (64, 64))
    assert canvas.shape == (64, 64, 1)
    assert (canvas[:32] == 9).all() and (canvas[32:] == 0).all()


CENTERED = LetterboxTransform(scale=2.56, pad_x=0.0, pad_y=128.0, source_width=200, source_height=100)


def test_to_model_hand_computed() -> None:
    # x * 2.56 + 0, y * 2.56 + 128: [10, 20, 150, 90] -> [25.6, 179.2, 384, 358.4].
    np.testing.assert_allclose(
        CENTERED.to_model(np.array([[10, 20, 150, 90]])), [[25.6, 179.2, 384.0, 358.4]], rtol=1e-6
    )


@pytest.mark.parametrize("center", [False, True])
def test_box_round_trip_through_the_letterbox(center: bool) -> None:
    _, transform = letterbox(_uniform(100, 200), (512, 512), center=center)
    boxes = np.array([[10, 20, 150, 90], [0, 0, 200, 100], [33.3, 1.5, 34.4, 99.9]], dtype=np.float32)
    model = transform.to_model(boxes)
    assert model.dtype == np.float32
    np.testing.assert_allclose(transform.to_source(model), boxes, atol=1e-3)


def test_to_source_clips_to_the_frame() -> None:
    # x: -50 / 2.56 -> 0, 600 / 2.56 = 234.4 -> 200; y: (-50 - 128) / 2.56 -> 0, (600 - 128) / 2.56 = 184.4 -> 100.
    model = np.array([[-50, -50, 600, 600]], dtype=np.float32)
    source = CENTERED.to_source(model)
    np.testing.assert_array_equal(source, [[0, 0, 200, 100]])
    assert source.dtype == np.float32
    assert model[0, 0] == -50  # input not modified


def test_to_source_of_a_box_in_the_padding_collapses() -> None:
    # Rows >= 384 are bottom padding: y = (400 - 128) / 2.56 = 106.25 -> clipped to 100 on both edges.
    source = CENTERED.to_source(np.array([[10, 400, 100, 500]]))
    assert source[0, 1] == source[0, 3] == 100


def test_normalise_in_place_per_channel() -> None:
    image = np.array([[[10, 20, 30], [1, 2, 3]]], dtype=np.float32)
    result = normalise(image, mean=(1, 2, 3), std=(3, 6, 9))
    # (10-1)/3 = 3, (20-2)/6 = 3, (30-3)/9 = 3; (1-1)/3 = 0, (2-2)/6 = 0, (3-3)/9 = 0.
    assert result is image
    np.testing.assert_allclose(image, [[[3, 3, 3], [0, 0, 0]]])


def test_fit_within_then_letterbox_equals_letterbox_alone() -> None:
    from kernels.letterbox import fit_within

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, size=(576, 768, 3), dtype=np.uint8)
    fitted, scale = fit_within(image, (512, 512))
    # 768x576 into 512x512: scale = min(512/768, 512/576) = 2/3 → 512x384
    assert fitted.shape == (384, 512, 3) and scale == pytest.approx(2 / 3)
    direct, _ = letterbox(image, (512, 512))
    via_fit, _ = letterbox(fitted, (512, 512))
    np.testing.assert_array_equal(direct, via_fit)
    small = image[:100, :100]
    same, one = fit_within(small, (512, 512))
    assert same is small and one == 1.0, "never upscales"


def test_detections_scaled_multiplies_boxes_only() -> None:
    from kernels.detections import Detections

    found = Detections([[10, 20, 30, 40]], [0.5], [2], [7], data={"text": ["a"]})
    back = found.scaled(1.5)
    np.testing.assert_allclose(back.xyxy, [[15, 30, 45, 60]])
    assert back.track_id.tolist() == [7] and back.data == {"text": ["a"]}
