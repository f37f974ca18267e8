"""The image of a vision request: fetched within the byte limit, decoded within the pixel limit.

One reader (``store.media.read_image_source``: ``url`` — our own presigned URLs included —,
``base64`` or a storage ``path``) and one decoder serve the synchronous endpoints; errors name the
request's own field (``image.url``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from starlette.concurrency import run_in_threadpool

from api.services import Services
from contract.errors import VisionGridError
from contract.vision import ImageIn
from pipelines.images import ImageDecodeError, decode_image
from store import media

__all__ = ["read_image"]


async def read_image(image: ImageIn, services: Services, project: str, field: str = "image") -> npt.NDArray[np.uint8]:
    """The request's image as RGB; a bad one is a 400/413 naming ``image.<source>``."""
    source = image.model_dump(exclude_none=True)
    data = await run_in_threadpool(media.read_image_source, source, services.settings, project, field)
    try:
        return await run_in_threadpool(decode_image, data, max_pixels=services.settings.max_image_pixels)
    except ImageDecodeError as exc:
        raise VisionGridError(exc.code, exc.message, f"{field}.{image.source_field}") from None
