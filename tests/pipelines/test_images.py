"""decode_image: any supported upload becomes upright RGB; bad or oversized bytes get a stable code."""

from __future__ import annotations

import io
import pickle
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.errors import VisionGridError
from pipelines.images import ImageDecodeError, decode_image
from tests.conftest import read_rgb

LIMIT = 40_000_000  # the default Settings.max_image_pixels


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_header(width: int, height: int, *, colour_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG of signature + IHDR (+ an IDAT of ``idat``) + IEND, every chunk CRC correct."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(idat)) + chunk(b"IEND", b"")


def decode_error(data: bytes, max_pixels: int = LIMIT) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, max_pixels=max_pixels)
    assert caught.value.message == str(caught.value)
    assert isinstance(caught.value, VisionGridError) and isinstance(caught.value, ValueError)
    assert caught.value.status == (413 if caught.value.code == "image_too_large" else 400)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is ImageDecodeError and (copy.code, copy.message) == (caught.value.code, caught.value.message)
    return caught.value


def gradient(width: int, height: int) -> np.ndarray:
    """An RGB image whose every pixel is distinct enough to tell orientations apart."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs + ys) % 256], -1).astype(
        np.uint8
    )


# ---------------------------------------------------------------------------------------------- real files


def test_real_jpeg_matches_opencv(media_dir: Path) -> None:
    path = media_dir / "dog.jpg"
    rgb = decode_image(path.read_bytes(), max_pixels=LIMIT)
    assert rgb.dtype == np.uint8 and rgb.shape == (576, 768, 3)
    reference = read_rgb(path)  # libjpeg of another build: decoders may differ by a level or two
    assert np.abs(rgb.astype(np.int16) - reference.astype(np.int16)).mean() < 2.0


def test_palette_png_becomes_rgb(media_dir: Path) -> None:
    data = (media_dir / "imageTextN.png").read_bytes()
    with Image.open(io.BytesIO(data)) as source:
        assert source.mode == "P"  # the point of this file
        expected = np.asarray(source.convert("RGB"))
    rgb = decode_image(data, max_pixels=LIMIT)
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, expected)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 1


def test_real_png_round_trip(media_dir: Path) -> None:
    original = read_rgb(media_dir / "person.jpg")
    rgb = decode_image(encode(Image.fromarray(original), "PNG"), max_pixels=LIMIT)
    np.testing.assert_array_equal(rgb, original)  # lossless


def test_limit_is_inclusive(media_dir: Path) -> None:
    rgb = decode_image((media_dir / "dog.jpg").read_bytes(), max_pixels=768 * 576)
    assert rgb.shape == (576, 768, 3)
    assert decode_error((media_dir / "dog.jpg").read_bytes(), max_pixels=768 * 576 - 1).code == "image_too_large"


# ---------------------------------------------------------------------------------------------- modes


def test_grey_png_becomes_rgb() -> None:
    grey = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    rgb = decode_image(encode(Image.fromarray(grey, mode="L"), "PNG"), max_pixels=LIMIT)
    assert rgb.shape == (12, 20, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


def test_rgba_png_drops_alpha() -> None:
    rgba = np.zeros((10, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = np.linspace(0, 255, 16, dtype=np.uint8)[None, :]  # transparent to opaque
    rgb = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"), max_pixels=LIMIT)
    assert rgb.shape == (10, 16, 3)
    assert (rgb == np.array([200, 100, 50], np.uint8)).all()


def test_sixteen_bit_grey_and_cmyk_become_rgb() -> None:
    grey16 = Image.new("I;16", (8, 8))
    grey16.putdata([value * 1000 for value in range(64)])
    assert decode_image(encode(grey16, "PNG"), max_pixels=LIMIT).shape == (8, 8, 3)
    cmyk = Image.new("CMYK", (9, 7), (0, 255, 255, 0))  # pure red in CMYK
    rgb = decode_image(encode(cmyk, "JPEG", quality=95), max_pixels=LIMIT)
    assert rgb.shape == (7, 9, 3)
    assert rgb[..., 0].min() > 200 and rgb[..., 1].max() < 60 and rgb[..., 2].max() < 60


def test_gif_first_frame_and_webp_bmp() -> None:
    frames = [Image.new("P", (6, 4), 1), Image.new("P", (6, 4), 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    rgb = decode_image(gif, max_pixels=LIMIT)
    assert rgb.shape == (4, 6, 3) and (rgb == np.array([255, 0, 0], np.uint8)).all()
    source = gradient(24, 10)
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(source), "BMP"), max_pixels=LIMIT), source)
    webp = decode_image(encode(Image.fromarray(source), "WEBP", lossless=True), max_pixels=LIMIT)
    np.testing.assert_array_equal(webp, source)


# ---------------------------------------------------------------------------------------------- EXIF orientation


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # the camera was turned: rotate 90° clockwise to view
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_exif_orientation_applied(orientation: int, turn: object) -> None:
    stored = gradient(64, 32)  # landscape as stored
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image, "PNG", exif=exif.tobytes())  # lossless, so pixels can be compared exactly
    rgb = decode_image(data, max_pixels=LIMIT)
    assert callable(turn)
    np.testing.assert_array_equal(rgb, turn(stored))


def test_exif_orientation_6_jpeg_swaps_shape() -> None:
    stored = gradient(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = decode_image(encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95), max_pixels=LIMIT)
    assert rgb.shape == (80, 40, 3)  # portrait: width and height swapped
    # the stored top-left corner (black-ish) is now the top-right one
    assert rgb[0, -1].astype(int).sum() < rgb[-1, 0].astype(int).sum()


# ---------------------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is not an image at all\n" * 4,
        b"{'json': true}",
        b"\x00" * 64,
        b"GIF89",  # a signature cut short
        b"%PDF-1.7\n",
    ],
)
def test_not_an_image(data: bytes) -> None:
    assert decode_error(data).code == "not_an_image"


def test_empty_bytes_are_not_an_image() -> None:
    error = decode_error(b"")
    assert error.code == "not_an_image" and "0 bytes" in error.message


def test_unsupported_format_is_not_an_image() -> None:
    """Formats outside the list are refused even when Pillow could read them (PPM here)."""
    assert decode_error(encode(Image.new("RGB", (4, 4)), "PPM")).code == "not_an_image"


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.97])
def test_truncated_jpeg_is_corrupt(media_dir: Path, keep: float) -> None:
    data = (media_dir / "dog.jpg").read_bytes()
    error = decode_error(data[: int(len(data) * keep)])
    assert error.code == "corrupt_image"


def test_truncated_png_is_corrupt() -> None:
    data = encode(Image.fromarray(gradient(120, 90)), "PNG")
    assert decode_error(data[: len(data) // 2]).code == "corrupt_image"


def test_png_with_garbage_pixels_is_corrupt() -> None:
    """A valid header whose compressed pixels are missing: Pillow opens it, decoding fails."""
    assert decode_error(png_header(64, 48)).code == "corrupt_image"


def test_huge_header_refused_before_decoding() -> None:
    """50000×50000 claimed by a 60-byte PNG: refused from the header alone, without allocating 7.5 GB."""
    data = png_header(50_000, 50_000)
    assert len(data) < 100
    started = time.perf_counter()
    error = decode_error(data)
    assert time.perf_counter() - started < 0.5
    assert error.code == "image_too_large"
    assert str(LIMIT) in error.message


def test_header_over_the_limit_refused_with_its_size() -> None:
    started = time.perf_counter()
    error = decode_error(png_header(5000, 4000), max_pixels=1_000_000)
    assert time.perf_counter() - started < 0.5
    assert error.code == "image_too_large"
    assert "5000x4000" in error.message and "1000000" in error.message


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (0, 0)])
def test_zero_size_header_is_refused(width: int, height: int) -> None:
    # Pillow itself refuses a 0-pixel PNG header, so it surfaces as not an image (empty_image is the
    # code for formats that let a 0×0 size through)
    assert decode_error(png_header(width, height)).code in {"not_an_image", "empty_image"}


def test_configured_limit_above_pillows_is_honoured() -> None:
    # 10000×9500 = 95 Mpx: under max_pixels (200 Mpx), over Pillow's default bomb warning threshold.
    # The header is real but the pixels are missing, so the right answer is corrupt_image, not too large.
    error = decode_error(png_header(10_000, 9_500), max_pixels=200_000_000)
    assert error.code == "corrupt_image", error.message
