"""Clips made for the tests from real photos (so the real detector has something to find)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np


def write_walking_person_clip(media_dir: Path, path: Path, frames: int = 20, fps: int = 10) -> Path:
    """A real person (cut from darknet's person.jpg) walking right over a plain wall, 640x480 H.264."""
    photo = cv2.cvtColor(cv2.imread(str(media_dir / "person.jpg")), cv2.COLOR_BGR2RGB)
    person = photo[96:384, 180:286]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": "10"})
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for index in range(frames):
            canvas = np.full((480, 640, 3), (188, 180, 166), np.uint8)
            x = 40 + (12 * index) % 480
            canvas[120:408, x : x + 106] = person
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode(None))
    return path
