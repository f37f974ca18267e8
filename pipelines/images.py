"""Decode an uploaded image into the RGB array the models take, bounded before anything is allocated.

The header is read first (Pillow opens lazily): a 0×0 image or one larger than ``max_pixels`` is refused
before its pixels are decoded, so a 30-byte PNG that claims 100k×100k costs nothing. Palette, grey,
alpha and CMYK images become plain RGB (OCR reads garbage from a palette image handed over as is), and
EXIF orientation is applied so a phone photo is upright.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from contract.errors import ErrorCode, VisionGridError

__all__ = ["ImageDecodeError", "decode_image"]

_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# The configured ``max_pixels`` is the limit, checked on the header before decoding; Pillow's own fixed
# bomb limit (~89 Mpx warning, ~179 Mpx error) would override a larger configured one, so it is off.
Image.MAX_IMAGE_PIXELS = None


class ImageDecodeError(VisionGridError, ValueError):
    """Why bytes are not a usable image; ``code`` is stable (not_an_image, corrupt_image, empty_image,
    image_too_large). Still a ``ValueError``: callers that only care that the input was bad catch that."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(code, message)


def decode_image(data: bytes, *, max_pixels: int) -> npt.NDArray[np.uint8]:
    """RGB ``uint8 [H, W, 3]`` of the first frame of a JPEG/PNG/WebP/BMP/GIF/TIFF image."""
    if not data:
        raise ImageDecodeError(ErrorCode.NOT_AN_IMAGE, "the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        formats = ", ".join(_FORMATS)
        raise ImageDecodeError(ErrorCode.NOT_AN_IMAGE, f"not an image in a supported format ({formats})") from None
    except Exception as exc:  # a header Pillow recognised but cannot parse
        raise ImageDecodeError(ErrorCode.CORRUPT_IMAGE, f"the image header is damaged ({exc})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(ErrorCode.EMPTY_IMAGE, f"the image is {width}x{height} pixels")
    if width * height > max_pixels:
        raise ImageDecodeError(
            "image_too_large", f"the image is {width}x{height} = {width * height} pixels, limit is {max_pixels}"
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image) or image
        rgb = upright.convert("RGB")
    except Exception as exc:  # truncated data, bad chunks, broken compression
        reason = f"{type(exc).__name__}: {exc}"
        raise ImageDecodeError(ErrorCode.CORRUPT_IMAGE, f"the image data is damaged ({reason})") from None
    return np.asarray(rgb, dtype=np.uint8)
