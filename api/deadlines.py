"""``Max-Processing-Time: <seconds>`` (Noxovision): how long a task may process before it fails.

The header is read on task creation (``/v1/video/process``, ``/v1/vision/batch``); the clock starts
when a runner claims the task (queue time excluded). ``0`` means no deadline; a value above
``Settings.max_processing_time_cap_s`` is clamped to it, and the task view says so.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Final

from fastapi import Header

from contract.errors import ErrorCode, VisionGridError
from visiongrid.settings import Settings

__all__ = ["HEADER", "MaxProcessingTimeHeader", "deadline_of"]

HEADER: Final[str] = "Max-Processing-Time"
_SECONDS: Final[re.Pattern[str]] = re.compile(r"^\d{1,12}(\.\d{1,9})?$")

MaxProcessingTimeHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        max_length=64,
        description="seconds of processing allowed (0: none); past it the task fails `deadline_exceeded`",
    ),
]


def deadline_of(value: str | None, settings: Settings) -> tuple[float | None, float | None]:
    """(seconds allowed, seconds asked) of a header value: (None, None) without one or for ``0``;
    a malformed value is a 400 naming the header."""
    if value is None:
        return None, None
    text = value.strip()
    if not _SECONDS.fullmatch(text):
        raise VisionGridError(
            ErrorCode.INVALID_REQUEST, f"{HEADER} must be a non-negative number of seconds, got {value!r}", HEADER
        )
    asked = float(text)
    if asked == 0 or not math.isfinite(asked):
        return None, None
    return min(asked, settings.max_processing_time_cap_s), asked
