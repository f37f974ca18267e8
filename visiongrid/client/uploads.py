"""The pure part of a resumable upload: the file's size and sha256, and its chunks by number.

The service fixes ``chunk_size`` when the upload is created (``UploadView.chunk_size``); a chunk is
read from the file only when it is sent, so a 2 GiB upload holds one chunk in memory.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalFile", "Progress"]

#: ``progress(bytes_sent, total_bytes)`` after every chunk the service acknowledged.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    sha256: str
    content_type: str | None

    @classmethod
    def read(cls, path: Path) -> LocalFile:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        content_type = mimetypes.guess_type(path.name)[0]
        return cls(path, path.stat().st_size, digest.hexdigest(), content_type)

    def chunk(self, n: int, chunk_size: int) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(n * chunk_size)
            return handle.read(chunk_size)

    def chunk_length(self, n: int, chunk_size: int) -> int:
        return max(0, min(chunk_size, self.size - n * chunk_size))
